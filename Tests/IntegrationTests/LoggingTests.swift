import Foundation
import Testing

/// authd's log: one JSON object per line on stderr, carrying nginx's request id.
@Suite("JSON logs")
struct LoggingTests {
    /// One authd, so that the request's line is in its one log.
    private static let single = SharedStack(Stack.oneInstance)

    @Test func everyLineIsJSONAndCarriesTheRequestId() throws {
        let stack = try Self.single.get()
        let user = try stack.newUser("logs")
        _ = try stack.rotate(user.tokens.refresh)
        let replay = try stack.refresh(user.tokens.refresh)
        let requestID = try #require(replay.header("X-Request-Id"), "\(replay)")
        #expect(replay.status == 403)
        let lines = try String(contentsOfFile: stack.authdLogPath, encoding: .utf8).split(separator: "\n")
        #expect(!lines.isEmpty)
        var replayLine: [String: Any]?
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["time"] is String && object?["level"] is String && object?["message"] is String, "not a JSON log line: \(line)")
            if object?["request_id"] as? String == requestID { replayLine = object }
        }
        #expect(replayLine?["message"] as? String == "refresh token replayed; session ended", "no log line with request_id \(requestID)")
        #expect(replayLine?["level"] as? String == "warning")
    }
}
