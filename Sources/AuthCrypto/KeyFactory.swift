public import AuthCore
internal import CLibCrypto

/// Turns configured secrets into signing keys.
public enum KeyFactory {
    /// Makes the key for one kind of token from a configured secret; access and refresh
    /// tokens never share a key.
    ///
    /// Derivation rule:
    /// - HS256: the secret bytes are the HMAC key, unchanged.
    /// - EdDSA: the Ed25519 seed is `SHA-256(secret)`; the public key follows from it.
    /// - `kid` = base64url of the first 9 bytes of
    ///   `SHA-256("authd-kid:" + purpose + ":" + algorithm.rawValue + ":" + secret)`, where
    ///   purpose is `access` or `refresh` (`purpose(of:)`),
    ///   i.e. 12 characters. It identifies the key material (and its purpose and
    ///   algorithm) without revealing it, and is stable across restarts.
    ///
    /// - Parameters:
    ///   - algorithm: the algorithm the key is pinned to.
    ///   - secret: the configured secret bytes; must not be empty.
    ///   - kind: the tokens the key signs.
    /// - Throws: `CryptoError` for an empty secret, or an OpenSSL failure.
    public static func makeKey(algorithm: JWTAlgorithm, secret: [UInt8], for kind: TokenKind) throws -> any SigningKey {
        let purpose = purpose(of: kind)
        guard !secret.isEmpty else {
            throw CryptoError.invalidArgument("KeyFactory.makeKey", "empty \(purpose) secret")
        }
        let kid = kid(algorithm: algorithm, secret: secret, purpose: purpose)
        switch algorithm {
        case .hs256:
            return HMACKey(secret: secret, kid: kid)
        case .edDSA:
            var seed = Digest.sha256(secret)
            defer { seed.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) } }
            return try Ed25519Key(seed: seed, kid: kid)
        }
    }

    /// The word a kind of token is derived under. Part of every `kid`: changing it would
    /// make every token issued before unverifiable (unknown `kid`).
    static func purpose(of kind: TokenKind) -> String {
        switch kind {
        case .access: "access"
        case .refresh: "refresh"
        }
    }

    /// The 12-character `kid` for a key; see `makeKey(algorithm:secret:for:)`.
    static func kid(algorithm: JWTAlgorithm, secret: [UInt8], purpose: String) -> String {
        var input = Array("authd-kid:\(purpose):\(algorithm.rawValue):".utf8)
        input.append(contentsOf: secret)
        defer { input.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) } }
        return Base64URL.encode(Digest.sha256(input).prefix(9))
    }
}
