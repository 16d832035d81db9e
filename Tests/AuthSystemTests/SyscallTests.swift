import AuthSystem
import Glibc
import Testing

/// The system-call layer: EINTR is retried, any other failure is a SystemError naming the call.
@Suite struct SyscallTests {
    /// A call that fails with `codes` in turn (setting errno, returning -1), then returns `result`.
    final class Scripted {
        var codes: [Int32]
        var calls = 0
        let result: Int32
        init(failing codes: [Int32], then result: Int32) {
            self.codes = codes
            self.result = result
        }
        func callAsFunction() -> Int32 {
            calls += 1
            guard !codes.isEmpty else { return result }
            errno = codes.removeFirst()
            return -1
        }
    }

    @Test func eintrIsRetriedUntilTheCallSucceeds() throws {
        let call = Scripted(failing: [EINTR, EINTR, EINTR], then: 7)
        #expect(try Syscall.retryingEINTR("scripted") { call() } == 7)
        #expect(call.calls == 4)
    }

    @Test func anotherErrnoIsThrownNamingTheCallAndNotRetried() {
        let call = Scripted(failing: [EINTR, EIO], then: 0)
        #expect(throws: SystemError(call: "scripted(3)", errno: EIO)) { try Syscall.retryingEINTR("scripted(3)") { call() } }
        #expect(call.calls == 2)
    }

    @Test func aResultOtherThanMinusOneIsNoFailure() throws {
        // errno is left over from anything earlier; only -1 says the call failed.
        errno = EBADF
        #expect(try Syscall.retryingEINTR("zero") { Int32(0) } == 0)
        #expect(try Syscall.retryingEINTR("positive") { 42 } == 42)
    }

    @Test func theDescriptionSaysWhatFailedInWords() {
        let error = SystemError(call: "fcntl(F_GETFL)", errno: EBADF)
        #expect(error.description == "fcntl(F_GETFL) failed: Bad file descriptor (errno \(EBADF))")
    }

    @Test func fcntlOnADescriptorThatIsNotOpen() {
        // Not a closed one: the tests run in parallel, and another could reopen its number.
        #expect(throws: SystemError(call: "fcntl(F_GETFL)", errno: EBADF)) {
            try Syscall.retryingEINTR("fcntl(F_GETFL)") { fcntl(-1, F_GETFL) }
        }
    }

    @Test func setsockoptOnAPipe() throws {
        var fds: [Int32] = [-1, -1]
        try Syscall.retryingEINTR("pipe") { pipe(&fds) }
        defer { close(fds[0]); close(fds[1]) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        #expect(throws: SystemError(call: "setsockopt(SO_RCVTIMEO)", errno: ENOTSOCK)) {
            try Syscall.retryingEINTR("setsockopt(SO_RCVTIMEO)") {
                setsockopt(fds[0], SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            }
        }
    }

    @Test func wouldBlockIsNilNotAFailure() throws {
        var fds: [Int32] = [-1, -1]
        try Syscall.retryingEINTR("socketpair") { socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) }
        defer { close(fds[0]); close(fds[1]) }
        var byte: UInt8 = 0
        // Nothing queued: a non-blocking recv would have to wait.
        #expect(try Syscall.retryingEINTRUnlessWouldBlock("recv") { recv(fds[0], &byte, 1, Int32(MSG_DONTWAIT)) } == nil)
        byte = 9
        _ = try Syscall.retryingEINTR("send") { send(fds[1], &byte, 1, 0) }
        #expect(try Syscall.retryingEINTRUnlessWouldBlock("recv") { recv(fds[0], &byte, 1, Int32(MSG_DONTWAIT)) } == 1)
        // EINTR is still retried, and any other failure still thrown.
        let call = Scripted(failing: [EINTR, EAGAIN], then: 0)
        #expect(try Syscall.retryingEINTRUnlessWouldBlock("scripted") { call() } == nil)
        #expect(call.calls == 2)
        shutdown(fds[1], Int32(SHUT_RD))
        #expect(throws: SystemError(call: "send", errno: EPIPE)) {
            try Syscall.retryingEINTRUnlessWouldBlock("send") { send(fds[0], &byte, 1, Int32(MSG_NOSIGNAL)) }
        }
    }
}
