@testable import AuthCore
import Testing

/// `Endpoint.route` is the one route table: every row routes to itself, and the answers
/// for other methods come from the same rows.
@Suite struct RouteTableTests {
    static func concrete(_ path: String) -> String { path.replacingOccurrences(of: "{id}", with: "AAAAAAAAAAAAAAAAAAAAAA") }

    @Test(arguments: Endpoint.allCases)
    func everyRowRoutesToItself(_ endpoint: Endpoint) {
        let (method, path, _) = endpoint.route
        #expect(AuthService.route(Self.concrete(path), method) == .found(endpoint))
        if method == "GET" { #expect(AuthService.route(Self.concrete(path), "HEAD") == .found(endpoint)) }
        let allow = method == "GET" ? "GET, HEAD" : method
        #expect(AuthService.route(Self.concrete(path), "PATCH") == .wrongMethod(allow: allow))
        #expect(endpoint.label == path)
    }

    @Test func pathsAndLabelsAreUnique() {
        let rows = Endpoint.allCases.map { "\($0.route.method) \($0.route.path)" }
        #expect(Set(rows).count == rows.count)
        #expect(Set(Endpoint.allCases.map(\.label)).count == Endpoint.allCases.count)
    }

    @Test func unknownPathsAreNotFound() {
        for path in ["/auth", "/auth/", "/auth/sessions/", "/AUTH/LOGIN", "/auth/login/", ""] {
            #expect(AuthService.route(path, "POST") == .unknownPath, "\(path)")
        }
    }
}
