import Foundation
import Testing

/// Expects the API's error shape: `{"error":{"status":<HTTP status>,"code":"<name>","message":"<non-empty>"}}`
/// with a JSON content type; optionally an exact status and message.
func expectError(
    _ response: HTTPResponse, status: Int? = nil, message: String? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    if let status {
        #expect(response.status == status, "expected \(status): \(response)", sourceLocation: sourceLocation)
    }
    #expect(
        response.header("Content-Type")?.lowercased().hasPrefix("application/json") == true,
        "error without a JSON content type: \(response)", sourceLocation: sourceLocation)
    guard let error = response.object?["error"] as? [String: Any] else {
        Issue.record("not the error shape: \(response)", sourceLocation: sourceLocation)
        return
    }
    let statusField = error["status"] as? NSNumber
    #expect(
        statusField != nil && !(error["status"] is Bool) && statusField?.intValue == response.status,
        "error.status \(String(describing: error["status"])) is not the HTTP status \(response.status)",
        sourceLocation: sourceLocation)
    let code = error["code"] as? String
    #expect(code.map { !$0.isEmpty && $0.allSatisfy { $0.isLowercase || $0 == "_" } } == true,
            "error.code missing or not a snake_case name: \(response)", sourceLocation: sourceLocation)
    let text = error["message"] as? String
    #expect(text?.isEmpty == false, "error.message missing or empty: \(response)", sourceLocation: sourceLocation)
    if let message {
        #expect(text == message, "message: \(response)", sourceLocation: sourceLocation)
    }
}

/// Expects a client error (any 4xx) in the error shape.
func expectClientError(_ response: HTTPResponse, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect((400..<500).contains(response.status), "expected 4xx: \(response)", sourceLocation: sourceLocation)
    expectError(response, sourceLocation: sourceLocation)
}

/// Expects 401 for a request that carried no credentials: `WWW-Authenticate: Bearer` alone.
func expectMissingCredentials(_ response: HTTPResponse, sourceLocation: SourceLocation = #_sourceLocation) {
    expectError(response, status: 401, message: "Unauthorized", sourceLocation: sourceLocation)
    #expect(response.header("WWW-Authenticate") == "Bearer", "\(response)", sourceLocation: sourceLocation)
}

/// Expects 401 for a bad token: an RFC 6750 `invalid_token` challenge and the message
/// `Unauthorized` (or `jwt expired`).
func expectInvalidToken(
    _ response: HTTPResponse, expired: Bool = false, sourceLocation: SourceLocation = #_sourceLocation
) {
    expectError(response, status: 401, message: expired ? "jwt expired" : "Unauthorized", sourceLocation: sourceLocation)
    let challenge = response.header("WWW-Authenticate") ?? ""
    #expect(challenge.hasPrefix("Bearer "), "challenge: \(response)", sourceLocation: sourceLocation)
    #expect(challenge.contains("error=\"invalid_token\""), "challenge: \(response)", sourceLocation: sourceLocation)
    #expect(challenge.contains("error_description=\""), "challenge: \(response)", sourceLocation: sourceLocation)
}

/// Expects a token answer: the status, both tokens, `Cache-Control: no-store`.
@discardableResult
func expectTokens(
    _ response: HTTPResponse, status: Int, sourceLocation: SourceLocation = #_sourceLocation
) throws -> TokenPair {
    try #require(response.status == status, "expected \(status): \(response)", sourceLocation: sourceLocation)
    #expect(
        response.header("Cache-Control")?.lowercased().contains("no-store") == true,
        "token response without Cache-Control: no-store: \(response)", sourceLocation: sourceLocation)
    #expect(
        response.header("Content-Type")?.lowercased().hasPrefix("application/json") == true,
        "\(response)", sourceLocation: sourceLocation)
    let pair = try TokenPair(response, sourceLocation: sourceLocation)
    _ = try JWT(pair.access)
    _ = try JWT(pair.refresh)
    return pair
}

/// Expects 204 and no body.
func expectNoContent(_ response: HTTPResponse, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(response.status == 204, "expected 204: \(response)", sourceLocation: sourceLocation)
    #expect(response.body.isEmpty, "204 with a body: \(response)", sourceLocation: sourceLocation)
}

/// Polls `attempt` until it returns true or `timeout` seconds pass.
func eventually(timeout: Double, _ attempt: () throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    repeat {
        if try attempt() { return true }
        try await Task.sleep(for: .milliseconds(100))
    } while Date() < deadline
    return try attempt()
}
