import AuthCore
@testable import AuthRedis
import Foundation

/// One redis-server for the whole test process, on a unix socket in a fresh temporary
/// directory (no TCP port, no persistence), started by the first test that needs it and
/// killed at exit. Tests share it safely because each uses fresh random user ids and names.
final class RedisServer: Sendable {
    let socket: String
    private let directory: String
    private let pid: pid_t

    /// The server, or why it could not start (then every Redis test fails with that reason).
    static let shared: Result<RedisServer, any Error> = Result {
        let server = try RedisServer()
        atexit { if case .success(let server) = RedisServer.shared { server.stop() } }
        return server
    }

    private init() throws(StoreUnavailable) {
        var template = Array("/tmp/authd-store-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw StoreUnavailable("mkdtemp: errno \(errno)")
        }
        directory = String(cString: made)
        socket = directory + "/redis.sock"
        pid = try Self.spawn([
            "redis-server", "--port", "0", "--unixsocket", socket, "--unixsocketperm", "700",
            "--save", "", "--appendonly", "no", "--dir", directory, "--daemonize", "no",
            "--logfile", directory + "/redis.log",
        ])
        let deadline = ContinuousClock.now + .seconds(10)
        while (try? store().ping()) == nil {
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == 0, ContinuousClock.now < deadline else {
                let log = (try? String(contentsOfFile: directory + "/redis.log", encoding: .utf8)) ?? ""
                stop()
                throw StoreUnavailable("redis-server did not answer PING on \(socket): \(log)")
            }
            usleep(20_000)
        }
    }

    /// redis-server from PATH (scripts/deps.sh installs it; so does CI). Its stdio is
    /// /dev/null and it inherits no other descriptor, so it never holds the test runner's
    /// pipes open; its signal mask is cleared (the test thread's blocks SIGTERM).
    private static func spawn(_ args: [String]) throws(StoreUnavailable) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in 0...2 { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0) }
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in open.compactMap({ Int32($0) }) where fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, args[0], &actions, &attributes, argv, environ)
        guard rc == 0 else { throw StoreUnavailable("cannot start \(args[0]) (on PATH?): errno \(rc)") }
        return pid
    }

    /// One command on a connection of its own: the strings of its reply (an array's elements).
    func command(_ args: [String]) throws -> [String] {
        let reply = try RedisConnection(endpoint: .unix(path: socket, database: 0, password: nil), timeoutSeconds: 2).command(args)
        if case .array(let items) = reply { return items.compactMap(\.text) }
        return reply.text.map { [$0] } ?? []
    }

    /// A new store with its own connection.
    func store() -> RedisStore {
        RedisStore(endpoint: .unix(path: socket, database: 0, password: nil), timeoutSeconds: 2, revocationTTL: 3600)
    }

    /// SIGKILL (it holds nothing worth saving) and the directory removed.
    private func stop() {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        try? FileManager.default.removeItem(atPath: directory)
    }
}
