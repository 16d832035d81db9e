import Foundation
import Testing

/// Another implementation verifies our tokens from the published JWKS alone: PyJWT
/// (Debian's python3-jwt) with nothing but /.well-known/jwks.json and the token.
@Suite("JWKS with PyJWT")
struct JWKSInteropTests {
    static let python = "/usr/bin/python3"
    static var pyJWTAvailable: Bool {
        (try? runCommand(python, ["-c", "import jwt, cryptography"], directory: "/tmp"))?.termination == .exited(0)
    }

    @Test(.enabled(if: pyJWTAvailable, "needs /usr/bin/python3 with python3-jwt and python3-cryptography (make deps)"))
    func pyJWTVerifiesAccessTokensFromTheJWKS() throws {
        let stack = try Stacks.ed25519()
        let user = try stack.newUser("pyjwt")
        let jwks = try stack.get("/.well-known/jwks.json")
        #expect(jwks.status == 200)
        let dir = try Stack.makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(jwks.body).write(to: URL(fileURLWithPath: dir + "/jwks.json"))
        let script = """
            import json, sys, jwt
            keys = jwt.PyJWKSet.from_dict(json.load(open("jwks.json")))
            token = sys.argv[1]
            kid = jwt.get_unverified_header(token)["kid"]
            key = next(k for k in keys.keys if k.key_id == kid)
            try:
                claims = jwt.decode(token, key.key, algorithms=["EdDSA"], issuer="authd-test", options={"verify_aud": False})
                print("valid", claims["sub"])
            except jwt.InvalidTokenError as e:
                print("invalid", type(e).__name__)
            """
        func verify(_ token: String) throws -> String {
            let result = try runCommand(Self.python, ["-c", script, token], directory: dir)
            return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let sub = try #require(try JWT(user.tokens.access).string("sub"))
        #expect(try verify(user.tokens.access) == "valid \(sub)")
        var tampered = Array(user.tokens.access)
        let i = tampered.lastIndex(of: ".")! + 5
        tampered[i] = tampered[i] == "A" ? "B" : "A"
        #expect(try verify(String(tampered)) == "invalid InvalidSignatureError")
    }
}
