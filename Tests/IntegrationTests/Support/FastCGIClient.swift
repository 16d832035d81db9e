import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Speaks FastCGI straight to authd's unix socket, bypassing nginx, to check what the
/// application enforces by itself (nginx would refuse some of these first).
struct FastCGIClient {
    let socketPath: String
    var timeout: Double = 10

    /// One responder request; the CGI answer is returned as an HTTP response.
    func request(params: [(String, String)], stdin: [UInt8]) throws -> HTTPResponse {
        // BEGIN_REQUEST (role RESPONDER, no keep-alive), PARAMS, STDIN.
        try Self.parse(exchange(Self.requestBytes(params: params, stdin: stdin)))
    }

    /// Sends raw bytes and returns everything read until the peer closes.
    func exchange(_ bytes: [UInt8]) throws -> [UInt8] {
        let fd = try unixSocket(socketPath)
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n } else if errno == EINTR { continue } else { break }  // the app may answer early
        }
        shutdown(fd, Int32(SHUT_WR))  // a truncated record then reads as EOF, not as more to come
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n > 0 { data += buffer[0..<n]; continue }
            if n < 0, errno == EINTR { continue }
            if n < 0, errno == EAGAIN { throw HarnessError("no answer from authd within \(timeout) s") }
            return data
        }
    }

    /// One record: version 1, `type`, `requestID`, `content`, no padding.
    static func record(type: UInt8, requestID: UInt16 = 1, _ content: [UInt8]) -> [UInt8] {
        [1, type, UInt8(requestID >> 8), UInt8(requestID & 0xFF), UInt8(content.count >> 8), UInt8(content.count & 0xFF), 0, 0]
            + content
    }

    /// A stream's records, then its empty terminator.
    static func stream(type: UInt8, requestID: UInt16 = 1, _ content: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var offset = 0
        while offset < content.count {
            let n = min(65535, content.count - offset)
            out += record(type: type, requestID: requestID, Array(content[offset..<offset + n]))
            offset += n
        }
        return out + record(type: type, requestID: requestID, [])
    }

    private static func length(_ n: Int) -> [UInt8] {
        n < 128 ? [UInt8(n)] : [UInt8(n >> 24 | 0x80), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)]
    }

    /// Name-value pairs in the FastCGI encoding (the content of PARAMS records).
    static func encodeParams(_ params: [(String, String)]) -> [UInt8] {
        var encoded: [UInt8] = []
        for (name, value) in params {
            encoded += length(name.utf8.count) + length(value.utf8.count) + Array(name.utf8) + Array(value.utf8)
        }
        return encoded
    }

    /// A BEGIN_REQUEST record with an explicit request id, role and flags.
    static func beginRequest(requestID: UInt16 = 1, role: UInt16 = FCGI.responder, flags: UInt8 = 0) -> [UInt8] {
        record(type: FCGI.beginRequest, requestID: requestID, [UInt8(role >> 8), UInt8(role & 0xFF), flags, 0, 0, 0, 0, 0])
    }

    /// A whole request: BEGIN_REQUEST, the PARAMS stream, the STDIN stream (each stream
    /// ended by its empty record), all with `requestID`.
    static func requestBytes(
        requestID: UInt16 = 1, role: UInt16 = FCGI.responder, flags: UInt8 = 0,
        params: [(String, String)], stdin: [UInt8] = []
    ) -> [UInt8] {
        beginRequest(requestID: requestID, role: role, flags: flags)
            + stream(type: FCGI.params, requestID: requestID, encodeParams(params))
            + stream(type: FCGI.stdin, requestID: requestID, stdin)
    }

    /// Joins the STDOUT records and turns `Status: N` into an HTTP status line.
    private static func parse(_ data: [UInt8]) throws -> HTTPResponse {
        var stdout: [UInt8] = []
        var i = 0
        while i + 8 <= data.count {
            let type = data[i + 1]
            let length = Int(data[i + 4]) << 8 | Int(data[i + 5])
            let padding = Int(data[i + 6])
            guard i + 8 + length <= data.count else { break }
            if type == 6 { stdout += data[(i + 8)..<(i + 8 + length)] }
            i += 8 + length + padding
        }
        return try cgiResponse(stdout)
    }

    /// A CGI answer (`Status: N reason`, headers, body) as an HTTP response.
    static func cgiResponse(_ stdout: [UInt8]) throws -> HTTPResponse {
        let text = String(decoding: stdout, as: UTF8.self)
        guard text.hasPrefix("Status: ") else { throw HarnessError("no Status header in \(text.prefix(200))") }
        return try HTTPResponse.parse(Array(("HTTP/1.1 " + text.dropFirst("Status: ".count)).utf8))
    }
}

