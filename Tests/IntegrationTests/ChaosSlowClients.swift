import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A client connection that sends what it is told, when it is told, and never blocks
/// on reading: for clients that are slow on purpose.
final class SlowConnection {
    let fd: Int32
    let opened: Double
    private(set) var closedAt: Double?
    private(set) var received: [UInt8] = []
    private(set) var wasReset = false

    /// TCP to 127.0.0.1:`port` (nginx).
    init(port: UInt16, now: Double) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else {
            close(fd)
            throw HarnessError("connect 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        opened = now
    }

    /// A unix socket (authd's FastCGI socket, without nginx).
    init(unixPath: String, now: Double) throws {
        let fd = try unixSocket(unixPath)
        self.fd = fd
        opened = now
    }

    deinit { close(fd) }

    var isOpen: Bool { closedAt == nil }

    /// Sends without blocking; a peer that has gone marks the connection closed.
    func send(_ bytes: [UInt8], now: Double) {
        guard isOpen else { return }
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        if n < 0 && (errno == EPIPE || errno == ECONNRESET) {
            wasReset = errno == ECONNRESET
            update(now: now)  // there may be an answer to read first
            if isOpen { closedAt = now }
        }
    }

    func send(_ text: String, now: Double) { send(Array(text.utf8), now: now) }

    /// Reads whatever has arrived; notes the end of the connection (EOF or reset).
    func update(now: Double) {
        guard isOpen else { return }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 { received += buffer[0..<n]; continue }
            if n == 0 { closedAt = now; return }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return
            default:
                wasReset = errno == ECONNRESET
                closedAt = now
                return
            }
        }
    }

    /// The HTTP answer received, if a whole one came.
    var response: HTTPResponse? { received.isEmpty ? nil : try? HTTPResponse.parse(received) }
    var lifetime: Double? { closedAt.map { $0 - opened } }
}

/// FastCGI records (the FastCGIClient's framing, kept here so that a test can stop
/// half-way through a request).
enum FastCGIRecord {
    static func record(type: UInt8, _ content: [UInt8]) -> [UInt8] {
        [1, type, 0, 1, UInt8(content.count >> 8), UInt8(content.count & 0xFF), 0, 0] + content
    }
    static func beginRequest() -> [UInt8] { record(type: 1, [0, 1, 0, 0, 0, 0, 0, 0]) }  // RESPONDER, no keep-alive
    static func params(_ pairs: [(String, String)]) -> [UInt8] {
        var encoded: [UInt8] = []
        for (name, value) in pairs {
            encoded += [UInt8(name.utf8.count), UInt8(value.utf8.count)] + Array(name.utf8) + Array(value.utf8)
        }
        return record(type: 4, encoded)
    }
    static let endOfParams = record(type: 4, [])
    static func stdin(_ bytes: [UInt8]) -> [UInt8] { record(type: 5, bytes) }
}
