public import AuthCore
internal import CLibCrypto

/// An HS256 (HMAC-SHA256) key. Immutable, so it is safe to share between threads.
public struct HMACKey: SigningKey {
    /// Always `.hs256`.
    public var algorithm: JWTAlgorithm { .hs256 }
    /// The `kid` header value of tokens signed with this key.
    public let kid: String
    /// Nil: a symmetric key is never published.
    public var publicJWK: [(String, String)]? { nil }

    private let secret: [UInt8]

    /// Length of an HMAC-SHA256 tag in bytes.
    public static let signatureLength = 32

    /// A key using `secret` as the HMAC key as-is.
    public init(secret: [UInt8], kid: String) {
        self.secret = secret
        self.kid = kid
    }

    /// HMAC-SHA256 of `input` (32 bytes).
    public func sign(_ input: UnsafeRawBufferPointer) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: Self.signatureLength) { out, count in
            var length: UInt32 = 0
            let result = secret.withUnsafeBytes { key in
                key.withNonNullBytes { keyBytes, keyCount in
                    input.withNonNullBytes { data, dataCount in
                        HMAC(EVP_sha256(), keyBytes, Int32(keyCount), data, dataCount,
                             out.baseAddress, &length)
                    }
                }
            }
            guard result != nil, length == UInt32(Self.signatureLength) else {
                count = 0
                throw CryptoError.openSSL("HMAC")
            }
            count = Self.signatureLength
        }
    }

    /// Recomputes the tag and compares it with `CRYPTO_memcmp`, so the time taken does
    /// not depend on where the bytes differ. A wrong length is rejected up front (the
    /// length is public anyway).
    public func verify(_ signature: [UInt8], for input: UnsafeRawBufferPointer) -> Bool {
        guard signature.count == Self.signatureLength,
              let expected = try? sign(input) else { return false }
        return signature.withUnsafeBytes { given in
            expected.withUnsafeBytes { wanted in
                CRYPTO_memcmp(given.baseAddress, wanted.baseAddress, Self.signatureLength) == 0
            }
        }
    }
}

// Keys end up in log statements by accident; the secret must never be printed.
extension HMACKey: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// `HMACKey(HS256, kid: ...)`, without the secret.
    public var description: String { "HMACKey(HS256, kid: \(kid))" }
    /// Same as `description`: the secret is never shown.
    public var debugDescription: String { description }
    /// Exposes only `kid`, so `dump()` cannot reveal the secret.
    public var customMirror: Mirror { Mirror(self, children: ["kid": kid]) }
}
