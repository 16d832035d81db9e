import Foundation
import Testing

/// Rotation by `kid`: a new active secret signs, the retired one listed in
/// `*_PREVIOUS_SECRETS` still verifies, and dropping it ends its tokens.
@Suite("Key rotation: previous secrets keep verifying")
struct KeyRotationTests {
    static let newAccess = "rotated-access-secret-0000000000000000000000"
    static let newRefresh = "rotated-refresh-secret-111111111111111111111"

    @Test func retiredAccessSecretStillVerifiesUntilRemoved() throws {
        let before = try Stacks.standard()
        let old = try before.newUser("rot").tokens.access
        let rotated = try Stack.start([
            "ACCESS_TOKEN_SECRET": Self.newAccess, "ACCESS_TOKEN_PREVIOUS_SECRETS": Secrets.access,
            "REFRESH_TOKEN_SECRET": Self.newRefresh, "REFRESH_TOKEN_PREVIOUS_SECRETS": Secrets.refresh,
        ])
        defer { rotated.shutdown() }
        #expect(try rotated.call("GET", "/", bearer: old).status == 200)
        let fresh = try rotated.newUser("rot").tokens.access
        #expect(try JWT(fresh).kid != JWT(old).kid, "the new secret signs")

        let retired = try Stack.start(["ACCESS_TOKEN_SECRET": Self.newAccess, "REFRESH_TOKEN_SECRET": Self.newRefresh])
        defer { retired.shutdown() }
        expectInvalidToken(try retired.call("GET", "/", bearer: old))
        #expect(try retired.call("GET", "/", bearer: fresh).status == 200)
    }

    @Test func jwksPublishesRetiredEd25519KeysToo() throws {
        let stack = try Stack.start(["JWT_ALG": "EdDSA", "ACCESS_TOKEN_SECRET": Self.newAccess,
                                     "ACCESS_TOKEN_PREVIOUS_SECRETS": Secrets.access])
        defer { stack.shutdown() }
        let keys = try #require(try stack.call("GET", "/.well-known/jwks.json").object?["keys"] as? [[String: Any]])
        #expect(keys.count == 2)
        let active = try JWT(try stack.newUser("rot").tokens.access).kid
        #expect(keys.first?["kid"] as? String == active, "the active key is listed first")
        #expect(Set(keys.compactMap { $0["kid"] as? String }).count == 2)
    }
}
