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
        var out: [UInt8] = []
        out += Self.record(type: 1, [0, 1, 0, 0, 0, 0, 0, 0])  // BEGIN_REQUEST, role RESPONDER, no keep-alive
        var encoded: [UInt8] = []
        for (name, value) in params {
            encoded += Self.length(name.utf8.count) + Self.length(value.utf8.count) + Array(name.utf8) + Array(value.utf8)
        }
        out += Self.stream(type: 4, encoded)   // PARAMS
        out += Self.stream(type: 5, stdin)     // STDIN
        return try Self.parse(exchange(out))
    }

    /// Sends raw bytes and returns everything read until the peer closes.
    func exchange(_ bytes: [UInt8]) throws -> [UInt8] {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in socketPath.utf8.prefix(raw.count - 1).enumerated() { raw[i] = b }
        }
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard ok == 0 else { throw HarnessError("connect \(socketPath): \(String(cString: strerror(errno)))") }
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

    private static func record(type: UInt8, _ content: [UInt8]) -> [UInt8] {
        [1, type, 0, 1, UInt8(content.count >> 8), UInt8(content.count & 0xFF), 0, 0] + content
    }

    /// A stream's records, then its empty terminator.
    private static func stream(type: UInt8, _ content: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var offset = 0
        while offset < content.count {
            let n = min(65535, content.count - offset)
            out += record(type: type, Array(content[offset..<offset + n]))
            offset += n
        }
        return out + record(type: type, [])
    }

    private static func length(_ n: Int) -> [UInt8] {
        n < 128 ? [UInt8(n)] : [UInt8(n >> 24 | 0x80), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)]
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
        let text = String(decoding: stdout, as: UTF8.self)
        guard text.hasPrefix("Status: ") else { throw HarnessError("no Status header in \(text.prefix(200))") }
        return try HTTPResponse.parse(Array(("HTTP/1.1 " + text.dropFirst("Status: ".count)).utf8))
    }
}
