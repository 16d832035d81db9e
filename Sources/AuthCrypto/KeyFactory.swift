public import AuthCore
internal import CLibCrypto

/// Turns configured secrets into signing keys.
public enum KeyFactory {
    /// The purposes a key can serve; access and refresh tokens never share a key.
    public static let purposes: Set<String> = ["access", "refresh"]

    /// Makes the key for one token purpose from a configured secret.
    ///
    /// Derivation rule:
    /// - HS256: the secret bytes are the HMAC key, unchanged.
    /// - EdDSA: the Ed25519 seed is `SHA-256(secret)`; the public key follows from it.
    /// - `kid` = base64url of the first 9 bytes of
    ///   `SHA-256("authd-kid:" + purpose + ":" + algorithm.rawValue + ":" + secret)`,
    ///   i.e. 12 characters. It identifies the key material (and its purpose and
    ///   algorithm) without revealing it, and is stable across restarts.
    ///
    /// - Parameters:
    ///   - algorithm: the algorithm the key is pinned to.
    ///   - secret: the configured secret bytes; must not be empty.
    ///   - purpose: `"access"` or `"refresh"`.
    /// - Throws: `CryptoError` for an unknown purpose, an empty secret, or an OpenSSL failure.
    public static func makeKey(algorithm: JWTAlgorithm, secret: [UInt8], purpose: String) throws -> any SigningKey {
        guard purposes.contains(purpose) else {
            throw CryptoError.invalidArgument("KeyFactory.makeKey", "unknown key purpose \"\(purpose)\"")
        }
        guard !secret.isEmpty else {
            throw CryptoError.invalidArgument("KeyFactory.makeKey", "empty \(purpose) secret")
        }
        let kid = kid(algorithm: algorithm, secret: secret, purpose: purpose)
        switch algorithm {
        case .hs256:
            return HMACKey(secret: secret, kid: kid)
        case .edDSA:
            var seed = sha256(secret)
            defer { seed.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) } }
            return try Ed25519Key(seed: seed, kid: kid)
        }
    }

    /// The 12-character `kid` for a key; see `makeKey(algorithm:secret:purpose:)`.
    static func kid(algorithm: JWTAlgorithm, secret: [UInt8], purpose: String) -> String {
        var input = Array("authd-kid:\(purpose):\(algorithm.rawValue):".utf8)
        input.append(contentsOf: secret)
        defer { input.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) } }
        return Base64URL.encode(sha256(input).prefix(9))
    }

    /// SHA-256 of `bytes` (32 bytes).
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { out, count in
            var length: UInt32 = 0
            let rc = bytes.withUnsafeBytes { raw in
                raw.withNonNullBytes { data, n in EVP_Digest(data, n, out.baseAddress, &length, EVP_sha256(), nil) }
            }
            // EVP_Digest can only fail on allocation failure, where Swift traps anyway;
            // a throwing signature would burden every caller for nothing.
            precondition(rc == 1 && length == 32, "EVP_Digest(SHA-256) failed")
            count = 32
        }
    }
}
