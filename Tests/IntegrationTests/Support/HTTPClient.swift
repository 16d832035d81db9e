import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One parsed HTTP response.
struct HTTPResponse: Sendable, CustomStringConvertible {
    let status: Int
    let headers: [(name: String, value: String)]
    let body: [UInt8]

    /// The first header of that name (names compare case-insensitively).
    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body parsed as JSON, nil when it is not JSON.
    var json: Any? {
        try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])
    }

    /// The body when it is a JSON object.
    var object: [String: Any]? { json as? [String: Any] }

    var description: String {
        let shown = text.count > 400 ? String(text.prefix(400)) + "…" : text
        return "HTTP \(status) \(headers.map { "\($0.name): \($0.value)" }) \(shown)"
    }

    static func parse(_ data: [UInt8]) throws -> HTTPResponse {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let headEnd = data.firstRange(of: separator) else {
            throw HarnessError("no end of response head in \(data.count) bytes: \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
        let head = String(decoding: data[..<headEnd.lowerBound], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let statusParts = statusLine.split(separator: " ", maxSplits: 2)
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/"), let status = Int(statusParts[1]) else {
            throw HarnessError("bad status line: \(statusLine)")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw HarnessError("bad header line: \(line)") }
            headers.append((
                String(line[..<colon]).trimmingCharacters(in: .whitespaces),
                String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
        }
        var rest = Array(data[headEnd.upperBound...])
        let lookup = { (name: String) in headers.first { $0.name.lowercased() == name }?.value }
        if lookup("transfer-encoding")?.lowercased().contains("chunked") == true {
            rest = try decodeChunked(rest)
        } else if let length = lookup("content-length").flatMap({ Int($0) }), length <= rest.count {
            rest = Array(rest.prefix(length))
        }
        return HTTPResponse(status: status, headers: headers, body: rest)
    }

    private static func decodeChunked(_ data: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        let crlf: [UInt8] = [13, 10]
        while true {
            guard let lineEnd = data[i...].firstRange(of: crlf) else { throw HarnessError("truncated chunk size") }
            let sizeText = String(decoding: data[i..<lineEnd.lowerBound], as: UTF8.self)
                .split(separator: ";").first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
            guard let size = Int(sizeText, radix: 16) else { throw HarnessError("bad chunk size \(sizeText)") }
            i = lineEnd.upperBound
            if size == 0 { return out }
            guard i + size <= data.count else { throw HarnessError("truncated chunk") }
            out += data[i..<(i + size)]
            i += size + 2
        }
    }
}

/// A deliberately tiny blocking HTTP/1.1 client over a POSIX socket: one request per
/// connection (`Connection: close`), read to EOF. It sends exactly the bytes it is
/// given, so tests can send what no well-behaved client library would.
struct HTTPClient: Sendable {
    let port: UInt16
    /// Send and receive timeout, so a hanging server fails a test instead of CI.
    var timeout: Double = 10

    /// Builds a request; `Content-Length` is added when there is a body.
    static func requestBytes(
        method: String, path: String, port: UInt16,
        headers: [(String, String)], body: [UInt8]?
    ) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        return Array(head.utf8) + (body ?? [])
    }

    func request(
        _ method: String, _ path: String,
        headers: [(String, String)] = [], body: [UInt8]? = nil
    ) throws -> HTTPResponse {
        try exchange(Self.requestBytes(method: method, path: path, port: port, headers: headers, body: body))
    }

    /// Sends raw bytes and parses what comes back.
    func exchange(_ raw: [UInt8]) throws -> HTTPResponse {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))

        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            throw HarnessError("connect 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }

        var sent = 0
        sending: while sent < raw.count {
            let n = raw.withUnsafeBytes { send(fd, $0.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL)) }
            if n >= 0 {
                sent += n
                continue
            }
            switch errno {
            case EINTR: continue
            // The server may answer (e.g. 413) and stop reading before the body is sent.
            case EPIPE, ECONNRESET: break sending
            case EAGAIN, EWOULDBLOCK: throw HarnessError("send timed out after \(timeout) s")
            default: throw HarnessError("send: \(String(cString: strerror(errno)))")
            }
        }

        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n > 0 {
                data += buffer[0..<n]
            } else if n == 0 {
                break
            } else {
                switch errno {
                case EINTR: continue
                case EAGAIN, EWOULDBLOCK:
                    throw HarnessError("no complete response within \(timeout) s (got \(data.count) bytes)")
                case ECONNRESET where !data.isEmpty: break
                default: throw HarnessError("recv: \(String(cString: strerror(errno)))")
                }
                break
            }
        }
        return try HTTPResponse.parse(data)
    }
}

/// A free TCP port on loopback: bind port 0, read the port, close.
func freeLoopbackPort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else { throw HarnessError("bind 127.0.0.1:0: \(String(cString: strerror(errno)))") }
    return UInt16(bigEndian: address.sin_port)
}

/// Sends `PING` to a Redis unix socket; true when it answers `+PONG`.
func redisAnswersPing(socketPath: String) -> Bool {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var tv = timeval(tv_sec: 1, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let pathBytes = Array(socketPath.utf8)
    guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: pathBytes)
        raw[pathBytes.count] = 0
    }
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    guard connected == 0 else { return false }
    let ping = Array("PING\r\n".utf8)
    guard ping.withUnsafeBytes({ send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }) == ping.count else {
        return false
    }
    var buffer = [UInt8](repeating: 0, count: 64)
    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
    return n > 0 && String(decoding: buffer[0..<n], as: UTF8.self).hasPrefix("+PONG")
}
