import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The secrets every stack is started with (two different strings of 40+ characters).
/// Tests sign their own tokens with them to probe the verifier.
enum Secrets {
    static let access = "integration-access-secret-5f0c1d2e3a4b6c7d8e9f0a1b2c3d4e5f"
    static let refresh = "integration-refresh-secret-9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
}

/// One redis-server + authd + nginx, on a unix socket, a unix socket and a free
/// loopback port, all inside a fresh temporary directory.
final class Stack: @unchecked Sendable {
    let dir: String
    /// The environment authd was started with (PATH included).
    let environment: [String: String]
    let port: UInt16
    let client: HTTPClient

    private let lock = NSLock()
    private var redis: ChildProcess?
    private var authd: ChildProcess?
    private var nginx: ChildProcess?
    /// authd instances beyond the first (`AUTHD_INSTANCES`), behind the same nginx upstream.
    private var moreAuthd: [ChildProcess] = []
    private var stopped = false

    /// How many authd share this stack's Redis behind its nginx: `AUTHD_INSTANCES` from
    /// the overrides, else from the test run's environment (so that the whole suite can
    /// run against two), else 1. The first is the one `startAuthd`/`killAuthd` manage.
    var instances: Int {
        Int(environment["AUTHD_INSTANCES"] ?? ProcessInfo.processInfo.environment["AUTHD_INSTANCES"] ?? "1") ?? 1
    }
    /// Overrides for a test that needs exactly one authd, whatever the run's AUTHD_INSTANCES.
    static let oneInstance = ["AUTHD_INSTANCES": "1"]
    func authdSocket(_ instance: Int) -> String { instance == 1 ? authdSocket : dir + "/authd-\(instance).sock" }

    var redisSocket: String { dir + "/redis.sock" }
    var authdSocket: String { dir + "/authd.sock" }
    var authdLogPath: String { dir + "/authd.log" }

    // MARK: locating things

    /// The repository root, from this file's place in it.
    static let repoRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Support
        .deletingLastPathComponent()  // IntegrationTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()
        .path

