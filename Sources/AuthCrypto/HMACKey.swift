public import AuthCore
internal import CLibCrypto
internal import Glibc

/// An HS256 (HMAC-SHA256) key. Immutable, so it is safe to share between threads.
public struct HMACKey: SigningKey {
    /// Always `.hs256`.
    public var algorithm: JWTAlgorithm { .hs256 }
    /// The `kid` header value of tokens signed with this key.
    public let kid: String
    /// Nil: a symmetric key is never published.
    public var publicJWK: [(String, String)]? { nil }

    private let contexts: ThreadContexts

    /// Length of an HMAC-SHA256 tag in bytes.
    public static let signatureLength = 32

    /// A key using `secret` as the HMAC key as-is.
    public init(secret: [UInt8], kid: String) {
        self.contexts = ThreadContexts(secret: secret)
        self.kid = kid
    }

    /// HMAC-SHA256 of `input` (32 bytes).
    public func sign(_ input: UnsafeRawBufferPointer) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: Self.signatureLength) { out, count in
            count = 0
            try contexts.mac(input, into: out.baseAddress!)
            count = Self.signatureLength
        }
    }

    /// Recomputes the tag and compares it with `CRYPTO_memcmp`, so the time taken does
    /// not depend on where the bytes differ. A wrong length is rejected up front (the
    /// length is public anyway).
    public func verify(_ signature: [UInt8], for input: UnsafeRawBufferPointer) -> Bool {
        guard signature.count == Self.signatureLength else { return false }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.signatureLength) { expected in
            guard (try? contexts.mac(input, into: expected.baseAddress!)) != nil else { return false }
            return signature.withUnsafeBytes { given in
                CRYPTO_memcmp(given.baseAddress, expected.baseAddress, Self.signatureLength) == 0
            }
        }
    }
}

/// One keyed HMAC context per thread. Keying an HMAC (hashing the padded key into the
/// inner and outer states) costs more than MACing a token, so each thread keys a context
/// once and afterwards only resets it (`EVP_MAC_init` with a nil key keeps the key).
/// Contexts are freed when their thread exits.
private final class ThreadContexts: @unchecked Sendable {
    // Immutable after init; the per-thread slots are only touched by their own thread.
    private let secret: [UInt8]
    private let mac: OpaquePointer
    private var slot = pthread_key_t()

    init(secret: [UInt8]) {
        self.secret = secret
        guard let mac = EVP_MAC_fetch(nil, "HMAC", nil) else { preconditionFailure("OpenSSL has no HMAC") }
        self.mac = mac
        let rc = pthread_key_create(&slot) { ctx in EVP_MAC_CTX_free(OpaquePointer(ctx)) }
        precondition(rc == 0, "pthread_key_create failed")
    }

    deinit {
        // Keys live for the process; contexts of threads still running are reclaimed at exit.
        pthread_key_delete(slot)
        EVP_MAC_free(mac)
        var s = secret
        s.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
    }

    /// Writes the 32-byte HMAC-SHA256 of `input` to `out`.
    func mac(_ input: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) throws {
        let ctx = try context()
        var length = 0
        let ok = input.withNonNullBytes { data, n in
            EVP_MAC_init(ctx, nil, 0, nil) == 1 && EVP_MAC_update(ctx, data, n) == 1
                && EVP_MAC_final(ctx, out, &length, HMACKey.signatureLength) == 1
        }
        guard ok, length == HMACKey.signatureLength else { throw CryptoError.openSSL("EVP_MAC (HMAC-SHA256)") }
    }

    /// `OSSL_MAC_PARAM_DIGEST`, and the digest's name.
    private static let digestParam: StaticString = "digest"
    private static let sha256: StaticString = "SHA256"
    private static func cString(_ s: StaticString) -> UnsafePointer<CChar> {
        UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
    }

    private func context() throws -> OpaquePointer {
        if let existing = pthread_getspecific(slot) { return OpaquePointer(existing) }
        guard let ctx = EVP_MAC_CTX_new(mac) else { throw CryptoError.openSSL("EVP_MAC_CTX_new") }
        // OSSL_PARAM keeps the pointers it is given, so both strings must outlive the
        // EVP_MAC_init below: static literals, not the temporaries Swift makes when a
        // String is passed as a C string (AddressSanitizer caught that use after free).
        var params = [
            OSSL_PARAM_construct_utf8_string(Self.cString(Self.digestParam), UnsafeMutablePointer(mutating: Self.cString(Self.sha256)), 0),
            OSSL_PARAM_construct_end(),
        ]
        let keyed = secret.withUnsafeBytes { key in
            key.withNonNullBytes { bytes, n in EVP_MAC_init(ctx, bytes, n, &params) == 1 }
        }
        guard keyed else {
            EVP_MAC_CTX_free(ctx)
            throw CryptoError.openSSL("EVP_MAC_init")
        }
        pthread_setspecific(slot, UnsafeRawPointer(ctx))
        return ctx
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
