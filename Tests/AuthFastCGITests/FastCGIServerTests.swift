import AuthCore
@testable import AuthFastCGI
import AuthSystem
import AuthTesting
import Glibc
import Logging
import Testing

/// The server's system-call failure paths: a listener it cannot open is a thrown error
/// naming the call (libfcgi exited the process), and a connection whose timeouts cannot be
/// set is closed unserved.
@Suite(.serialized) struct FastCGIServerTests {
    static func socketPath(_ name: String) -> String { "/tmp/authd-fcgi-\(getpid())-\(name).sock" }

    @Test func aUnixPathInAMissingDirectoryIsAThrownBindError() {
        let path = "/nonexistent-\(getpid())/authd.sock"
        #expect(throws: SystemError(call: "bind(\(path))", errno: ENOENT)) { try FastCGIServer.openListener(.unix(path: path)) }
    }

    @Test func aUnixPathTooLongForSunPathIsRefusedBeforeBind() {
        let path = "/tmp/" + String(repeating: "x", count: 120) + ".sock"
        #expect(throws: SystemError(call: "bind(\(path))", errno: ENAMETOOLONG)) { try FastCGIServer.openListener(.unix(path: path)) }
        #expect(access(path, F_OK) != 0, "nothing was created under a truncated name")
    }

    @Test func aUnixListenerGetsGroupAccess() throws {
        let path = Self.socketPath("mode")
        let fd = try FastCGIServer.openListener(.unix(path: path))
        defer { close(fd); unlink(path) }
        var info = stat()
        try Syscall.retryingEINTR("stat") { stat(path, &info) }
        #expect(info.st_mode & 0o777 == 0o660)
    }

    /// libfcgi took `::1:port` for a file name; both families listen now.
    @Test(arguments: ["127.0.0.1", "::1"])
    func tcpListenersOfBothFamilies(host: String) throws {
        let fd = try FastCGIServer.openListener(.tcp(host: host, port: 0))
        defer { close(fd) }
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &address) { pointer throws(SystemError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { name throws(SystemError) in
                try Syscall.retryingEINTR("getsockname") { getsockname(fd, name, &length) }
            }
        }
        #expect(Int32(address.ss_family) == (host.contains(":") ? AF_INET6 : AF_INET))
    }

    @Test func connectionSetUpOnANonSocketThrowsNamingTheOption() throws {
        var fds: [Int32] = [-1, -1]
        try Syscall.retryingEINTR("pipe") { pipe(&fds) }
        defer { close(fds[0]); close(fds[1]) }
        #expect(throws: SystemError(call: "setsockopt(SO_RCVTIMEO)", errno: ENOTSOCK)) { try FastCGIServer.setUpConnection(fds[0]) }
    }

    /// The seam fails as setsockopt would: the peer is hung up on without an answer, and
    /// the worker goes on to the next connection.
    @Test func aConnectionWhoseTimeoutsFailIsClosedUnserved() throws {
        let failures = Counter()
        let answers = try exchange(named: "unset", setUp: { _ throws(SystemError) in
            failures.add()
            throw SystemError(call: "setsockopt(SO_RCVTIMEO)", errno: ENOMEM)
        }, connections: 2)
        #expect(answers.map(\.count) == [0, 0], "bytes answered on each connection")
        #expect(failures.value == 2)
    }

    /// The control: with its timeouts set, the same request is answered.
    @Test func aConnectionWithItsTimeoutsIsServed() throws {
        let answers = try exchange(named: "set", setUp: { fd throws(SystemError) in try FastCGIServer.setUpConnection(fd) }, connections: 1)
        let text = String(decoding: answers.first ?? [], as: UTF8.self)
        #expect(text.contains("Status: 401"), "\(text)")
    }

    final class Counter: @unchecked Sendable {
        private let count = Locked(0)
        func add() { count.withLock { $0 += 1 } }
        var value: Int { count.withLock { $0 } }
    }

    /// Starts a one-worker server on a unix socket, sends `GET /` on each of `connections`
    /// connections in turn, and returns what came back on each before the server closed it
    /// or, for a kept connection, up to the end of the answer.
    private func exchange(named name: String, setUp: @escaping FastCGIServer.ConnectionSetup, connections: Int) throws -> [[UInt8]] {
        let path = Self.socketPath(name)
        let (server, _) = try Self.server(path, setUp: setUp)
        defer { server.stop(); unlink(path) }
        return try (0..<connections).map { _ in try Self.ask(path, FastCGIFramingTests.request()) }
    }

