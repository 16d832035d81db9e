import AuthCore
import AuthCrypto
import Testing

/// The token verifier with the real keys, attacked the ways JWT libraries have been broken.
@Suite struct TokenAttackTests {
    static let secretA = Array("access-secret-access-secret-0123456789".utf8)
    static let secretR = Array("refresh-secret-refresh-secret-987654321".utf8)
    let claims = Claims(issuer: "authd", subject: UserID("u1"), audience: "u1", issuedAt: 1000, expiresAt: 2000,
                        id: "j1", session: SessionID("s1"))

    func codec(_ alg: JWTAlgorithm, _ kind: TokenKind = .access, secret: [UInt8] = secretA, purpose: TokenKind = .access) throws -> TokenCodec {
        let key = try KeyFactory.makeKey(algorithm: alg, secret: secret, for: purpose)
        return TokenCodec(kind: kind, keys: KeyRing(signing: key), issuer: "authd", leeway: 0)
    }

    func b64json(_ s: String) -> String { Base64URL.encode(Array(s.utf8)) }
    var payload: String { #"{"iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1"}"# }

    @Test(arguments: [JWTAlgorithm.hs256, .edDSA])
    func realKeysRoundTrip(_ alg: JWTAlgorithm) throws {
        let c = try codec(alg)
        #expect(try c.verify(try c.sign(claims), now: 1500) == claims)
    }

    /// RFC 7515 A.1's token, re-signed by the real HMAC key over the exact A.1 signing
    /// input, is byte-identical to the RFC's; the verifier still refuses it, because it
    /// carries no `kid` and `typ` "JWT" (no algorithm-only acceptance).
    @Test func rfc7515A1TokenIsRefusedWithoutKidAndTyp() throws {
        let k = Base64URL.decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")!
        let input = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        let sig = try Array(input.utf8).withUnsafeBytes { try HMACKey(secret: k, kid: "a1").sign($0) }
        #expect(Base64URL.encode(sig) == "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        let c = TokenCodec(kind: .access, keys: KeyRing(signing: HMACKey(secret: k, kid: "a1")), issuer: "joe", leeway: 0)
        #expect(throws: TokenError.unknownKey) { try c.verify(input + "." + Base64URL.encode(sig), now: 1_300_000_000) }
    }

    /// The classic confusion: the service uses EdDSA, the attacker HMACs a token with the
    /// published public key as the secret and says alg HS256.
    @Test func publicKeyAsHMACSecretIsRefused() throws {
        let c = try codec(.edDSA)
        let ed = c.keys.signing
        let x = ed.publicJWK!.first { $0.0 == "x" }!.1
        let input = b64json(#"{"alg":"HS256","typ":"at+jwt","kid":"\#(ed.kid)"}"#) + "." + b64json(payload)
        for secret in [Base64URL.decode(x)!, Array(x.utf8)] {
            let sig = try Array(input.utf8).withUnsafeBytes { try HMACKey(secret: secret, kid: ed.kid).sign($0) }
            #expect(throws: TokenError.algorithmMismatch) { try c.verify(input + "." + Base64URL.encode(sig), now: 1500) }
        }
    }

    @Test func eddsaHeaderOnAnHMACServiceIsRefused() throws {
        let c = try codec(.hs256)
        let attacker = try Ed25519Key(seed: [UInt8](repeating: 7, count: 32), kid: c.keys.signing.kid)
        let input = b64json(#"{"alg":"EdDSA","typ":"at+jwt","kid":"\#(c.keys.signing.kid)"}"#) + "." + b64json(payload)
        let sig = try Array(input.utf8).withUnsafeBytes { try attacker.sign($0) }
        #expect(throws: TokenError.algorithmMismatch) { try c.verify(input + "." + Base64URL.encode(sig), now: 1500) }
    }

    @Test(arguments: ["none", "None", "NONE", ""])
    func unsignedTokensAreRefused(_ alg: String) throws {
        let c = try codec(.hs256)
        let token = b64json(#"{"alg":"\#(alg)","typ":"at+jwt","kid":"\#(c.keys.signing.kid)"}"#) + "." + b64json(payload) + "."
        #expect(throws: TokenError.algorithmMismatch) { try c.verify(token, now: 1500) }
    }

    /// Access and refresh keys differ: even with the header rewritten to the other kind
    /// and kid, the signature does not verify.
    @Test(arguments: [JWTAlgorithm.hs256, .edDSA])
    func refreshKeyCannotMintAccessTokens(_ alg: JWTAlgorithm) throws {
        let access = try codec(alg)
        let refreshKey = try KeyFactory.makeKey(algorithm: alg, secret: Self.secretR, for: .refresh)
        #expect(refreshKey.kid != access.keys.signing.kid)
        let input = b64json(#"{"alg":"\#(alg.rawValue)","typ":"at+jwt","kid":"\#(access.keys.signing.kid)"}"#) + "." + b64json(payload)
        let sig = try Array(input.utf8).withUnsafeBytes { try refreshKey.sign($0) }
        #expect(throws: TokenError.badSignature) { try access.verify(input + "." + Base64URL.encode(sig), now: 1500) }
        let asRefresh = TokenCodec(kind: .refresh, keys: KeyRing(signing: refreshKey), issuer: "authd", leeway: 0)
        #expect(throws: TokenError.unknownKey) { try access.verify(try asRefresh.sign(claims), now: 1500) }
    }

    @Test(arguments: [JWTAlgorithm.hs256, .edDSA])
    func everyFlippedSignatureBitIsCaught(_ alg: JWTAlgorithm) throws {
        let c = try codec(alg)
        let token = try c.sign(claims)
        let dot = token.lastIndex(of: ".")!
        var sig = Base64URL.decode(token[token.index(after: dot)...].utf8)!
        for i in [0, sig.count / 2, sig.count - 1] {
            sig[i] ^= 0x01
            let forged = token[...dot] + Base64URL.encode(sig)
            #expect(throws: TokenError.badSignature) { try c.verify(String(forged), now: 1500) }
            sig[i] ^= 0x01
        }
        // Truncated and extended signatures.
        #expect(throws: TokenError.badSignature) { try c.verify(token[...dot] + Base64URL.encode(sig.dropLast()), now: 1500) }
        #expect(throws: TokenError.badSignature) { try c.verify(token[...dot] + Base64URL.encode(sig + [0]), now: 1500) }
    }
}
