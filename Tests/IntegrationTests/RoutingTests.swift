import Foundation
import Testing

@Suite("Routing: 404 and 405")
struct RoutingTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    @Test(arguments: [
        ("GET", "/nope"), ("GET", "/auth"), ("GET", "/auth/unknown"), ("POST", "/auth/registerx"),
        ("GET", "/.well-known/openid-configuration"), ("DELETE", "/users/1"), ("GET", "/healthz/extra"),
        ("GET", "/auth/sessions/"), ("DELETE", "/auth/sessions/"), ("GET", "/auth/sessionsx"), ("GET", "/auth/password/x"),
        ("DELETE", "/auth/account/x"), ("DELETE", "/auth/accounts"),
    ])
    func unknownPathIs404(method: String, path: String) throws {
        expectError(try stack.call(method, path), status: 404)
    }

    @Test(arguments: [
        ("GET", "/auth/register", "POST"),
        ("GET", "/auth/login", "POST"),
        ("PUT", "/auth/login", "POST"),
        ("GET", "/auth/refresh-token", "POST"),
        ("GET", "/auth/logout", "DELETE"),
        ("POST", "/auth/logout", "DELETE"),
        ("GET", "/auth/logout-all", "POST"),
        ("POST", "/", "GET"),
        ("DELETE", "/auth/me", "GET"),
        ("POST", "/healthz", "GET"),
        ("PUT", "/readyz", "GET"),
        ("POST", "/.well-known/jwks.json", "GET"),
        ("PATCH", "/auth/register", "POST"),
        ("POST", "/auth/sessions", "GET"),
        ("DELETE", "/auth/sessions", "GET"),
        ("GET", "/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA", "DELETE"),
        ("POST", "/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA", "DELETE"),
        ("GET", "/auth/password", "POST"),
        ("PUT", "/auth/password", "POST"),
        ("GET", "/auth/account", "DELETE"),
        ("POST", "/auth/account", "DELETE"),
    ])
    func wrongMethodIs405WithAllow(method: String, path: String, allowed: String) throws {
        let response = try stack.call(method, path)
        expectError(response, status: 405)
        let allow = (response.header("Allow") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(allow.contains(allowed), "Allow: \(response.header("Allow") ?? "(missing)")")
        #expect(!allow.contains(method), "Allow lists the refused method: \(response.header("Allow") ?? "")")
    }

    /// The exact `Allow` of the account routes (no token: routing comes first).
    @Test(arguments: [
        ("/auth/sessions", "PUT", ["GET", "HEAD"]),
        ("/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA", "PUT", ["DELETE"]),
        ("/auth/password", "DELETE", ["POST"]),
        ("/auth/account", "PATCH", ["DELETE"]),
    ])
    func accountRoutesAllowExactly(path: String, method: String, allowed: [String]) throws {
        let response = try stack.call(method, path)
        expectError(response, status: 405)
        let allow = Set((response.header("Allow") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        #expect(allow == Set(allowed), "Allow: \(response.header("Allow") ?? "(missing)")")
    }

    @Test func headAnswersLikeGetWithoutABody() throws {
        let response = try stack.call("HEAD", "/healthz")
        #expect(response.status == 200 && response.body.isEmpty, "\(response)")
    }
}