    /// The idle timeout is a whole number of equal blocking waits of at most 5 s each.
    @Test(arguments: [(75, 5_000_000), (2, 2_000_000), (7, 3_500_000), (1, 1_000_000), (5, 5_000_000), (6, 3_000_000)])
    func theIdleTimeoutIsCutIntoEqualWaits(idle: Int, microseconds: Int64) {
        #expect(FastCGIServer.receiveTimeout(idleTimeout: idle) == .microseconds(microseconds))
    }

    /// A worker parked on a kept connection serves that connection's next request, and
    /// stop() wakes it at once (it shuts the connection's read side), not after its
    /// 5 s receive timeout; the peer then reads the end of the connection.
    @Test func aParkedWorkerServesTheNextRequestAndStopWakesItAtOnce() throws {
        let path = Self.socketPath("park")
        let (server, _) = try Self.server(path, setUp: { fd throws(SystemError) in try FastCGIServer.setUpConnection(fd) })
        defer { unlink(path) }
        let fd = try Self.connect(path)
        defer { close(fd) }
        for round in 1...2 {
            let answer = try Self.ask(on: fd, FastCGIFramingTests.request())
            #expect(String(decoding: answer, as: UTF8.self).contains("Status: 401"), "answer \(round) on the kept connection")
        }
        let started = ContinuousClock.now
        server.stop()
        let took = ContinuousClock.now - started
        #expect(took < .seconds(2), "stop() took \(took) with a worker parked")
        var byte: UInt8 = 0
        #expect(recv(fd, &byte, 1, 0) == 0, "the parked connection was closed by stop()")
    }

    private static func server(_ path: String, setUp: @escaping FastCGIServer.ConnectionSetup) throws -> (FastCGIServer, Logger) {
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let secrets = ["ACCESS_TOKEN_SECRET": String(repeating: "a", count: 32), "REFRESH_TOKEN_SECRET": String(repeating: "b", count: 32)]
        let keys = KeyRing(signing: NoKey())
        let service = AuthService(config: try Config(env: secrets), access: keys, refresh: keys, clock: TestClock(),
                                  hasher: NoHasher(), decoyHash: "", logger: logger)
        let server = try FastCGIServer(listen: .unix(path: path), service: service, workers: 1, logger: logger, setUpConnection: setUp)
        try server.start { _ in Worker(store: MemoryStore(clock: TestClock())) }
        return (server, logger)
    }

    private static func connect(_ path: String) throws -> Int32 {
        let fd = try Syscall.retryingEINTR("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0) }
        do {
            try FastCGIServer.withUnixAddress(path, call: "connect") { address, length throws(SystemError) in
                try Syscall.retryingEINTR("connect(\(path))") { Glibc.connect(fd, address, length) }
            }
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            try Syscall.retryingEINTR("setsockopt(SO_RCVTIMEO)") { setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size)) }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    private static func ask(_ path: String, _ request: [UInt8]) throws -> [UInt8] {
        let fd = try connect(path)
        defer { close(fd) }
        return try ask(on: fd, request)
    }

    private static func ask(on fd: Int32, _ request: [UInt8]) throws -> [UInt8] {
        do {
            _ = try request.withUnsafeBytes { bytes throws(SystemError) in
                try Syscall.retryingEINTR("send") { send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
            }
        } catch let error as SystemError where error.errno == EPIPE || error.errno == ECONNRESET {
            return []  // closed before the request was written: closed unserved, nothing answered
        }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        // Up to the END_REQUEST record (type 3) of a kept connection, or the server's close.
        while !answer.containsEndRequest {
            let n = (try? Syscall.retryingEINTR("recv") { recv(fd, &chunk, chunk.count, 0) }) ?? 0
            if n <= 0 { break }
            answer += chunk[..<n]
        }
        return answer
    }

    struct NoKey: SigningKey {
        var algorithm: JWTAlgorithm { .hs256 }
        var kid: String { "test" }
        var publicJWK: [(String, String)]? { nil }
        func sign(_ input: UnsafeRawBufferPointer) throws -> [UInt8] { [0] }
        func verify(_ signature: [UInt8], for input: UnsafeRawBufferPointer) -> Bool { false }
    }

    struct NoHasher: PasswordHasher {
        func hash(_ password: String) throws -> String { "" }
        func verify(_ password: String, against hash: String) throws -> Bool { false }
    }
}

extension [UInt8] {
    /// True when the bytes, read as FastCGI records from the start, hold an END_REQUEST.
    var containsEndRequest: Bool {
        var at = 0
        while at + 8 <= count {
            if self[at + 1] == FastCGIFraming.endRequest { return true }
            at += 8 + (Int(self[at + 4]) << 8 | Int(self[at + 5])) + Int(self[at + 6])
        }
        return false
    }
}