/// The FastCGI 1.0 numbers the tests use: record types, roles, the KEEP_CONN flag and the
/// protocolStatus values of END_REQUEST.
enum FCGI {
    static let beginRequest: UInt8 = 1
    static let abortRequest: UInt8 = 2
    static let endRequest: UInt8 = 3
    static let params: UInt8 = 4
    static let stdin: UInt8 = 5
    static let stdout: UInt8 = 6
    static let stderr: UInt8 = 7
    static let data: UInt8 = 8

    static let responder: UInt16 = 1
    static let authorizer: UInt16 = 2
    static let filter: UInt16 = 3

    static let keepConn: UInt8 = 1

    static let requestComplete: UInt8 = 0
    static let cantMpxConn: UInt8 = 1
    static let overloaded: UInt8 = 2
    static let unknownRole: UInt8 = 3
}

/// One record as received.
struct ReceivedFastCGIRecord: CustomStringConvertible {
    let type: UInt8
    let requestID: UInt16
    let content: [UInt8]
    /// When it was parsed (monotonic seconds).
    let at: Double

    /// END_REQUEST: appStatus and protocolStatus.
    var endRequest: (appStatus: UInt32, protocolStatus: UInt8)? {
        guard type == FCGI.endRequest, content.count >= 5 else { return nil }
        let app = UInt32(content[0]) << 24 | UInt32(content[1]) << 16 | UInt32(content[2]) << 8 | UInt32(content[3])
        return (app, content[4])
    }

    var description: String {
        let names: [UInt8: String] = [1: "BEGIN_REQUEST", 2: "ABORT_REQUEST", 3: "END_REQUEST", 4: "PARAMS",
                                      5: "STDIN", 6: "STDOUT", 7: "STDERR", 8: "DATA", 10: "GET_VALUES_RESULT", 11: "UNKNOWN_TYPE"]
        let name = names[type] ?? "type \(type)"
        if let end = endRequest { return "\(name)(id \(requestID), appStatus \(end.appStatus), protocolStatus \(end.protocolStatus))" }
        return "\(name)(id \(requestID), \(content.count) bytes)"
    }
}

/// A raw FastCGI connection to authd's unix socket that never blocks: sends without
/// waiting (bounded), reads with poll and a deadline, parses the records that come
/// back and notes when the peer closed (EOF or reset). For peers that misbehave on
/// purpose: pipelining, silence on a kept connection, trickling, other roles.
final class RawFastCGIConnection {
    let fd: Int32
    /// When connect returned (monotonic seconds).
    let opened: Double
    private(set) var records: [ReceivedFastCGIRecord] = []
    /// When the peer's close was seen (EOF, or a reset).
    private(set) var closedAt: Double?
    private(set) var wasReset = false
    private var pending: [UInt8] = []

    init(socketPath: String) throws {
        let fd = try unixSocket(socketPath)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        self.fd = fd
        opened = monotonicNow()
    }

    deinit { close(fd) }

    var isOpen: Bool { closedAt == nil }

