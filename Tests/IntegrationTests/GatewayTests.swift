import Foundation
import Testing

/// nginx's auth_request in front of an application (deploy/nginx/protect.conf): the demo
/// application of the local stack under /app/ answers with the identity headers it got.
@Suite("Gateway: /app/ behind auth_request")
struct GatewayTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    /// What the demo application saw, from its JSON answer.
    func seen(_ response: HTTPResponse, sourceLocation: SourceLocation = #_sourceLocation) -> [String: String] {
        #expect(response.object?["app"] as? String == "demo", "not the application's answer: \(response)",
                sourceLocation: sourceLocation)
        return (response.object ?? [:]).compactMapValues { $0 as? String }
    }

    @Test func theApplicationGetsTheIdentityOfAValidToken() throws {
        let user = try stack.newUser("gate")
        let jwt = try JWT(user.tokens.access)
        let response = try stack.call("GET", "/app/anything?x=1", bearer: user.tokens.access)
        #expect(response.status == 200, "\(response)")
        let app = seen(response)
        #expect(app["user"] == jwt.string("sub"))
        #expect(app["session"] == jwt.string("sid"))
        #expect(app["username"] == user.username)
        #expect(app["roles"] == "")
        #expect(app["expires"] == (jwt.payload["exp"] as? NSNumber)?.stringValue)
        #expect(app["method"] == "GET")
    }

    @Test func noTokenIs401AsOnProtectedRoutes() throws {
        let response = try stack.call("GET", "/app/")
        expectMissingCredentials(response)
        #expect(response.object?["error"].flatMap { ($0 as? [String: Any])?["code"] as? String } == "token_missing")
        #expect(response.header("X-Request-Id")?.isEmpty == false)
    }

    @Test(arguments: BadAccessToken.allCases)
    func everyTokenAttackIsRefusedAtTheApplication(kind: BadAccessToken) throws {
        let user = try stack.newUser("gbad")
        let response = try stack.call("GET", "/app/", bearer: try kind.make(from: user.tokens))
        expectInvalidToken(response, expired: kind.isExpired)
        // authd's answer to the subrequest, byte for byte: its challenge once, its error object.
        let direct = try stack.call("GET", "/auth/verify", bearer: try kind.make(from: user.tokens))
        #expect(response.headers.filter { $0.name.lowercased() == "www-authenticate" }.map(\.value)
                == [direct.header("WWW-Authenticate") ?? "?"], "\(response)")
        #expect(response.text == direct.text)
        #expect(response.object?["app"] == nil, "reached the application: \(response)")
    }

    /// A header of the gateway's names sent by the client never reaches the application:
    /// with a valid token it gets authd's values, without one nothing at all.
    @Test func forgedIdentityHeadersNeverReachTheApplication() throws {
        let user = try stack.newUser("gforge")
        let forged = [("X-Auth-User", "admin-id"), ("X-Auth-Session", "forged"), ("X-Auth-Username", "root"),
                      ("X-Auth-Roles", "admin"), ("X-Auth-Expires", "9999999999")]
        let response = try stack.call("GET", "/app/", bearer: user.tokens.access, headers: forged)
        let app = seen(response)
        let jwt = try JWT(user.tokens.access)
        #expect(app["user"] == jwt.string("sub"))
        #expect(app["session"] == jwt.string("sid"))
        #expect(app["username"] == user.username)
        #expect(app["roles"] == "")
        #expect(app["expires"] != "9999999999")
        // A forged requirement header neither: the client's name is HTTP_AUTHD_*.
        let admin = try stack.call("GET", "/app/", bearer: user.tokens.access, headers: [("Authd-Require-Role", "x")])
        #expect(admin.status == 200)
        expectError(try stack.call("GET", "/app/", headers: forged), status: 401)
    }

    @Test func aLocationThatRequiresARoleIs403() throws {
        let user = try stack.newUser("grole")
        let response = try stack.call("GET", "/app/admin/", bearer: user.tokens.access, headers: [("X-Auth-Roles", "admin")])
        expectError(response, status: 403, message: "Forbidden: requires the role admin")
        #expect((response.object?["error"] as? [String: Any])?["code"] as? String == "role_required")
        expectError(try stack.call("GET", "/app/admin/"), status: 401)
    }

    /// The subrequest carries the method but no body: a body never makes verify a 400.
    @Test(arguments: ["POST", "PUT", "PATCH", "DELETE"])
    func requestsWithBodiesPassVerify(method: String) throws {
        let user = try stack.newUser("gbody")
        let body = Array(String(repeating: "x", count: 5000).utf8)
        let response = try stack.call(method, "/app/items", body: body, contentType: "text/plain", bearer: user.tokens.access)
        #expect(response.status == 200, "\(response)")
        let app = seen(response)
        #expect(app["method"] == method)
        #expect(app["contentLength"] == "5000")
        #expect(app["username"] == user.username)
    }

    @Test func headPassesToo() throws {
        let user = try stack.newUser("ghead")
        #expect(try stack.call("HEAD", "/app/", bearer: user.tokens.access).status == 200)
        #expect(try stack.call("HEAD", "/app/").status == 401)
    }

    /// A logout shuts the application at once: under a session check (one Redis read), and
    /// without one too (the revocations in memory).
    @Test func aLogoutClosesTheApplication() throws {
        let user = try stack.newUser("gstrict")
        #expect(try stack.call("GET", "/app/strict/", bearer: user.tokens.access).status == 200)
        #expect(try stack.call("GET", "/app/", bearer: user.tokens.access).status == 200)
        #expect(try stack.logout(user.tokens.refresh).status == 204)
        let ended = try stack.call("GET", "/app/strict/", bearer: user.tokens.access)
        expectSessionEnded(ended)
        #expect((ended.object?["error"] as? [String: Any])?["code"] as? String == "session_ended")
        try expectSessionEndedSoon { try stack.call("GET", "/app/", bearer: user.tokens.access) }
    }

    @Test func aBodyOverTheLimitIsTheJSON413() throws {
        let user = try stack.newUser("gbig")
        let response = try stack.call("POST", "/app/", body: Array(repeating: 120, count: 20_000), contentType: "text/plain",
                                      bearer: user.tokens.access)
        expectError(response, status: 413)
    }
}

