public import AuthCore
internal import CLibCrypto

/// An EdDSA (Ed25519, RFC 8037) key pair held in an OpenSSL `EVP_PKEY`.
///
/// `@unchecked Sendable` is sound here: the `EVP_PKEY` is never modified after `init`
/// (OpenSSL documents read-only `EVP_PKEY` use as safe from several threads), and every
/// `sign`/`verify` call works in its own fresh `EVP_MD_CTX`, so no mutable state is
/// shared between threads. The other stored properties are immutable Swift values.
public final class Ed25519Key: SigningKey, @unchecked Sendable {
    /// Always `.edDSA`.
    public var algorithm: JWTAlgorithm { .edDSA }
    /// The `kid` header value of tokens signed with this key.
    public let kid: String
    /// The raw 32-byte public key.
    public let publicKey: [UInt8]
    /// `kty`, `crv`, `x`, `use`, `alg`, `kid`, in that order, for the JWKS document.
    public let publicJWK: [(String, String)]?

    /// Length of an Ed25519 seed (private key) and of a public key.
    public static let keyLength = 32
    /// Length of an Ed25519 signature.
    public static let signatureLength = 64

    private let pkey: OpaquePointer

    /// A key pair from a 32-byte seed (the RFC 8032 private key, RFC 8037's `d`).
    /// - Throws: `CryptoError` if the seed is not 32 bytes or OpenSSL refuses it.
    public init(seed: [UInt8], kid: String) throws {
        guard seed.count == Self.keyLength else {
            throw CryptoError.invalidArgument("Ed25519Key.init", "seed must be \(Self.keyLength) bytes, got \(seed.count)")
        }
        let created = seed.withUnsafeBufferPointer {
            EVP_PKEY_new_raw_private_key_ex(nil, "ED25519", nil, $0.baseAddress, $0.count)
        }
        guard let created else { throw CryptoError.openSSL("EVP_PKEY_new_raw_private_key_ex") }

        var length = Self.keyLength
        var raw = [UInt8](repeating: 0, count: Self.keyLength)
        guard EVP_PKEY_get_raw_public_key(created, &raw, &length) == 1, length == Self.keyLength else {
            // deinit does not run for a partly initialised object: free here.
            let error = CryptoError.openSSL("EVP_PKEY_get_raw_public_key")
            EVP_PKEY_free(created)
            throw error
        }
        self.pkey = created
        self.kid = kid
        self.publicKey = raw
        self.publicJWK = [
            ("kty", "OKP"), ("crv", "Ed25519"), ("x", Base64URL.encode(raw)),
            ("use", "sig"), ("alg", JWTAlgorithm.edDSA.rawValue), ("kid", kid),
        ]
    }

    deinit {
        EVP_PKEY_free(pkey)
    }

    /// The 64-byte Ed25519 signature of `input` (deterministic).
    public func sign(_ input: UnsafeRawBufferPointer) throws -> [UInt8] {
        guard let ctx = EVP_MD_CTX_new() else { throw CryptoError.openSSL("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(ctx) }
        // Ed25519 hashes internally: no digest may be named.
        guard EVP_DigestSignInit(ctx, nil, nil, nil, pkey) == 1 else {
            throw CryptoError.openSSL("EVP_DigestSignInit")
        }
        return try [UInt8](unsafeUninitializedCapacity: Self.signatureLength) { out, count in
            var length = Self.signatureLength
            let rc = input.withNonNullBytes { data, dataCount in
                EVP_DigestSign(ctx, out.baseAddress, &length, data, dataCount)
            }
            guard rc == 1, length == Self.signatureLength else {
                count = 0
                throw CryptoError.openSSL("EVP_DigestSign")
            }
            count = Self.signatureLength
        }
    }

    /// True only for a valid 64-byte signature of `input` by this key; false on any
    /// error. Ed25519 verification does not branch on how much of the signature matches.
    public func verify(_ signature: [UInt8], for input: UnsafeRawBufferPointer) -> Bool {
        guard signature.count == Self.signatureLength else { return false }
        guard let ctx = EVP_MD_CTX_new() else {
            CryptoError.discardOpenSSLErrors()
            return false
        }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestVerifyInit(ctx, nil, nil, nil, pkey) == 1 else {
            CryptoError.discardOpenSSLErrors()
            return false
        }
        let rc = signature.withUnsafeBufferPointer { sig in
            input.withNonNullBytes { data, dataCount in
                EVP_DigestVerify(ctx, sig.baseAddress, sig.count, data, dataCount)
            }
        }
        guard rc == 1 else {
            CryptoError.discardOpenSSLErrors()
            return false
        }
        return true
    }
}
