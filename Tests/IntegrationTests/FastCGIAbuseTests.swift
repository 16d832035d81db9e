import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// FastCGI peers that misbehave on authd's own socket (issue 11, items 3 and 7): kept
/// connections left silent, more idle kept connections than workers, requests trickled
/// in one byte at a time, roles other than RESPONDER, records of another request id,
/// a body longer than its CONTENT_LENGTH, and a second request pipelined on a kept
/// connection. Every wait is bounded; the bounds are generous (a loaded 2-core machine),
/// lower bounds only where they mean something.
@Suite("FastCGI abuse: kept connections, timeouts, roles, pipelining (own stacks)", .serialized)
struct FastCGIAbuseTests {
    /// For the tests that need no settings of their own; one authd, so that nothing
    /// reaches a second instance behind nginx.
    static let shared = SharedStack(Stack.oneInstance)
    static func stack(_ overrides: [String: String]) throws -> Stack {
        try Stack.start(Stack.oneInstance.merging(overrides) { $1 })
    }

    /// FastCGIServer.ioTimeoutSeconds (Sources/AuthFastCGI/FastCGIServer.swift): the
    /// bound of a whole request, from accept to its last STDIN record.
    static let ioTimeout = 5.0

    static let healthz: [(String, String)] = [
        ("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", "/healthz"), ("REQUEST_URI", "/healthz"),
        ("CONTENT_LENGTH", ""), ("REMOTE_ADDR", "127.0.0.1"),
    ]
    /// GET /healthz as nginx sends it on a kept connection: request id 1, KEEP_CONN.
    static let keptHealthz = FastCGIClient.requestBytes(requestID: 1, flags: FCGI.keepConn, params: healthz)

    static func format(_ seconds: Double) -> String { String(format: "%.2f s", seconds) }
    static func message(_ response: HTTPResponse) -> String? {
        (response.object?["error"] as? [String: Any])?["message"] as? String
    }