/// The gateway's failure paths, each on a stack of its own: nginx turns any answer of the
/// subrequest but 2xx, 401 and 403 into a 500, which the shipped config must not show.
@Suite("Gateway failures (own stacks)")
struct GatewayFailureTests {
    @Test func redisDownIsAJSON503UnderASessionCheckAndNothingElseNotices() throws {
        let stack = try Stack.start()
        defer { stack.shutdown() }
        let user = try stack.newUser("gredis")
        stack.stopRedis()
        let strict = try stack.call("GET", "/app/strict/", bearer: user.tokens.access)
        expectError(strict, status: 503)
        #expect((strict.object?["error"] as? [String: Any])?["code"] as? String == "store_unavailable")
        #expect(strict.header("Retry-After") == "1", "\(strict)")
        let plain = try stack.call("GET", "/app/", bearer: user.tokens.access)
        #expect(plain.status == 200, "GET /app/ without a session check during the outage: \(plain)")
    }

    @Test func authdDownIsAJSON502NeverA500() throws {
        let stack = try Stack.start(Stack.oneInstance)
        defer { stack.shutdown() }
        let user = try stack.newUser("gauthd")
        _ = stack.stopAuthd()
        for path in ["/app/", "/app/strict/", "/app/admin/"] {
            let response = try stack.call("GET", path, bearer: user.tokens.access)
            expectError(response, status: 502)
            #expect((response.object?["error"] as? [String: Any])?["code"] as? String == "upstream_unavailable", "\(response)")
            #expect(response.header("Retry-After") == "1", "\(response)")
        }
    }
}
