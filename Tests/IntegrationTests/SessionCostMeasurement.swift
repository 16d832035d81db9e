import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Figures, not a pass/fail test: what listing sessions and logging in cost at 1, 100 and
/// 1,000 sessions of one user, and what a crowd of session-list readers does to other
/// users. Off unless `AUTHD_MEASURE_SESSIONS=1`; run it with a release authd, e.g.
///
///     swift build -c release --product authd
///     AUTHD_MEASURE_SESSIONS=1 AUTHD_BIN=$PWD/.build/release/authd swift test --filter SessionCost
///
/// It prints a table. Nothing here fails because the machine is slow.
@Suite("Session cost (measurement)", .serialized,
       .enabled(if: ProcessInfo.processInfo.environment["AUTHD_MEASURE_SESSIONS"] != nil,
                "set AUTHD_MEASURE_SESSIONS=1 to print the session cost figures"))
struct SessionCostMeasurement {
    /// The list a client gets without parameters, and logins, at a growing session count.
    /// The cap is raised so that one user really holds 1,000 sessions.
    @Test func listAndLoginAtGrowingSessionCounts() throws {
        let stack = try Stack.start(Self.environment(["MAX_SESSIONS_PER_USER": "10000"]))
        defer { stack.shutdown() }
        print("sessions | GET /auth/sessions p50 / p99 ms, bytes, Redis script µs | ?limit=100 the same | login p50 / p99 ms, Redis script µs")
        for n in [1, 100, 1000] {
            let user = try Self.user(with: n, on: stack)
            let list = try Self.timed(stack, 30) { try stack.sessions(user.tokens.access) }
            let big = try Self.timed(stack, 30) { try stack.sessions(user.tokens.access, query: "limit=100") }
            let login = try Self.timed(stack, 20) { try stack.login(user.username, user.password) }
            print(String(format: "%8d | %6.2f / %6.2f ms, %8d B, %7.0f µs | %6.2f / %6.2f ms, %8d B, %7.0f µs | %6.2f / %6.2f ms, %5.0f µs",
                         n, list.p50, list.p99, list.bytes, list.scriptMicros, big.p50, big.p99, big.bytes, big.scriptMicros,
                         login.p50, login.p99, login.scriptMicros))
        }
    }

    /// Logins of a user who has logged in 1,000 times, at the default cap: each one now
    /// evicts the least recently used session.
    @Test func loginAtTheDefaultCap() throws {
        let stack = try Stack.start(Self.environment([:]))
        defer { stack.shutdown() }
        let user = try Self.user(with: 1000, on: stack)
        let list = try Self.timed(stack, 30) { try stack.sessions(user.tokens.access) }
        let login = try Self.timed(stack, 20) { try stack.login(user.username, user.password) }
        print(String(format: "default cap, 1000 logins | list %6.2f / %6.2f ms, %8d B, %7.0f µs | login %6.2f / %6.2f ms, %5.0f µs",
                     list.p50, list.p99, list.bytes, list.scriptMicros, login.p50, login.p99, login.scriptMicros))
    }

    /// Readers of the list of a user with `AUTHD_MEASURE_HEAVY` (1,000) logins next to other
    /// users: 8 readers while another user's `GET /auth/me` is timed, then 16 readers while
    /// that user also logs in and calls `GET /`; the bytes the readers pulled and authd's peak RSS.
    @Test func listReadersNextToOtherUsers() throws {
        let stack = try Stack.start(Self.environment(["MAX_SESSIONS_PER_USER": "10000"]))
        defer { stack.shutdown() }
        let logins = Int(ProcessInfo.processInfo.environment["AUTHD_MEASURE_HEAVY"] ?? "") ?? 1000
        let heavy = try Self.user(with: logins, on: stack)
        print("list of a user with \(logins) logins: \(try stack.sessions(heavy.tokens.access).body.count) bytes")
        let other = try stack.newUser("bystander")
        let idle = try Self.probe(stack, seconds: 2) { try stack.me(other.tokens.access) }
        print(String(format: "GET /auth/me alone            p50 %6.2f ms  p99 %7.2f ms  max %7.2f ms", idle.p50, idle.p99, idle.max))
        for readers in [8, 16] {
            let stop = Flag()
            let bytes = ByteCount()
            let started = Date()
            let results = concurrently(readers + 3) { index -> Latencies? in
                switch index {
                case 0: return try? Self.probe(stack, seconds: 3) { try stack.me(other.tokens.access) }.also { stop.set() }
                case 1: return try? Self.probe(stack, until: stop) { try stack.login(other.username, other.password) }
                case 2: return try? Self.probe(stack, until: stop) { try stack.call("GET", "/", bearer: other.tokens.access) }
                default:
                    while !stop.isSet {
                        if let r = try? stack.sessions(heavy.tokens.access) { bytes.add(r.body.count) }
                    }
                    return nil
                }
            }
            let seconds = Date().timeIntervalSince(started)
            let me = results[0], login = results[1], home = results[2]
            print(String(format: "%2d list readers: %6.1f MB/s | other user's GET /auth/me p50 %6.2f p99 %7.2f ms | login p50 %7.2f ms | GET / max %7.2f ms",
                         readers, Double(bytes.total) / seconds / 1e6, me?.p50 ?? -1, me?.p99 ?? -1, login?.p50 ?? -1, home?.max ?? -1))
        }
        print("authd " + Self.memory(of: stack))
    }

