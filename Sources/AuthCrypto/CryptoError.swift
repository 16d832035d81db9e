internal import CLibCrypto

/// A failure in OpenSSL, libxcrypt, or an argument rejected before reaching them.
/// Carries the failing call so that logs say where it happened; never shown to clients.
public struct CryptoError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Which layer rejected the operation.
    public enum Source: Sendable, Equatable {
        /// An OpenSSL call failed; `code` is the packed `ERR_get_error()` value.
        case openSSL
        /// A libxcrypt call failed; `code` is `errno`.
        case libxcrypt
        /// The caller passed something unusable (wrong seed length, overlong password, ...).
        case invalidArgument
    }

    /// Which layer rejected the operation.
    public let source: Source
    /// The C function (or Swift API) that failed, e.g. `"EVP_DigestSign"`.
    public let call: String
    /// The OpenSSL error code, `errno`, or 0.
    public let code: UInt
    /// A human-readable reason (OpenSSL's error string for `.openSSL`).
    public let reason: String

    /// `"<call> failed: <reason> (code <code>)"`.
    public var description: String { "\(call) failed: \(reason) (code \(code))" }

    /// The single place that reads OpenSSL's (thread-local) error queue. It takes the
    /// earliest error, which names the root cause, and drops the rest so that a later
    /// failure on this thread is not blamed on a stale entry.
    static func openSSL(_ call: String) -> CryptoError {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else {
            return CryptoError(source: .openSSL, call: call, code: 0, reason: "no OpenSSL error queued")
        }
        // ERR_error_string_n documents 256 bytes as always sufficient.
        let reason = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buf in
            ERR_error_string_n(code, buf.baseAddress, buf.count)
            return String(cString: buf.baseAddress!)
        }
        return CryptoError(source: .openSSL, call: call, code: code, reason: reason)
    }

    static func libxcrypt(_ call: String, errno: Int32, reason: String) -> CryptoError {
        CryptoError(source: .libxcrypt, call: call, code: UInt(bitPattern: Int(errno)), reason: reason)
    }

    static func invalidArgument(_ call: String, _ reason: String) -> CryptoError {
        CryptoError(source: .invalidArgument, call: call, code: 0, reason: reason)
    }

    /// For paths that turn an OpenSSL failure into `false` (signature checks): the
    /// queued entries are not interesting, but left behind they would be misreported by
    /// the next `openSSL(_:)` on this thread.
    static func discardOpenSSLErrors() {
        ERR_clear_error()
    }
}

extension UnsafeRawBufferPointer {
    /// Calls `body` with a non-null byte pointer: an empty Swift buffer may have a nil
    /// base address, which some OpenSSL paths reject even when the length is 0.
    func withNonNullBytes<R>(_ body: (UnsafePointer<UInt8>, Int) throws -> R) rethrows -> R {
        if let base = baseAddress {
            return try body(base.assumingMemoryBound(to: UInt8.self), count)
        }
        var zero: UInt8 = 0
        return try withUnsafePointer(to: &zero) { try body($0, 0) }
    }
}
