import Foundation
import Testing

@Suite("Health and JWKS")
struct HealthTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    @Test(arguments: ["/healthz", "/readyz"])
    func answers200StatusOK(path: String) throws {
        let response = try stack.call("GET", path)
        #expect(response.status == 200, "\(response)")
        #expect(response.header("Content-Type")?.lowercased().hasPrefix("application/json") == true)
        #expect(response.object?["status"] as? String == "ok", "\(response)")
    }

    @Test func jwksIsAnEmptyKeyListForHS256() throws {
        let response = try stack.call("GET", "/.well-known/jwks.json")
        #expect(response.status == 200, "\(response)")
        #expect(response.header("Content-Type")?.lowercased().contains("json") == true)
        let keys = try #require(response.object?["keys"] as? [Any], "\(response)")
        #expect(keys.isEmpty, "HMAC secrets must never be published: \(response)")
        #expect(!response.text.contains(Secrets.access) && !response.text.contains(Secrets.refresh))
    }

    @Test(arguments: ["/healthz?probe=1", "/readyz?x=y", "/.well-known/jwks.json?v=2"])
    func queryStringDoesNotChangeTheRoute(path: String) throws {
        #expect(try stack.call("GET", path).status == 200)
    }
}

@Suite("EdDSA (JWT_ALG=EdDSA)")
struct EdDSATests {
    let stack: Stack
    init() throws { stack = try Stacks.ed25519() }

    private func keys() throws -> [[String: Any]] {
        let response = try stack.call("GET", "/.well-known/jwks.json")
        try #require(response.status == 200, "\(response)")
        return try #require(response.object?["keys"] as? [[String: Any]], "\(response)")
    }

    private func publicKey(kid: String) throws -> [UInt8] {
        let jwk = try #require(try keys().first { $0["kid"] as? String == kid }, "kid \(kid) not in the JWKS")
        return try #require(Base64URL.decode(jwk["x"] as? String ?? ""))
    }

    @Test func jwksPublishesTheAccessKeyAsAnOKPEd25519Key() throws {
        let access = try JWT(try stack.newUser("ed").tokens.access)
        #expect(access.header["alg"] as? String == "EdDSA")
        #expect(access.header["typ"] as? String == "at+jwt")
        let keys = try keys()
        #expect(!keys.isEmpty)
        let jwk = try #require(keys.first { $0["kid"] as? String == access.kid }, "token kid \(access.kid ?? "-") not in \(keys)")
        #expect(jwk["kty"] as? String == "OKP")
        #expect(jwk["crv"] as? String == "Ed25519")
        #expect(Base64URL.decode(jwk["x"] as? String ?? "")?.count == 32)
        #expect(jwk["d"] == nil, "private key published")
        if let alg = jwk["alg"] { #expect(alg as? String == "EdDSA") }
        if let use = jwk["use"] { #expect(use as? String == "sig") }
    }

    @Test func accessTokenSignatureVerifiesWithThePublishedKey() throws {
        let access = try JWT(try stack.newUser("edsig").tokens.access)
        let key = try publicKey(kid: try #require(access.kid))
        #expect(access.signature.count == 64)
        #expect(try ed25519Verify(publicKey: key, message: Array(access.signingInput.utf8), signature: access.signature))
        // The control: a changed message does not verify, so the check above can fail.
        #expect(try !ed25519Verify(publicKey: key, message: Array((access.signingInput + "x").utf8), signature: access.signature))
    }

    @Test func eddsaTokensWorkForProtectedRoutesAndRefresh() throws {
        let user = try stack.newUser("edflow")
        #expect(try stack.home(user.tokens.access).status == 200)
        let pair = try expectTokens(try stack.refresh(user.tokens.refresh), status: 200)
        #expect(try JWT(pair.refresh).header["alg"] as? String == "EdDSA")
        #expect(try JWT(pair.refresh).header["typ"] as? String == "rt+jwt")
        #expect(try stack.me(pair.access).status == 200)
    }

    /// The classic algorithm confusion: an HS256 token whose HMAC key is the public key.
    @Test func hs256TokenKeyedWithThePublicKeyIs401() throws {
        let access = try JWT(try stack.newUser("edconf").tokens.access)
        let key = try publicKey(kid: try #require(access.kid))
        let header = access.header.merging(["alg": "HS256"]) { $1 }
        for keyBytes in [key, Array(Base64URL.encode(key).utf8)] {
            let forged = JWT.make(header: header, payload: access.payload, hmacKeyBytes: keyBytes)
            expectInvalidToken(try stack.home(forged))
        }
    }

    @Test func hs256TokenSignedWithTheConfiguredSecretIs401() throws {
        let access = try JWT(try stack.newUser("edhs").tokens.access)
        let forged = access.resigned(header: ["alg": "HS256"], hmacKey: Secrets.access)
        expectInvalidToken(try stack.home(forged))
    }

    @Test func algNoneIs401() throws {
        let access = try JWT(try stack.newUser("ednone").tokens.access)
        expectInvalidToken(try stack.home(access.resigned(header: ["alg": "none"], hmacKey: nil)))
    }

    @Test func refreshTokenIsNotAnAccessToken() throws {
        let user = try stack.newUser("edkind")
        expectInvalidToken(try stack.home(user.tokens.refresh))
        expectError(try stack.refresh(user.tokens.access), status: 403)
    }

    @Test func tamperedPayloadIs401() throws {
        let access = try JWT(try stack.newUser("edtamper").tokens.access)
        let s = access.segments
        let payload = Base64URL.encode(jsonBytes(access.payload.merging(["sub": "someone-else"]) { $1 }))
        expectInvalidToken(try stack.home(s[0] + "." + payload + "." + s[2]))
    }
}
