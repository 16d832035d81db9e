internal import AuthCore
internal import CLibCrypto

/// `n` bytes from OpenSSL's CSPRNG (`RAND_bytes`).
/// - Throws: `CryptoError` if `n` is negative or too large, or if the generator fails.
public func randomBytes(_ n: Int) throws -> [UInt8] {
    guard n >= 0, n <= Int(Int32.max) else {
        throw CryptoError.invalidArgument("randomBytes", "byte count \(n) out of range")
    }
    return try [UInt8](unsafeUninitializedCapacity: n) { buf, count in
        try fillRandom(UnsafeMutableRawBufferPointer(buf))
        count = n
    }
}

/// Fills `buffer` from `RAND_bytes`; lets callers use stack scratch space.
func fillRandom(_ buffer: UnsafeMutableRawBufferPointer) throws {
    guard let base = buffer.baseAddress, buffer.count > 0 else { return }
    guard RAND_bytes(base.assumingMemoryBound(to: UInt8.self), Int32(buffer.count)) == 1 else {
        throw CryptoError.openSSL("RAND_bytes")
    }
}

/// Secret generation for `authd keygen`.
public enum Secrets {
    /// Bytes of entropy in a generated secret (256 bits, the HS256 key size).
    public static let byteCount = 32

    /// A fresh secret: base64url (unpadded) of 32 random bytes, 43 characters.
    public static func generate() throws -> String {
        Base64URL.encode(try randomBytes(byteCount))
    }
}
