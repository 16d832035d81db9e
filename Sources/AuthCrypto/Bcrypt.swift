import AuthCore
internal import CLibCrypto
internal import CXCrypt
internal import Glibc

/// bcrypt (`$2b$`) password hashing through libxcrypt's re-entrant `crypt_rn`.
///
/// Owns a 32 KiB `crypt_data` scratch buffer, so create one instance per worker thread
/// and never share it: it is deliberately not `Sendable`.
public final class Bcrypt {
    /// The work factor of new hashes (log2 of the rounds), 4...31.
    public let cost: Int

    /// bcrypt reads at most this many password bytes; longer passwords are refused
    /// rather than silently truncated.
    public static let maxPasswordBytes = 72
    /// Length of a modular-crypt bcrypt string, e.g. `$2b$12$` + 22 salt + 31 hash chars.
    public static let hashLength = 60
    /// The accepted work factors.
    public static let costRange = 4...31

    private static let saltBytes = 16
    private var allocated: UnsafeMutablePointer<crypt_data>?

    /// - Throws: `CryptoError` if `cost` is outside 4...31.
    public init(cost: Int) throws {
        guard Self.costRange.contains(cost) else {
            throw CryptoError.invalidArgument("Bcrypt.init", "cost \(cost) outside \(Self.costRange)")
        }
        self.cost = cost
    }

    deinit {
        guard let allocated else { return }
        // The buffer held passwords in flight.
        OPENSSL_cleanse(allocated, MemoryLayout<crypt_data>.size)
        allocated.deallocate()
    }

    /// The scratch buffer, allocated (and zeroed, as libxcrypt requires) on first use:
    /// most worker threads never hash, and 32 KiB each would add up in resident memory.
    private var data: UnsafeMutablePointer<crypt_data> {
        if let allocated { return allocated }
        let fresh = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        UnsafeMutableRawPointer(fresh).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<crypt_data>.size)
        allocated = fresh
        return fresh
    }

    /// A fresh `$2b$` hash with 16 random salt bytes from `RAND_bytes`.
    /// - Throws: `CryptoError` for a password with a NUL byte or over 72 UTF-8 bytes,
    ///   or when randomness or libxcrypt fail.
    public func hash(_ password: String) throws -> String {
        let utf8 = password.utf8
        guard !utf8.contains(0) else {
            throw CryptoError.invalidArgument("Bcrypt.hash", "password contains a NUL byte")
        }
        guard utf8.count <= Self.maxPasswordBytes else {
            throw CryptoError.invalidArgument("Bcrypt.hash", "password longer than \(Self.maxPasswordBytes) UTF-8 bytes")
        }
        return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.saltBytes) { random in
            try fillRandom(UnsafeMutableRawBufferPointer(random))
            return try withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(CRYPT_GENSALT_OUTPUT_SIZE)) { setting in
                let salted = random.withMemoryRebound(to: CChar.self) { rbytes in
                    crypt_gensalt_rn("$2b$", UInt(cost), rbytes.baseAddress, Int32(rbytes.count),
                                     setting.baseAddress, Int32(setting.count))
                }
                guard salted != nil else {
                    throw CryptoError.libxcrypt("crypt_gensalt_rn", errno: errno, reason: "could not make a $2b$ setting")
                }
                guard let output = password.withCString({
                    crypt_rn($0, setting.baseAddress, UnsafeMutableRawPointer(data), Int32(MemoryLayout<crypt_data>.size))
                }) else {
                    throw CryptoError.libxcrypt("crypt_rn", errno: errno, reason: "hashing failed")
                }
                let result = String(cString: output)
                // libxcrypt signals failure with a token starting with '*'.
                guard result.hasPrefix("$2b$"), !result.hasPrefix("*"), result.utf8.count == Self.hashLength else {
                    throw CryptoError.libxcrypt("crypt_rn", errno: 0, reason: "unexpected output \"\(result.prefix(7))\"")
                }
                return result
            }
        }
    }

    /// True when `password` matches `hash`. False for a hash that is not a well-formed
    /// 60-character `$2a$`/`$2b$`/`$2y$` string, and for passwords `hash(_:)` would refuse
    /// (NUL byte, over 72 bytes), so truncation can never make a longer password match.
    /// The final 60-byte comparison is constant time (`CRYPTO_memcmp`).
    public func verify(_ password: String, against hash: String) -> Bool {
        guard Self.isWellFormed(hash) else { return false }
        let utf8 = password.utf8
        guard !utf8.contains(0), utf8.count <= Self.maxPasswordBytes else { return false }
        return password.withCString { phrase in
            hash.withCString { stored in
                guard let output = crypt_rn(phrase, stored, UnsafeMutableRawPointer(data),
                                            Int32(MemoryLayout<crypt_data>.size)),
                      strnlen(output, Self.hashLength + 1) == Self.hashLength else { return false }
                return CRYPTO_memcmp(output, stored, Self.hashLength) == 0
            }
        }
    }

    /// Whether `hash` has the shape `$2[aby]$NN$` + 53 characters of bcrypt's base64
    /// alphabet, with NN in 04...31.
    public static func isWellFormed(_ hash: String) -> Bool {
        let b = Array(hash.utf8)
        guard b.count == hashLength,
              b[0] == UInt8(ascii: "$"), b[1] == UInt8(ascii: "2"),
              b[2] == UInt8(ascii: "a") || b[2] == UInt8(ascii: "b") || b[2] == UInt8(ascii: "y"),
              b[3] == UInt8(ascii: "$"), b[6] == UInt8(ascii: "$"),
              isDigit(b[4]), isDigit(b[5]) else { return false }
        let cost = Int(b[4] - UInt8(ascii: "0")) * 10 + Int(b[5] - UInt8(ascii: "0"))
        guard costRange.contains(cost) else { return false }
        return b[7...].allSatisfy(isBcryptBase64)
    }

    private static func isDigit(_ c: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) }

    private static func isBcryptBase64(_ c: UInt8) -> Bool {
        c == UInt8(ascii: ".") || c == UInt8(ascii: "/") || isDigit(c)
            || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
            || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c)
    }
}