    // MARK: helpers

    static func environment(_ extra: [String: String]) -> [String: String] {
        ["LOGIN_USER_MAX_FAILURES": "0", "LOGIN_ADDRESS_MAX_FAILURES": "0"].merging(extra) { $1 }
    }

    /// A new user with `n` sessions (the registration and n - 1 logins, on 4 threads).
    static func user(with n: Int, on stack: Stack) throws -> User {
        let user = try stack.newUser("cost")
        let failed = concurrently(4) { t -> Int in
            var failed = 0
            for _ in stride(from: t, to: n - 1, by: 4) where (try? stack.retryingBusy { try stack.login(user.username, user.password) })?.status != 200 {
                failed += 1
            }
            return failed
        }.reduce(0, +)
        try #require(failed == 0, "\(failed) logins failed")
        return user
    }

    struct Latencies {
        var p50 = 0.0, p99 = 0.0, max = 0.0
        var bytes = 0
        /// Redis's own time per script call (EVALSHA), from INFO commandstats.
        var scriptMicros = 0.0
        func also(_ body: () -> Void) -> Latencies { body(); return self }

        init(_ millis: [Double]) {
            let sorted = millis.sorted()
            guard !sorted.isEmpty else { return }
            p50 = sorted[sorted.count / 2]
            p99 = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
            max = sorted.last!
        }
    }

    /// `count` sequential requests, their latencies, the last body's size and Redis's
    /// microseconds per script call meanwhile.
    static func timed(_ stack: Stack, _ count: Int, _ request: () throws -> HTTPResponse) throws -> Latencies {
        try stack.redisCLI("CONFIG", "RESETSTAT")
        var millis: [Double] = []
        var bytes = 0
        for _ in 0..<count {
            let started = Date()
            let response = try request()
            millis.append(Date().timeIntervalSince(started) * 1000)
            try #require((200..<300).contains(response.status), "\(response)")
            bytes = response.body.count
        }
        var result = Latencies(millis)
        result.bytes = bytes
        let stats = try stack.redisCLI("INFO", "commandstats")
        if let line = stats.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_evalsha:") }),
           let field = line.split(separator: ",").first(where: { $0.hasPrefix("usec_per_call=") }) {
            result.scriptMicros = Double(field.dropFirst("usec_per_call=".count)) ?? 0
        }
        return result
    }

    /// Sequential requests for `seconds`, or until `stop` is set.
    static func probe(_ stack: Stack, seconds: Double? = nil, until stop: Flag? = nil,
                      _ request: () throws -> HTTPResponse) throws -> Latencies {
        let deadline = Date().addingTimeInterval(seconds ?? 3600)
        var millis: [Double] = []
        while Date() < deadline, !(stop?.isSet ?? false) {
            let started = Date()
            _ = try request()
            millis.append(Date().timeIntervalSince(started) * 1000)
        }
        return Latencies(millis)
    }

    /// VmHWM (peak) and VmRSS of the stack's authd.
    static func memory(of stack: Stack) -> String {
        guard let pid = stack.authdPID, let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else {
            return "(no /proc status)"
        }
        return status.split(separator: "\n").filter { $0.hasPrefix("VmHWM") || $0.hasPrefix("VmRSS") }
            .map { $0.replacingOccurrences(of: "\t", with: "").replacingOccurrences(of: "  ", with: "") }.joined(separator: ", ")
    }
}

/// A byte counter shared by threads.
final class ByteCount: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func add(_ n: Int) { lock.withLock { value += n } }
    var total: Int { lock.withLock { value } }
}
