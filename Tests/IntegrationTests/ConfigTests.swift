import Foundation
import Testing

@Suite("Configuration and process life cycle")
struct ConfigTests {
    /// Starts `authd serve` with the base environment changed by `changes` (nil removes
    /// a variable) and expects it to stop with a non-zero status; returns its output.
    private func failedStart(_ changes: [String: String?]) throws -> String {
        let dir = try Stack.makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var environment = Stack.baseEnvironment(dir: dir)
        for (name, value) in changes { environment[name] = value }
        let result = try runCommand(Stack.authdBinary, ["serve"], environment: environment, directory: dir, timeout: 10)
        #expect(result.termination != .exited(0), "authd started with \(changes): \(result.output)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/authd.sock"))
        return result.output
    }

    @Test(arguments: ["ACCESS_TOKEN_SECRET", "REFRESH_TOKEN_SECRET"])
    func missingSecretRefusesToStartSayingHowToMakeOne(variable: String) throws {
        let output = try failedStart([variable: nil])
        #expect(output.contains(variable), "\(output)")
        #expect(output.contains("keygen") || output.contains("openssl rand"), "no hint how to make one: \(output)")
    }

    @Test(arguments: ["ACCESS_TOKEN_SECRET", "REFRESH_TOKEN_SECRET"])
    func secretShorterThan32BytesRefusesToStart(variable: String) throws {
        let output = try failedStart([variable: String(repeating: "s", count: 31)])
        #expect(output.contains(variable), "\(output)")
    }

    @Test(arguments: [
        ("BCRYPT_COST", "banana"), ("ACCESS_TOKEN_TTL", "-5"), ("JWT_ALG", "RS256"),
        ("REDIS_URL", "http://localhost"), ("WORKERS", "0"), ("JWT_LEEWAY", "soon"), ("MAX_SESSIONS_PER_USER", "0"),
    ])
    func badValueStopsStartUpNamingTheVariable(variable: String, value: String) throws {
        let output = try failedStart([variable: value])
        #expect(output.contains(variable), "\(output)")
    }

    /// A socket authd cannot open stops it with the documented status 1 and a log line
    /// naming the call (libfcgi's FCGX_OpenSocket exited with errno as the status instead).
    @Test func aListenSocketThatCannotBeOpenedStopsStartUpWithStatus1() throws {
        let dir = try Stack.makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var environment = Stack.baseEnvironment(dir: dir)
        environment["FCGI_LISTEN"] = dir + "/missing/authd.sock"
        let result = try runCommand(Stack.authdBinary, ["serve"], environment: environment, directory: dir, timeout: 10)
        #expect(result.termination == .exited(1), "\(result.termination): \(result.output)")
        #expect(result.output.contains("cannot start") && result.output.contains("bind(\(dir)/missing/authd.sock) failed: No such file or directory"),
                "\(result.output)")
    }

    @Test func dotenvIsReadAndTheEnvironmentWins() throws {
        let stack = try Stack.start(dotenv: "ACCESS_TOKEN_TTL=77\nJWT_ISSUER=from-dotenv\n")
        defer { stack.shutdown() }
        let access = try JWT(try stack.newUser("dotenv").tokens.access)
        #expect(access.string("iss") == "authd-test", "the environment must win over .env")
        #expect(access.int("exp")! - access.int("iat")! == 77, ".env value not used")
    }

    @Test func sigtermStopsAuthdWithStatus0() throws {
        let stack = try Stack.start(Stack.oneInstance)  // with two, the other would answer
        defer { stack.shutdown() }
        _ = try stack.newUser("term")
        let termination = stack.stopAuthd()
        #expect(termination == .exited(0), "\(String(describing: termination))")
        // nginx's own answer when authd is gone keeps the error shape.
        let response = try stack.call("GET", "/healthz")
        #expect([502, 503, 504].contains(response.status), "\(response)")
        expectError(response)
    }

    /// With kept-alive FastCGI connections idle in authd's workers, SIGTERM must still end
    /// authd promptly, and a request it is working on must complete. The request is held
    /// in flight by pausing Redis (not by a slow bcrypt, whose speed depends on the load).
    @Test func sigtermFinishesTheRequestInFlight() throws {
        let stack = try Stack.start(Stack.oneInstance)
        defer { stack.shutdown() }
        let user = try stack.newUser("inflight")
        for _ in 0..<20 { _ = try stack.call("GET", "/healthz") }  // leave kept connections idle
        stack.pauseRedis()
        let login = Thread.detachedResult { try stack.login(user.username, user.password) }
        Thread.sleep(forTimeInterval: 0.3)  // the login now waits on Redis (REDIS_TIMEOUT is 2 s)
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: 0.5)
            stack.resumeRedis()
        }
        let started = Date()
        let termination = stack.stopAuthd(grace: 10)
        let elapsed = Date().timeIntervalSince(started)
        #expect(termination == .exited(0), "\(String(describing: termination))")
        #expect(elapsed < 5, "authd took \(elapsed) s to stop")
        #expect(elapsed > 0.3, "authd did not wait for the login it was serving (\(elapsed) s)")
        let response = try login.value()
        #expect(response.status == 200, "the login in flight was cut off: \(response)")
    }
}

extension Thread {
    /// Runs `body` on a new thread; `value()` waits for its result.
    static func detachedResult<T: Sendable>(_ body: @escaping @Sendable () throws -> T) -> PendingResult<T> {
        let pending = PendingResult<T>()
        Thread.detachNewThread { pending.set(Result { try body() }) }
        return pending
    }
}

final class PendingResult<T: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, any Error>?
    func set(_ r: Result<T, any Error>) { result = r; done.signal() }
    func value() throws -> T { done.wait(); return try result!.get() }
}
