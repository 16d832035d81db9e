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

    /// nginx's access log (`log_format authd_json escape=json`): escape=json passes bytes
    /// >= 0x80 through as they are, so a client could make a line invalid UTF-8, which a
    /// log shipper cannot parse as JSON. deploy/nginx.conf maps every client-controlled
    /// field that can carry such bytes (the User-Agent, the decoded path) to a marker
    /// unless it is valid UTF-8; valid UTF-8 is logged as it is.
    @Test func everyAccessLogLineIsValidUTF8AndJSON() throws {
        let stack = try Self.single.get()
        func send(path: [UInt8], agent: [UInt8]?) throws -> String {
            let head = Array("GET ".utf8) + path + Array(" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".utf8)
            let header = agent.map { Array("User-Agent: ".utf8) + $0 + Array("\r\n".utf8) } ?? []
            let response = try stack.client.exchange(head + header + Array("\r\n".utf8))
            return try #require(response.header("X-Request-Id"), "\(response)")
        }
        let invalid = "(invalid UTF-8)"
        let cases: [(path: [UInt8], agent: [UInt8]?, loggedPath: String, loggedAgent: String)] = [
            // %FF and %FE are decoded into $uri as raw bytes; a lone 0xFF, 0xFE, 0x80 in the header.
            (Array("/auth/me%FF%FE".utf8), Array("probe/1 ".utf8) + [0xFF, 0xFE, 0x80] + Array(" end".utf8), invalid, invalid),
            // A raw Latin-1 é in the request line; a lead byte whose continuation is missing.
            (Array("/caf".utf8) + [0xE9], [0xC3, 0x28], invalid, invalid),
            // Overlong "/" (C0 AF), a UTF-16 surrogate (ED A0 80), beyond U+10FFFF (F4 90 80 80).
            (Array("/x%C0%AF".utf8), [0xED, 0xA0, 0x80, 0x20, 0xF4, 0x90, 0x80, 0x80], invalid, invalid),
            // Valid UTF-8 of every length stays as it is.
            (Array("/caf%C3%A9/%E2%82%AC/%F0%9F%98%80".utf8), Array("Mozilla/5.0 (café; €; 😀)".utf8), "/café/€/😀", "Mozilla/5.0 (café; €; 😀)"),
            // Near nginx's 8 KiB limit of a request line and a header line, one character
            // per regex repetition: still matched, not an error of the regex engine.
            (Array(("/" + String(repeating: "é", count: 3000)).utf8), Array(String(repeating: "é", count: 3900).utf8),
             "/" + String(repeating: "é", count: 3000), String(repeating: "é", count: 3900)),
            (Array("/ok".utf8), Array(String(repeating: "é", count: 3900).utf8) + [0xFF], "/ok", invalid),
            // No User-Agent at all, and an empty one.
            (Array("/ok".utf8), nil, "/ok", ""),
            (Array("/ok".utf8), [], "/ok", ""),
        ]
        let ids = try cases.map { try send(path: $0.path, agent: $0.agent) }
        // A method and a protocol that are not ASCII: nginx refuses them (400) itself.
        for line in [Array("G".utf8) + [0xFF] + Array("T /ok HTTP/1.1".utf8), Array("GET /ok HTTP/1.".utf8) + [0xFF]] {
            expectError(try stack.client.exchange(line + Array("\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)), status: 400)
        }
        // nginx may write a request's line just after the answer has gone out.
        var bytes: [UInt8] = []
        for _ in 0..<100 {
            bytes = Array((FileManager.default.contents(atPath: stack.dir + "/nginx/logs/access.log")) ?? Data())
            if ids.allSatisfy({ bytes.firstRange(of: Array($0.utf8)) != nil }) { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        var byID: [String: [String: Any]] = [:]
        let lines = bytes.split(separator: 0x0A)
        #expect(lines.count >= ids.count)
        for (number, line) in lines.enumerated() {
            let shown = String(decoding: line, as: UTF8.self)
            guard String(validating: line, as: UTF8.self) != nil else {
                Issue.record("access log line \(number + 1) is not valid UTF-8: \(shown)")
                continue
            }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                Issue.record("access log line \(number + 1) is not a JSON object: \(shown)")
                continue
            }
            if let id = object["request_id"] as? String { byID[id] = object }
        }
        for (id, expected) in zip(ids, cases) {
            let object = byID[id]
            #expect(object?["path"] as? String == expected.loggedPath, "\(object ?? [:])")
            #expect(object?["user_agent"] as? String == expected.loggedAgent, "\(object ?? [:])")
        }
    }
}
