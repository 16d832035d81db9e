import Glibc

/// A system call that failed: which call (with what it was called on, where that helps)
/// and errno. What `Syscall` throws.
public struct SystemError: Error, Equatable, CustomStringConvertible {
    public let call: String
    public let errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// The one layer between authd and the system calls whose failure matters (after
/// swift-nio's `syscall(blocking:)`): a call is retried while it fails with EINTR (a
/// signal handler ran; nothing failed), and any other failure becomes a `SystemError`
/// that names the call, instead of a result to compare with -1 and an errno to read
/// before anything else overwrites it.
public enum Syscall {
    /// Runs `body`, a call that returns -1 and sets errno when it fails, until it does not
    /// fail with EINTR; returns its result, or throws the failure.
    @discardableResult
    public static func retryingEINTR<Result: FixedWidthInteger & SignedInteger>(
        _ call: @autoclosure () -> String, _ body: () -> Result
    ) throws(SystemError) -> Result {
        while true {
            let result = body()
            guard result == -1 else { return result }
            let code = Glibc.errno
            if code != EINTR { throw SystemError(call: call(), errno: code) }
        }
    }

    /// The same for a call on a non-blocking descriptor: nil when the call would have
    /// had to wait (EAGAIN, EWOULDBLOCK), which is no failure there.
    public static func retryingEINTRUnlessWouldBlock<Result: FixedWidthInteger & SignedInteger>(
        _ call: @autoclosure () -> String, _ body: () -> Result
    ) throws(SystemError) -> Result? {
        do throws(SystemError) {
            return try retryingEINTR(call(), body)
        } catch {
            if error.errno == EAGAIN || error.errno == EWOULDBLOCK { return nil }
            throw error
        }
    }
}