    /// `AUTHD_BIN`, else the `authd` next to the running test bundle
    /// (`<scratch>/debug/<Pkg>PackageTests.xctest` on Linux).
    static var authdBinary: String {
        if let bin = ProcessInfo.processInfo.environment["AUTHD_BIN"], !bin.isEmpty { return bin }
        let executable: String
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            executable = resolved
        } else if let url = Bundle.main.executableURL {
            executable = url.path
        } else {
            executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        }
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("authd").path
    }

    /// The caller's PATH plus the sbin folders, where Debian puts nginx (a non-root
    /// PATH often lacks them).
    static var path: String {
        let given = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        let parts = given.split(separator: ":").map(String.init)
        return (parts + ["/usr/sbin", "/sbin"].filter { !parts.contains($0) }).joined(separator: ":")
    }

    /// The environment of a stack: only these variables reach authd, and the sanitizer
    /// settings of `make tsan`/`make asan`, so that a sanitized authd's reports land in
    /// their files instead of a log that is deleted with the stack.
    static func baseEnvironment(dir: String) -> [String: String] {
        let sanitizers = ProcessInfo.processInfo.environment.filter { $0.key == "TSAN_OPTIONS" || $0.key == "ASAN_OPTIONS" }
        return sanitizers.merging([
            "PATH": path,
            "ACCESS_TOKEN_SECRET": Secrets.access,
            "REFRESH_TOKEN_SECRET": Secrets.refresh,
            "BCRYPT_COST": "4",
            "REDIS_URL": "unix://\(dir)/redis.sock",
            "FCGI_LISTEN": "\(dir)/authd.sock",
            "WORKERS": "64",
            "JWT_ISSUER": "authd-test",
            // Every test's client is 127.0.0.1: a per-address limit would couple unrelated
            // tests. ThrottleTests turns it on in stacks of its own.
            "LOGIN_ADDRESS_MAX_FAILURES": "0",
        ]) { $1 }
    }

    static func makeTempDir() throws -> String {
        var template = Array("/tmp/authd-it-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw HarnessError("mkdtemp: \(String(cString: strerror(errno)))")
        }
        let dir = String(cString: made)
        // nginx workers may run as another user: let them reach the authd socket.
        chmod(dir, 0o755)
        return dir
    }

    // MARK: life cycle

    /// Starts a full stack. `overrides` are added to (or replace) the base environment;
    /// `dotenv` is written to `DIR/.env` before authd starts.
    static func start(_ overrides: [String: String] = [:], dotenv: String? = nil) throws -> Stack {
        let dir = try makeTempDir()
        var environment = baseEnvironment(dir: dir)
        environment.merge(overrides) { _, new in new }
        if let dotenv {
            try dotenv.write(toFile: dir + "/.env", atomically: true, encoding: .utf8)
        }
        var lastError: Error?
        // A free port can be taken by someone else between probing and nginx's bind.
        for _ in 0..<3 {
            let port = try freeLoopbackPort()
            let stack = Stack(dir: dir, environment: environment, port: port)
            StackRegistry.shared.add(stack)
            do {
                try stack.bringUp()
                return stack
            } catch let error as PortTaken {
                lastError = error
                stack.shutdown(removeDir: false)
                continue
            } catch {
                stack.shutdown(removeDir: false)
                throw error
            }
        }
        throw lastError ?? HarnessError("could not start nginx")
    }

    private struct PortTaken: Error {}

    private init(dir: String, environment: [String: String], port: UInt16) {
        self.dir = dir
        self.environment = environment
        self.port = port
        self.client = HTTPClient(port: port)
    }

    private func bringUp() throws {
        try startRedis()
        try startAuthd()
        for instance in 2...max(2, instances) where instance <= instances { try startAuthd(instance: instance) }
        try startNginx()
    }

    /// Starts authd instance `n` (2...instances) on its socket, again after `stopAuthd(instance:)`.
    func startAuthd(instance n: Int) throws {
        let socket = authdSocket(n)
        unlink(socket)
        var env = environment
        env["FCGI_LISTEN"] = socket
        let child = try ChildProcess(
            name: "authd-\(n)", executable: Self.authdBinary, arguments: ["serve"],
            environment: env, directory: dir,
            stdoutPath: dir + "/authd-\(n).out", stderrPath: dir + "/authd-\(n).log")
        lock.withLock { if moreAuthd.indices.contains(n - 2) { moreAuthd[n - 2] = child } else { moreAuthd.append(child) } }
        try waitUntil("authd \(n) listens on \(socket)", timeout: 20, process: child) {
            FileManager.default.fileExists(atPath: socket)
        }
    }

    /// SIGTERM to authd instance `n` (2...instances); how it ended.
    func stopAuthd(instance n: Int) -> Termination? {
        let child = lock.withLock { moreAuthd.indices.contains(n - 2) ? moreAuthd[n - 2] : nil }
        return child?.stop(grace: 5)
    }

    /// Where redis-server keeps its data (the append-only files in `appendonlydir/`).
    var redisDataDir: String { dir + "/redis" }
    var redisConfigPath: String { dir + "/redis.conf" }

    /// The project's Redis persistence settings (AOF, `appendfsync always`), shared with
    /// `make run` and production: the generated config includes this file.
    static var redisSettingsFile: String { repoRoot + "/deploy/redis/authd.conf" }

    /// Starts redis-server on the stack's socket with the settings of
    /// `deploy/redis/authd.conf`. `keepData: false` starts from an empty data directory
    /// (a new, empty data set); `true` restarts on the append-only file the previous
    /// server left, as after a crash.
    func startRedis(keepData: Bool = false) throws {
        if !keepData { try? FileManager.default.removeItem(atPath: redisDataDir) }
        try FileManager.default.createDirectory(atPath: redisDataDir, withIntermediateDirectories: true)
        // The settings file first: the local lines after it win.
        let config = """
            # Generated by Tests/IntegrationTests/Support/Stack.swift.
            include "\(Self.redisSettingsFile)"
            port 0
            unixsocket "\(redisSocket)"
            unixsocketperm 700
            dir "\(redisDataDir)"
            save ""
            daemonize no

            """
        try config.write(toFile: redisConfigPath, atomically: true, encoding: .utf8)
        let child = try ChildProcess(
            name: "redis-server", executable: "redis-server",
            arguments: [redisConfigPath],
            environment: ["PATH": Self.path], directory: dir,
            stdoutPath: dir + "/redis.log", stderrPath: dir + "/redis.log")
        lock.withLock { redis = child }
        try waitUntil("redis-server answers PING", timeout: 10, process: child) {
            redisAnswersPing(socketPath: redisSocket)
        }
    }

    /// SIGSTOP / SIGCONT redis-server: commands sent meanwhile wait, unanswered.
    func pauseRedis() { lock.withLock { redis }?.signal(SIGSTOP) }
    func resumeRedis() { lock.withLock { redis }?.signal(SIGCONT) }

    /// SIGTERM to redis-server and wait until it is gone.
    func stopRedis() {
        let child = lock.withLock { () -> ChildProcess? in defer { redis = nil }; return redis }
        child?.stop()
    }

    /// SIGKILL to redis-server (also when it is stopped): no shutdown, no last fsync.
    /// What it acknowledged must be in the append-only file; `startRedis(keepData: true)`
    /// brings it back from there.
    @discardableResult
    func killRedis() -> Termination? {
        let child = lock.withLock { () -> ChildProcess? in defer { redis = nil }; return redis }
        guard let child else { return nil }
        kill(child.pid, SIGKILL)
        return child.wait(timeout: 10)
    }

    /// Runs `redis-cli -s SOCKET args...` and returns its output (e.g. `BGREWRITEAOF`,
    /// `CONFIG GET appendfsync`).
    @discardableResult
    func redisCLI(_ args: String...) throws -> String { try redisCLI(args) }

    @discardableResult
    func redisCLI(_ args: [String]) throws -> String {
        let (termination, output) = try runCommand(
            "redis-cli", ["-s", redisSocket] + args, environment: ["PATH": Self.path], directory: dir)
        guard termination == .exited(0) else { throw HarnessError("redis-cli \(args): \(termination): \(output)") }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Starts authd with the stack's environment (also to restart it after `killAuthd`
    /// or `terminateAuthd`); returns once its socket exists.
    func startAuthd() throws {
        unlink(authdSocket)  // a leftover from an earlier attempt would look like readiness
        let child = try ChildProcess(
            name: "authd", executable: Self.authdBinary, arguments: ["serve"],
            environment: environment, directory: dir,
            stdoutPath: dir + "/authd.out", stderrPath: authdLogPath)
        lock.withLock { authd = child }
        try waitUntil("authd listens on \(authdSocket)", timeout: 20, process: child) {
            FileManager.default.fileExists(atPath: authdSocket)
        }
    }

    /// The first authd's process id while it runs (for /proc figures in measurements).
    var authdPID: pid_t? { lock.withLock { authd?.pid } }

    /// SIGTERM to authd; how it ended.
    func stopAuthd(grace: Double = 5) -> Termination? {
        let child = lock.withLock { () -> ChildProcess? in defer { authd = nil }; return authd }
        return child?.stop(grace: grace)
    }

    /// SIGKILL to authd: no shutdown; requests in its hands are lost.
    @discardableResult
    func killAuthd() -> Termination? {
        let child = lock.withLock { () -> ChildProcess? in defer { authd = nil }; return authd }
        guard let child else { return nil }
        kill(child.pid, SIGKILL)
        return child.wait(timeout: 10)
    }

    /// SIGTERM to authd, then waits up to `timeout` seconds for it to exit: how it ended
    /// and how long that took. `termination` is nil when it was still running at the
    /// deadline; it is then SIGKILLed, so that a hung shutdown fails a test, not the run.
    func terminateAuthd(timeout: Double) -> (termination: Termination?, seconds: Double) {
        let child = lock.withLock { () -> ChildProcess? in defer { authd = nil }; return authd }
        guard let child else { return (nil, 0) }
        let started = Date()
        kill(child.pid, SIGTERM)
        let ended = child.wait(timeout: timeout)
        let seconds = Date().timeIntervalSince(started)
        if ended == nil {
            kill(child.pid, SIGKILL)
            _ = child.wait(timeout: 10)
        }
        return (ended, seconds)
    }

    private func startNginx() throws {
        let prefix = dir + "/nginx"
        try FileManager.default.createDirectory(atPath: prefix, withIntermediateDirectories: true)
        chmod(prefix, 0o755)
        let script = Self.repoRoot + "/scripts/nginx-conf.sh"
        let confPath = prefix + "/nginx.conf"
        let conf = try ChildProcess(
            name: "nginx-conf.sh", executable: "bash",
            arguments: [script, prefix, "127.0.0.1:\(port)", (1...max(1, instances)).map(authdSocket).joined(separator: ",")],
            environment: ["PATH": Self.path, "NGINX_RATE_LIMIT": environment["NGINX_RATE_LIMIT"] ?? "off"], directory: dir,
            stdoutPath: confPath, stderrPath: prefix + "/nginx-conf.err")
        let generated = conf.wait(timeout: 10)
        guard generated == .exited(0) else {
            conf.stop(grace: 1)
            let err = (try? String(contentsOfFile: prefix + "/nginx-conf.err", encoding: .utf8)) ?? ""
            throw HarnessError("nginx-conf.sh failed (\(generated.map { "\($0)" } ?? "timeout")): \(err)")
        }
        unlink(prefix + "/stderr.log")
        let child = try ChildProcess(
            // posix_spawnp searches the test's own PATH, which may lack /usr/sbin.
            name: "nginx", executable: FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx",
            arguments: ["-p", prefix, "-c", confPath, "-g", "daemon off;"],
            environment: ["PATH": Self.path], directory: dir,
            stdoutPath: prefix + "/stdout.log", stderrPath: prefix + "/stderr.log")
        lock.withLock { nginx = child }
        let probe = HTTPClient(port: port, timeout: 2)
        do {
            try waitUntil("nginx answers GET /healthz with 200", timeout: 20, process: child) {
                (try? probe.request("GET", "/healthz"))?.status == 200
            }
        } catch {
            let log = (try? String(contentsOfFile: prefix + "/stderr.log", encoding: .utf8)) ?? ""
            if log.contains("Address already in use") { throw PortTaken() }
            throw error
        }
    }

    /// Polls `condition` every 20 ms; fails early when `process` exits.
    private func waitUntil(
        _ what: String, timeout: Double, process: ChildProcess, condition: () -> Bool
    ) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return }
            if let ended = process.poll() {
                throw HarnessError("\(process.name) ended (\(ended)) before: \(what)\n\(logs())")
            }
            usleep(20_000)
        }
        throw HarnessError("timed out after \(timeout) s waiting for: \(what)\n\(logs())")
    }

    /// The tails of the logs, for failure messages.
    func logs() -> String {
        let files = [
            "authd.log": authdLogPath, "redis.log": dir + "/redis.log",
            "nginx stderr": dir + "/nginx/stderr.log",
        ]
        return files.sorted { $0.key < $1.key }.map { name, path in
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "(none)"
            return "--- \(name) ---\n" + text.split(separator: "\n").suffix(30).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    /// Stops nginx, authd and redis-server (TERM, KILL after 5 s) and removes the
    /// directory unless `KEEP_IT_DIRS` is set.
    func shutdown(removeDir: Bool = true) {
        let children: [ChildProcess] = lock.withLock {
            if stopped { return [] }
            stopped = true
            defer { nginx = nil; authd = nil; redis = nil; moreAuthd = [] }
            return [nginx, authd].compactMap { $0 } + moreAuthd + [redis].compactMap { $0 }
        }
        for child in children { child.stop() }
        if removeDir && ProcessInfo.processInfo.environment["KEEP_IT_DIRS"] == nil {
            try? FileManager.default.removeItem(atPath: dir)
        }
    }
}

/// Every stack started, so that whatever is still running is stopped at exit.
final class StackRegistry: @unchecked Sendable {
    static let shared = StackRegistry()
    private let lock = NSLock()
    private var stacks: [Stack] = []

    private init() {
        atexit { StackRegistry.shared.shutdownAll() }
    }

    func add(_ stack: Stack) { lock.withLock { stacks.append(stack) } }

    func shutdownAll() {
        let all = lock.withLock { () -> [Stack] in defer { stacks = [] }; return stacks }
        for stack in all { stack.shutdown() }
    }
}

/// A stack started on first use and shared by the tests that ask for it, kept until exit.
final class SharedStack: @unchecked Sendable {
    private let overrides: [String: String]
    private let lock = NSLock()
    private var result: Result<Stack, HarnessError>?

    init(_ overrides: [String: String] = [:]) { self.overrides = overrides }

    func get() throws -> Stack {
        try lock.withLock {
            if result == nil {
                do {
                    result = .success(try Stack.start(overrides))
                } catch {
                    result = .failure(HarnessError("stack \(overrides) did not start: \(error)"))
                }
            }
            return try result!.get()
        }
    }
}

/// The shared stacks, one per configuration.
enum Stacks {
    private static let defaultStack = SharedStack()
    /// Access and refresh tokens that live one second.
    private static let shortLived = SharedStack(["ACCESS_TOKEN_TTL": "1", "REFRESH_TOKEN_TTL": "1"])
    /// Same secrets as the default stack, another issuer.
    private static let otherIssuer = SharedStack(["JWT_ISSUER": "authd-other"])
    private static let grace = SharedStack(["REFRESH_REUSE_GRACE": "5"])
    /// A short grace window, a short idle timeout and a large leeway.
    private static let tuned = SharedStack([
        "REFRESH_REUSE_GRACE": "1", "REFRESH_IDLE_TTL": "6",
        "ACCESS_TOKEN_TTL": "1", "JWT_LEEWAY": "30",
    ])
    private static let edDSA = SharedStack(["JWT_ALG": "EdDSA"])
    /// A realistic bcrypt cost, so that hashing time is measurable.
    private static let slowHash = SharedStack(["BCRYPT_COST": "10"])

    static func standard() throws -> Stack { try defaultStack.get() }
    static func shortLivedTokens() throws -> Stack { try shortLived.get() }
    static func anotherIssuer() throws -> Stack { try otherIssuer.get() }
    static func retryGrace() throws -> Stack { try grace.get() }
    static func tunedSessions() throws -> Stack { try tuned.get() }
    static func ed25519() throws -> Stack { try edDSA.get() }
    static func realisticBcrypt() throws -> Stack { try slowHash.get() }
}