    /// authd still serves: through nginx, and on a new connection of its own.
    func expectStillServing(_ stack: Stack, sourceLocation: SourceLocation = #_sourceLocation) {
        let viaNginx = Result { try HTTPClient(port: stack.port, timeout: 5).request("GET", "/healthz") }
        #expect((try? viaNginx.get())?.status == 200, "GET /healthz through nginx after the abuse: \(viaNginx)",
                sourceLocation: sourceLocation)
        let direct = Result { try FastCGIClient(socketPath: stack.authdSocket, timeout: 5).request(params: Self.healthz, stdin: []) }
        #expect((try? direct.get())?.status == 200, "GET /healthz on authd's socket after the abuse: \(direct)",
                sourceLocation: sourceLocation)
    }

    // MARK: A. idle timeout between requests on a kept connection

    @Test("A kept connection left silent after its answer is closed after FCGI_IDLE_TIMEOUT")
    func silentKeptConnectionIsClosedAfterTheIdleTimeout() throws {
        let idleTimeout = 2.0
        let stack = try Self.stack(["FCGI_IDLE_TIMEOUT": "2"])
        defer { stack.shutdown() }
        let peer = try RawFastCGIConnection(socketPath: stack.authdSocket)

        try #require(peer.send(Self.keptHealthz))
        try #require(peer.readAnswer(requestID: 1, timeout: 5), "no answer to the first request: \(peer.summary)")
        #expect(peer.response(1)?.status == 200, "\(peer.summary)")

        // Silent for less than the timeout: the connection is still kept, and serves again.
        pause(idleTimeout / 2)
        peer.pump(timeout: 0)
        try #require(peer.isOpen, "closed after \(Self.format(idleTimeout / 2)) of silence, before FCGI_IDLE_TIMEOUT=2: \(peer.summary)")
        try #require(peer.send(Self.keptHealthz))
        try #require(peer.read(timeout: 5) { $0.records.filter { $0.type == FCGI.endRequest }.count >= 2 },
                     "no answer to the second request on the kept connection: \(peer.summary)")
        let answered = peer.records.last { $0.type == FCGI.endRequest }!.at

        // Then silent for good: authd closes it FCGI_IDLE_TIMEOUT after its last answer
        // (not after the connect, which was longer ago than that by now).
        let bound = idleTimeout + 4
        guard let closed = peer.waitForClose(timeout: bound) else {
            Issue.record("kept connection still open \(Self.format(monotonicNow() - answered)) after its last answer (FCGI_IDLE_TIMEOUT=2): \(peer.summary)")
            return
        }
        let idle = closed - answered
        #expect(idle >= idleTimeout - 0.5, "closed \(Self.format(idle)) after the last answer, before FCGI_IDLE_TIMEOUT=2")
        #expect(idle <= idleTimeout + 2, "closed only \(Self.format(idle)) after the last answer (FCGI_IDLE_TIMEOUT=2)")
        expectStillServing(stack)
    }

    // MARK: B. idle kept connections cannot starve new ones

    @Test("24 idle kept connections on 16 workers: nginx is still served, the longest-idle are closed")
    func idlePeersDoNotStarveNginx() throws {
        let workers = 16
        let stack = try Self.stack(["WORKERS": String(workers), "FCGI_IDLE_TIMEOUT": "60"])
        defer { stack.shutdown() }
        // The rule: at most WORKERS - max(1, WORKERS/8) workers wait on idle kept connections.
        let maxParked = workers - max(1, workers / 8)

        let peers = try (0..<24).map { _ in try RawFastCGIConnection(socketPath: stack.authdSocket) }
        for peer in peers { peer.send(Self.keptHealthz) }
        let answerWindow = 8.0
        let deadline = monotonicNow() + answerWindow
        while monotonicNow() < deadline, peers.contains(where: { $0.endRequest(1) == nil && $0.isOpen }) {
            for peer in peers { peer.pump(timeout: 0) }
            pause(0.02)
        }
        let answered = peers.filter { $0.endRequest(1) != nil && $0.response(1)?.status == 200 }.count
        #expect(answered == peers.count,
                "only \(answered) of \(peers.count) KEEP_CONN peers got their answer within \(Self.format(answerWindow)) (WORKERS=\(workers)); the others wait unaccepted")
        pause(0.3)
        for peer in peers { peer.pump(timeout: 0) }
        let closedBefore = peers.filter { !$0.isOpen }.count

        // nginx now needs a worker for a new connection of its own.
        let client = HTTPClient(port: stack.port, timeout: 3)
        var served = 0
        var failure: String?
        for attempt in 1...20 {
            let started = monotonicNow()
            let result = Result { try client.request("GET", "/healthz") }
            let took = monotonicNow() - started
            for peer in peers { peer.pump(timeout: 0) }
            if case .success(let response) = result, response.status == 200 {
                served += 1
                continue
            }
            failure = "request \(attempt) of 20 through nginx: \(result) after \(Self.format(took))"
            break
        }
        if let failure {
            // What nginx itself makes of it, with its own timeouts (fastcgi_read_timeout):
            // a few more with a long client timeout, until one is not a 200 (a request may
            // land on an nginx worker whose kept connection still has its authd worker).
            var seen: [String] = []
            for _ in 0..<3 {
                let started = monotonicNow()
                let result = Result { try HTTPClient(port: stack.port, timeout: 15).request("GET", "/healthz") }
                let status = (try? result.get())?.status
                seen.append("\(status.map(String.init) ?? "\(result)") after \(Self.format(monotonicNow() - started))")
                if status != 200 { break }
            }
            Issue.record("\(failure); \(served) served before it; then with a 15 s client timeout: \(seen.joined(separator: ", "))")
        }

        pause(0.5)
        for peer in peers { peer.pump(timeout: 0) }
        let closed = peers.filter { !$0.isOpen }
        #expect(closed.count >= peers.count - maxParked,
                "\(closed.count) of \(peers.count) idle peers closed by authd; at most \(maxParked) may stay parked")
        #expect(closed.count > closedBefore,
                "no idle peer was closed while nginx was served (\(closedBefore) closed before nginx's requests, \(closed.count) after)")
        let unanswered = closed.filter { $0.endRequest(1) == nil }
        #expect(unanswered.isEmpty, "peers closed before their answer: \(unanswered.map(\.summary))")
        expectStillServing(stack)
    }

    // MARK: C. a bound on the whole request, not on each read

    enum Trickle: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case wholeRequest = "the whole request"
        case bodyOnly = "the body, after params sent at once"
        var testDescription: String { rawValue }

        /// What is sent at once, then what is sent one byte a second.
        var bytes: (head: [UInt8], trickled: [UInt8]) {
            switch self {
            case .wholeRequest:
                return ([], FastCGIClient.requestBytes(params: FastCGIAbuseTests.healthz))
            case .bodyOnly:
                let body = Array(#"{"username":"trickle","password":"pw0"}"#.utf8)
                let params: [(String, String)] = [
                    ("REQUEST_METHOD", "POST"), ("DOCUMENT_URI", "/auth/login"), ("CONTENT_TYPE", "application/json"),
                    ("CONTENT_LENGTH", String(body.count)), ("REMOTE_ADDR", "127.0.0.1"),
                ]
                let head = FastCGIClient.beginRequest() + FastCGIClient.stream(type: FCGI.params, FastCGIClient.encodeParams(params))
                return (head, FastCGIClient.stream(type: FCGI.stdin, body))
            }
        }
    }

    @Test("A request trickled in one byte a second is cut off after the I/O timeout", arguments: Trickle.allCases)
    func trickledRequestIsCutOff(_ trickle: Trickle) throws {
        let stack = try Self.shared.get()
        let (head, trickled) = trickle.bytes
        let watch = 15.0
        #expect(Double(trickled.count) > watch, "the trickle must outlast the watch")
        let peer = try RawFastCGIConnection(socketPath: stack.authdSocket)
        if !head.isEmpty { peer.send(head) }
        var sent = 0
        var nextAt = monotonicNow()
        // One byte a second: no single read of authd's waits anywhere near 5 s.
        while peer.isOpen, monotonicNow() - peer.opened < watch {
            if monotonicNow() >= nextAt, sent < trickled.count {
                if peer.send([trickled[sent]]) { sent += 1 }
                nextAt += 1
            }
            peer.pump(timeout: 0.05)
        }
        guard let closed = peer.closedAt else {
            Issue.record("trickled connection still open after \(Self.format(monotonicNow() - peer.opened)) (\(sent) of \(trickled.count) bytes of \(trickle.rawValue) sent, one a second): \(peer.summary)")
            return
        }
        let lifetime = closed - peer.opened
        #expect(lifetime >= Self.ioTimeout - 1, "closed after \(Self.format(lifetime)), before the \(Self.ioTimeout) s bound: \(peer.summary)")
        #expect(lifetime <= Self.ioTimeout + 3, "closed only after \(Self.format(lifetime)) (bound \(Self.ioTimeout) s for the whole request): \(peer.summary)")
        // No answer, or a 400: never the request served.
        let out = peer.stdout()
        #expect(out.isEmpty || peer.response(1)?.status == 400, "answer to a request cut off: \(peer.summary)")
        expectStillServing(stack)
    }

    // MARK: D. roles other than RESPONDER

    @Test("AUTHORIZER and FILTER requests get END_REQUEST with FCGI_UNKNOWN_ROLE and nothing on STDOUT",
          arguments: [FCGI.authorizer, FCGI.filter])
    func otherRolesAreRefused(_ role: UInt16) throws {
        let stack = try Self.shared.get()
        let peer = try RawFastCGIConnection(socketPath: stack.authdSocket)
        try #require(peer.send(FastCGIClient.requestBytes(requestID: 1, role: role, params: Self.healthz)))
        peer.readAnswer(requestID: 1, timeout: 5)
        let end = peer.endRequest(1)?.endRequest
        #expect(end?.protocolStatus == FCGI.unknownRole,
                "role \(role): END_REQUEST protocolStatus \(end.map { "\($0.protocolStatus)" } ?? "none"), want FCGI_UNKNOWN_ROLE (3): \(peer.summary)")
        #expect(peer.stdout().isEmpty, "role \(role) was answered on STDOUT: \(peer.summary)")
    }

    // MARK: E. records of another request id

    enum StrayParams: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case method = "REQUEST_METHOD=DELETE"
        case authorization = "HTTP_AUTHORIZATION"
        var testDescription: String { rawValue }

        /// The stray pairs (sent with request id 2), and request 1's own params.
        var params: (stray: [(String, String)], own: [(String, String)]) {
            switch self {
            case .method:
                // Merged (first wins), request 1 would be DELETE /healthz: a 405.
                return ([("REQUEST_METHOD", "DELETE")], FastCGIAbuseTests.healthz)
            case .authorization:
                // Merged, GET / would carry a bad token (401 invalid_token) instead of none.
                return ([("HTTP_AUTHORIZATION", "Bearer stray.params.token")],
                        [("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", "/"), ("REQUEST_URI", "/"), ("REMOTE_ADDR", "127.0.0.1")])
            }
        }
    }

    @Test("A PARAMS record of another request id inside request 1: refused, connection closed, no answer",
          arguments: StrayParams.allCases)
    func paramsOfAnotherRequestIDAreRefused(_ stray: StrayParams) throws {
        let stack = try Self.shared.get()
        let (strayPairs, own) = stray.params
        let bytes = FastCGIClient.beginRequest(requestID: 1, flags: FCGI.keepConn)
            + FastCGIClient.record(type: FCGI.params, requestID: 2, FastCGIClient.encodeParams(strayPairs))
            + FastCGIClient.stream(type: FCGI.params, requestID: 1, FastCGIClient.encodeParams(own))
            + FastCGIClient.stream(type: FCGI.stdin, requestID: 1, [])
        let peer = try RawFastCGIConnection(socketPath: stack.authdSocket)
        try #require(peer.send(bytes))
        let window = 4.0
        peer.waitForClose(timeout: window)
        let served = peer.response(1).map { "HTTP \($0.status) (WWW-Authenticate: \($0.header("WWW-Authenticate") ?? "none"))" }
        #expect(peer.stdout().isEmpty, "request 1 with a stray \(stray.rawValue) PARAMS record of id 2 was served: \(served ?? "?"); \(peer.summary)")
        #expect(!peer.isOpen, "connection still open \(Self.format(window)) after a PARAMS record of another request id: \(peer.summary)")
        expectStillServing(stack)
    }

    // MARK: F. CONTENT_LENGTH smaller than the body

    static let fortyByteLogin = Array(#"{"username":"abuse","password":"pw-012"}"#.utf8)

    @Test("A body longer than its CONTENT_LENGTH (under 16 KiB) is a 400")
    func bodyLongerThanItsContentLengthIs400() throws {
        let stack = try Self.shared.get()
        #expect(Self.fortyByteLogin.count == 40)
        let response = try FastCGIClient(socketPath: stack.authdSocket).request(params: [
            ("REQUEST_METHOD", "POST"), ("DOCUMENT_URI", "/auth/login"), ("CONTENT_TYPE", "application/json"),
            ("CONTENT_LENGTH", "5"), ("REMOTE_ADDR", "127.0.0.1"),
        ], stdin: Self.fortyByteLogin)
        expectError(response, status: 400, message: "Request body longer than its Content-Length")
    }

    /// Controls for the check above (these pass today): the same body with its true
    /// length is an ordinary login, and so is a chunked POST through nginx, whose
    /// CONTENT_LENGTH nginx fills in once it has read the body.
    @Test("Control: a body matching its CONTENT_LENGTH, and a chunked POST through nginx, are ordinary logins")
    func bodyMatchingItsContentLengthIsServed() throws {
        let stack = try Self.shared.get()
        let exact = try FastCGIClient(socketPath: stack.authdSocket).request(params: [
            ("REQUEST_METHOD", "POST"), ("DOCUMENT_URI", "/auth/login"), ("CONTENT_TYPE", "application/json"),
            ("CONTENT_LENGTH", String(Self.fortyByteLogin.count)), ("REMOTE_ADDR", "127.0.0.1"),
        ], stdin: Self.fortyByteLogin)
        expectError(exact)
        #expect(Self.message(exact)?.contains("Content-Length") == false, "\(exact)")
        #expect(exact.status == 401 || exact.status == 400, "\(exact)")

        let hex = String(Self.fortyByteLogin.count, radix: 16)
        let chunked = Array("""
            POST /auth/login HTTP/1.1\r
            Host: 127.0.0.1:\(stack.port)\r
            Connection: close\r
            Content-Type: application/json\r
            Transfer-Encoding: chunked\r
            \r
            \(hex)\r

            """.utf8) + Self.fortyByteLogin + Array("\r\n0\r\n\r\n".utf8)
        let viaNginx = try HTTPClient(port: stack.port, timeout: 5).exchange(chunked)
        #expect(viaNginx.status == exact.status && Self.message(viaNginx) == Self.message(exact),
                "chunked through nginx: \(viaNginx); with CONTENT_LENGTH on authd's socket: \(exact)")
    }

    // MARK: G. a second request pipelined on a kept connection

    @Test("A pipelined second request gets FCGI_CANT_MPX_CONN after the first's answer, then the connection closes")
    func pipelinedSecondRequestIsRefused() throws {
        let stack = try Self.shared.get()
        let peer = try RawFastCGIConnection(socketPath: stack.authdSocket)
        let bytes = FastCGIClient.requestBytes(requestID: 1, flags: FCGI.keepConn, params: Self.healthz)
            + FastCGIClient.requestBytes(requestID: 2, flags: FCGI.keepConn, params: Self.healthz)
        try #require(peer.send(bytes))  // one write: both are in authd's first read
        let window = 4.0
        peer.waitForClose(timeout: window)

        #expect(peer.response(1)?.status == 200, "request 1 not answered in full: \(peer.summary)")
        let end1 = peer.endRequest(1)
        #expect(end1?.endRequest?.protocolStatus == FCGI.requestComplete, "request 1: \(peer.summary)")
        let end2 = peer.endRequest(2)
        #expect(end2?.endRequest?.protocolStatus == FCGI.cantMpxConn,
                "request 2: END_REQUEST protocolStatus \(end2?.endRequest.map { "\($0.protocolStatus)" } ?? "none"), want FCGI_CANT_MPX_CONN (1): \(peer.summary)")
        #expect(peer.stdout(2).isEmpty, "request 2 was answered on STDOUT: \(peer.summary)")
        if let i1 = peer.records.firstIndex(where: { $0.type == FCGI.endRequest && $0.requestID == 1 }),
           let i2 = peer.records.firstIndex(where: { $0.type == FCGI.endRequest && $0.requestID == 2 }) {
            #expect(i1 < i2, "request 2 refused before request 1 was answered: \(peer.summary)")
        }
        if let closed = peer.closedAt {
            let after = closed - (end1?.at ?? peer.opened)
            #expect(after <= 2, "closed \(Self.format(after)) after request 1's answer: \(peer.summary)")
        } else {
            Issue.record("connection still open \(Self.format(monotonicNow() - peer.opened)) after the pipelined write: \(peer.summary)")
        }
        expectStillServing(stack)
    }
}
