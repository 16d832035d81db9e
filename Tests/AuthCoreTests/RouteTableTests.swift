@testable import AuthCore
import Foundation
import Testing

/// `Endpoint.route` is the one route table: every row routes to itself, and the answers
/// for other methods come from the same rows.
@Suite struct RouteTableTests {
    /// What docs/openapi.yaml lists for an `ANY` row.
    static let anyMethod = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    static func concrete(_ path: String) -> String { path.replacingOccurrences(of: "{id}", with: "AAAAAAAAAAAAAAAAAAAAAA") }

    @Test(arguments: Endpoint.allCases)
    func everyRowRoutesToItself(_ endpoint: Endpoint) {
        let (method, path, _) = endpoint.route
        if method == "ANY" {
            for other in Self.anyMethod + ["OPTIONS", "PROPFIND"] { #expect(AuthService.route(path, other) == .found(endpoint)) }
            return
        }
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

    /// docs/openapi.yaml documents exactly the table's rows (GET ones with HEAD too): its
    /// `paths:` entries are read line by line (two-space path keys, four-space method keys).
    @Test func openAPIDocumentsExactlyTheTable() throws {
        let spec = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/openapi.yaml")
        var documented: [String] = [], path = ""
        for line in try String(contentsOf: spec, encoding: .utf8).split(separator: "\n") {
            if line.hasPrefix("  /"), line.hasSuffix(":") { path = String(line.dropFirst(2).dropLast()) }
            let methods = ["get", "head", "post", "put", "patch", "delete", "options"]
            if !path.isEmpty, let m = methods.first(where: { line == "    \($0):" }) { documented.append("\(m.uppercased()) \(path)") }
            if !line.hasPrefix(" ") && !line.hasPrefix("paths:") { path = "" }
        }
        let table = Endpoint.allCases.flatMap { e in
            let (method, path, _) = e.route
            let methods = method == "ANY" ? Self.anyMethod : method == "GET" ? ["GET", "HEAD"] : [method]
            return methods.map { "\($0) \(path)" }
        }
        #expect(documented.sorted() == table.sorted())
    }
}
