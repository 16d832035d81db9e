import Foundation
import Testing

/// An access/refresh pair from a 200/201 answer.
struct TokenPair: Sendable {
    let access: String
    let refresh: String

    init(access: String, refresh: String) {
        self.access = access
        self.refresh = refresh
    }

    /// Parses without recording issues (safe off the test's task, e.g. on helper threads).
    static func parse(_ response: HTTPResponse) -> TokenPair? {
        guard let body = response.object, let access = body["accessToken"] as? String,
              let refresh = body["refreshToken"] as? String else { return nil }
        return TokenPair(access: access, refresh: refresh)
    }

    /// Requires the body to carry both tokens as strings.
    init(_ response: HTTPResponse, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let body = try #require(response.object, "not a JSON object: \(response)", sourceLocation: sourceLocation)
        access = try #require(body["accessToken"] as? String, "no accessToken: \(response)", sourceLocation: sourceLocation)
        refresh = try #require(body["refreshToken"] as? String, "no refreshToken: \(response)", sourceLocation: sourceLocation)
    }
}

/// A registered user and the session its registration started.
struct User: Sendable {
    let username: String
    let password: String
    let tokens: TokenPair
}

let validPassword = "correct horse battery"

/// A user name no other test uses: `prefix` plus ten random characters of a-z0-9.
func uniqueName(_ prefix: String = "u") -> String {
    let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
    return prefix + String((0..<10).map { _ in alphabet.randomElement()! })
}

extension Stack {
    /// Any request; `contentType: nil` sends no Content-Type header.
    func call(
        _ method: String, _ path: String,
        body: [UInt8]? = nil, contentType: String? = "application/json",
        bearer: String? = nil, headers: [(String, String)] = []
    ) throws -> HTTPResponse {
        var all = headers
        if body != nil, let contentType { all.append(("Content-Type", contentType)) }
        if let bearer { all.append(("Authorization", "Bearer \(bearer)")) }
        return try client.request(method, path, headers: all, body: body)
    }

    func call(_ method: String, _ path: String, json: [String: Any], bearer: String? = nil) throws -> HTTPResponse {
        try call(method, path, body: jsonBytes(json), bearer: bearer)
    }

    func register(_ username: String, _ password: String) throws -> HTTPResponse {
        try call("POST", "/auth/register", json: ["username": username, "password": password])
    }

    func login(_ username: String, _ password: String) throws -> HTTPResponse {
        try call("POST", "/auth/login", json: ["username": username, "password": password])
    }

    func refresh(_ refreshToken: String) throws -> HTTPResponse {
        try call("POST", "/auth/refresh-token", json: ["refreshToken": refreshToken])
    }

    func logout(_ refreshToken: String) throws -> HTTPResponse {
        try call("DELETE", "/auth/logout", json: ["refreshToken": refreshToken])
    }

    func logoutAll(_ accessToken: String?) throws -> HTTPResponse {
        try call("POST", "/auth/logout-all", bearer: accessToken)
    }

    /// `GET /`, the protected route that needs no Redis.
    func home(_ accessToken: String?) throws -> HTTPResponse {
        try call("GET", "/", bearer: accessToken)
    }

    func me(_ accessToken: String?) throws -> HTTPResponse {
        try call("GET", "/auth/me", bearer: accessToken)
    }

    func get(_ path: String, authorization: String? = nil) throws -> HTTPResponse {
        try call("GET", path, headers: authorization.map { [("Authorization", $0)] } ?? [])
    }

    /// Registers a fresh user; requires 201 and a token pair.
    /// A set-up step, answered like a well-behaved client would: a 503 with
    /// `Retry-After` (the password lane is full while parallel tests register) is retried
    /// after that many seconds, a few times.
    func retryingBusy(_ request: () throws -> HTTPResponse) throws -> HTTPResponse {
        var response = try request()
        for _ in 0..<10 where response.status == 503 {
            guard let wait = response.header("Retry-After").flatMap(Double.init) else { break }
            Thread.sleep(forTimeInterval: wait)
            response = try request()
        }
        return response
    }

    func newUser(_ prefix: String = "u", password: String = validPassword,
                 sourceLocation: SourceLocation = #_sourceLocation) throws -> User {
        let username = uniqueName(prefix)
        let response = try retryingBusy { try register(username, password) }
        try #require(response.status == 201, "register \(username): \(response)", sourceLocation: sourceLocation)
        return User(username: username, password: password, tokens: try TokenPair(response, sourceLocation: sourceLocation))
    }

    /// Logs the user in again (a new session); requires 200 and a token pair.
    func newSession(_ user: User, sourceLocation: SourceLocation = #_sourceLocation) throws -> TokenPair {
        let response = try retryingBusy { try login(user.username, user.password) }
        try #require(response.status == 200, "login \(user.username): \(response)", sourceLocation: sourceLocation)
        return try TokenPair(response, sourceLocation: sourceLocation)
    }

    /// Refreshes; requires 200 and a token pair.
    func rotate(_ refreshToken: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> TokenPair {
        let response = try refresh(refreshToken)
        try #require(response.status == 200, "refresh: \(response)", sourceLocation: sourceLocation)
        return try TokenPair(response, sourceLocation: sourceLocation)
    }
}
