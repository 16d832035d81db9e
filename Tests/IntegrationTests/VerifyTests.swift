import Foundation
import Testing

/// GET /auth/verify through nginx, asked directly (as a client, or a health probe of the
/// gateway, would): the answers nginx's `auth_request` subrequest gets.
@Suite("GET /auth/verify")
struct VerifyTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    @Test func aValidTokenIs204WithTheIdentityHeaders() throws {
        let user = try stack.newUser("verify")
        let jwt = try JWT(user.tokens.access)
        #expect(jwt.string("preferred_username") == user.username)
        let response = try stack.call("GET", "/auth/verify", bearer: user.tokens.access)
        #expect(response.status == 204, "\(response)")
        #expect(response.body.isEmpty)
        #expect(response.header("X-Auth-User") == jwt.string("sub"))
        #expect(response.header("X-Auth-Session") == jwt.string("sid"))
        #expect(response.header("X-Auth-Username") == user.username)
        #expect(response.header("X-Auth-Roles") == "")
        #expect(response.header("X-Auth-Expires") == (jwt.payload["exp"] as? NSNumber)?.stringValue)
        #expect(response.header("Cache-Control") == "no-store")
    }

    /// nginx's subrequest carries the main request's method; a body never matters.
    @Test(arguments: ["HEAD", "POST", "PUT", "PATCH", "DELETE"])
    func everyMethodIsAnswered(method: String) throws {
        let user = try stack.newUser("vmethod")
        let body: [UInt8]? = method == "HEAD" ? nil : Array(#"{"any":"body"}"#.utf8)
        let response = try stack.call(method, "/auth/verify", body: body, bearer: user.tokens.access)
        #expect(response.status == 204, "\(response)")
        #expect(response.header("X-Auth-Username") == user.username)
    }

    @Test(arguments: BadAccessToken.allCases)
    func badTokensAre401AsOnProtectedRoutes(kind: BadAccessToken) throws {
        let user = try stack.newUser("vbad")
        let response = try stack.call("GET", "/auth/verify", bearer: try kind.make(from: user.tokens))
        expectInvalidToken(response, expired: kind.isExpired)
        #expect(response.header("X-Auth-User") == nil)
        // The error object again in a header, for nginx (it drops a subrequest's body).
        #expect(response.header("X-Auth-Error") == String(decoding: response.body, as: UTF8.self).trimmingCharacters(in: .newlines))
    }

    @Test func noTokenIs401WithTheBareChallenge() throws {
        expectMissingCredentials(try stack.call("GET", "/auth/verify"))
    }

    /// A client cannot set a location's requirement: its header reaches authd as
    /// HTTP_AUTHD_REQUIRE_ROLE, not AUTHD_REQUIRE_ROLE.
    @Test func aClientHeaderSetsNoRequirement() throws {
        let user = try stack.newUser("vforge")
        let response = try stack.call("GET", "/auth/verify", bearer: user.tokens.access, headers: [
            ("Authd-Require-Role", "admin"), ("Authd-Require-Session-Check", "bogus"),
        ])
        #expect(response.status == 204, "\(response)")
    }
}
