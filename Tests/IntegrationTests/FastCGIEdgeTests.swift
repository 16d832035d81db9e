import Foundation
import Testing

/// What authd enforces by itself, talking FastCGI to its socket without nginx in front:
/// the application must not rely on nginx for the body limit or for well-formed input.
@Suite("FastCGI edge: authd without nginx")
struct FastCGIEdgeTests {
    let stack: Stack
    let fcgi: FastCGIClient
    init() throws {
        stack = try Stacks.standard()
        fcgi = FastCGIClient(socketPath: stack.authdSocket)
    }

    func post(_ path: String, body: [UInt8], contentLength: Int? = nil) throws -> HTTPResponse {
        try fcgi.request(params: [
            ("REQUEST_METHOD", "POST"), ("DOCUMENT_URI", path), ("CONTENT_TYPE", "application/json"),
            ("CONTENT_LENGTH", String(contentLength ?? body.count)),
        ], stdin: body)
    }

    static let oversized = Array(("{\"pad\":\"" + String(repeating: "x", count: 20_000) + "\"}").utf8)

    @Test func declaredOversizedBodyIs413() throws {
        expectError(try post("/auth/login", body: Self.oversized), status: 413)
    }

    @Test func understatedContentLengthStillHitsTheLimit() throws {
        // CONTENT_LENGTH says 100 but 20 KB arrive on stdin.
        expectError(try post("/auth/register", body: Self.oversized, contentLength: 100), status: 413)
    }

    @Test func bodyShorterThanItsContentLengthIs400() throws {
        // CONTENT_LENGTH says 100, stdin ends after 13 bytes: a cut request, not a body to parse.
        let response = try post("/auth/login", body: Array(#"{"username":"#.utf8), contentLength: 100)
        expectError(response, status: 400, message: "Request body shorter than its Content-Length")
    }

    @Test func bodyOfExactly16KiBIsRead() throws {
        let head = Array(#"{"username":"edge16k","pad":""#.utf8)
        let tail = Array(#""}"#.utf8)
        let body = head + [UInt8](repeating: UInt8(ascii: "x"), count: 16 * 1024 - head.count - tail.count) + tail
        #expect(body.count == 16 * 1024)
        let response = try post("/auth/login", body: body)
        expectError(response, status: 400, message: "Invalid username/password")
    }

    /// The query string reaches the handlers from `QUERY_STRING`, or from `REQUEST_URI`
    /// when a FastCGI client sends only that.
    @Test func queryStringIsReadFromQueryStringOrRequestURI() throws {
        let user = try stack.newUser("fcgiquery")
        _ = try stack.newSession(user)
        func count(_ params: [(String, String)]) throws -> Int? {
            let response = try fcgi.request(params: [("REQUEST_METHOD", "GET"), ("HTTP_AUTHORIZATION", "Bearer " + user.tokens.access)]
                                            + params, stdin: [])
            return (response.object?["sessions"] as? [Any])?.count
        }
        #expect(try count([("DOCUMENT_URI", "/auth/sessions"), ("QUERY_STRING", "limit=1")]) == 1)
        #expect(try count([("DOCUMENT_URI", "/auth/sessions"), ("QUERY_STRING", "")]) == 2)
        #expect(try count([("REQUEST_URI", "/auth/sessions?limit=1")]) == 1)
        // QUERY_STRING wins over REQUEST_URI's query, as DOCUMENT_URI does over its path.
        #expect(try count([("DOCUMENT_URI", "/auth/sessions"), ("REQUEST_URI", "/auth/sessions?limit=1"), ("QUERY_STRING", "")]) == 2)
        let refused = try fcgi.request(params: [("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", "/auth/sessions"), ("QUERY_STRING", "limit=0"),
                                                ("HTTP_AUTHORIZATION", "Bearer " + user.tokens.access)], stdin: [])
        expectError(refused, status: 400)
    }

    @Test func missingParamsDoNotCrashTheResponder() throws {
        // No params at all: treated as GET / without credentials.
        expectError(try fcgi.request(params: [], stdin: []), status: 401)
        // REQUEST_URI alone (no DOCUMENT_URI): the path is taken from it, query cut off.
        let viaRequestURI = try fcgi.request(params: [("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/healthz?x=1")], stdin: [])
        #expect(viaRequestURI.status == 200)
    }

    @Test(arguments: [
        [UInt8](repeating: 0xFF, count: 64),
        [1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0],           // truncated BEGIN_REQUEST
        [9, 9, 9, 9, 9, 9, 9, 9] + [UInt8](repeating: 0, count: 100),  // unknown protocol version
    ])
    func garbageOnTheSocketLeavesAuthdServing(_ bytes: [UInt8]) throws {
        _ = try? fcgi.exchange(bytes)
        #expect(try stack.call("GET", "/healthz").status == 200)
    }
}