    /// Sends all of `bytes`, waiting at most `timeout` seconds for room. False when the
    /// peer has gone (EPIPE, ECONNRESET) or the time ran out.
    @discardableResult
    func send(_ bytes: [UInt8], timeout: Double = 2) -> Bool {
        guard isOpen else { return false }
        let deadline = monotonicNow() + timeout
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                let left = deadline - monotonicNow()
                if left <= 0 { return false }
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, Int32(max(1, left * 1000)))
                continue
            }
            // EPIPE, ECONNRESET: there may still be an answer (or EOF) to read.
            let code = errno
            pump(timeout: 0)
            if isOpen {
                wasReset = wasReset || code == ECONNRESET
                closedAt = monotonicNow()
            }
            return false
        }
        return true
    }

    /// Waits up to `timeout` seconds for something to read, then reads all that is there.
    func pump(timeout: Double) {
        guard isOpen else { return }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let rc = poll(&p, 1, Int32(max(0, timeout * 1000)))
        if rc <= 0 { return }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n > 0 {
                pending += buffer[0..<n]
                parse()
                continue
            }
            if n == 0 { closedAt = monotonicNow(); return }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return
            default:
                wasReset = errno == ECONNRESET
                closedAt = monotonicNow()
                return
            }
        }
    }

    /// Reads until `done` holds, the peer closes, or `timeout` seconds pass; true when `done` held.
    @discardableResult
    func read(timeout: Double, until done: (RawFastCGIConnection) -> Bool) -> Bool {
        let deadline = monotonicNow() + timeout
        while true {
            if done(self) { return true }
            let left = deadline - monotonicNow()
            if !isOpen || left <= 0 { return done(self) }
            pump(timeout: min(left, 0.05))
        }
    }

    /// Reads until END_REQUEST for `requestID` has come (true), or EOF / the deadline.
    @discardableResult
    func readAnswer(requestID: UInt16 = 1, timeout: Double) -> Bool {
        read(timeout: timeout) { $0.endRequest(requestID) != nil }
    }

    /// Reads until the peer closes; the time of the close, nil when it was still open after `timeout` seconds.
    @discardableResult
    func waitForClose(timeout: Double) -> Double? {
        read(timeout: timeout) { !$0.isOpen }
        return closedAt
    }

    private func parse() {
        var i = 0
        let now = monotonicNow()
        while pending.count - i >= 8 {
            let length = Int(pending[i + 4]) << 8 | Int(pending[i + 5])
            let padding = Int(pending[i + 6])
            guard pending.count - i >= 8 + length + padding else { break }
            records.append(ReceivedFastCGIRecord(
                type: pending[i + 1], requestID: UInt16(pending[i + 2]) << 8 | UInt16(pending[i + 3]),
                content: Array(pending[(i + 8)..<(i + 8 + length)]), at: now))
            i += 8 + length + padding
        }
        pending.removeFirst(i)
    }

    /// Bytes received that do not make a whole record (yet).
    var partialBytes: Int { pending.count }

    /// The STDOUT content of `requestID` (nil: all requests), joined.
    func stdout(_ requestID: UInt16? = nil) -> [UInt8] {
        records.filter { $0.type == FCGI.stdout && (requestID == nil || $0.requestID == requestID) }.flatMap(\.content)
    }

    /// The END_REQUEST record of `requestID`, if one came.
    func endRequest(_ requestID: UInt16) -> ReceivedFastCGIRecord? {
        records.first { $0.type == FCGI.endRequest && $0.requestID == requestID }
    }

    /// The CGI answer on STDOUT of `requestID`, when it parses.
    func response(_ requestID: UInt16 = 1) -> HTTPResponse? {
        let out = stdout(requestID)
        return out.isEmpty ? nil : try? FastCGIClient.cgiResponse(out)
    }

    /// What came, for failure messages.
    var summary: String {
        let out = stdout()
        let shown = String(decoding: out.prefix(120), as: UTF8.self).replacingOccurrences(of: "\r\n", with: "⏎")
        let state = closedAt.map { String(format: "closed (%@) %.2f s after connect", wasReset ? "reset" : "EOF", $0 - opened) }
            ?? String(format: "open %.2f s after connect", monotonicNow() - opened)
        return "records \(records), stdout \(out.count) bytes \"\(shown)\", \(state)"
    }
}
