import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

// The load, the bookkeeping and the report of the chaos suite (ChaosTests*.swift).
// Everything here runs on plain threads with blocking sockets, like the rest of the
// harness; nothing records test issues off the test's own thread: helper threads
// collect samples, and the test checks them afterwards.

// MARK: - settings and time

enum Chaos {
    /// `make chaos` (AUTHD_CHAOS=1): the suite is skipped otherwise, so `swift test` and
    /// CI never run it.
    static let enabled = ProcessInfo.processInfo.environment["AUTHD_CHAOS"] == "1"

    /// authd's `REDIS_TIMEOUT` (Sources/AuthCore/Config.swift: connect and command
    /// timeout, seconds; default 2) in the chaos stacks: small, so that a hung Redis
    /// costs each request one second and the runs stay short.
    static let redisTimeout = 1.0

    /// The stack settings of a chaos scenario, on top of Stack.baseEnvironment
    /// (BCRYPT_COST 4, WORKERS 64).
    static func environment(redisTimeout: Double = redisTimeout) -> [String: String] {
        ["REDIS_TIMEOUT": String(redisTimeout)]
    }
}

/// Settings read from deploy/nginx.conf (the file the test stacks' nginx config is
/// generated from), so that the bounds the suite checks follow the file.
enum NginxSettings {
    static let text = (try? String(contentsOfFile: Stack.repoRoot + "/deploy/nginx.conf", encoding: .utf8)) ?? ""

    /// The argument of the first active `name value;` line, e.g. `10s`.
    static func value(_ name: String) -> String? {
        for line in text.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, words[0] == Substring(name) else { continue }
            return String(words[1].hasSuffix(";") ? words[1].dropLast() : words[1])
        }
        return nil
    }

    /// A duration setting in seconds (`10s`, `1m`, `500ms`, `10`).
    static func seconds(_ name: String) throws -> Double {
        guard let v = value(name) else { throw HarnessError("deploy/nginx.conf sets no \(name)") }
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, factor) in units where v.hasSuffix(suffix) {
            if let n = Double(v.dropLast(suffix.count)) { return n * factor }
        }
        guard let n = Double(v) else { throw HarnessError("deploy/nginx.conf: \(name) \(v) is not a duration") }
        return n
    }
}

/// Seconds on the monotonic clock.
func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func pause(_ seconds: Double) { Thread.sleep(forTimeInterval: seconds) }

/// `body` on a thread of its own; `wait()` returns its result.
final class Background<T: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var result: T?

    init(_ body: @escaping @Sendable () -> T) {
        let thread = Thread { [self] in
            let value = body()
            condition.lock()
            result = value
            condition.broadcast()
            condition.unlock()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    func wait() -> T {
        condition.lock()
        defer { condition.unlock() }
        while result == nil { condition.wait() }
        return result!
    }
}

// MARK: - what the load does and what it saw

enum ChaosOp: String, CaseIterable, Sendable {
    case register = "register"
    case login = "login"
    case refresh = "refresh"
    case home = "GET /"
    case me = "GET /auth/me"
}

/// One request of the load and its answer.
struct ChaosSample: Sendable {
    let op: ChaosOp
    /// The HTTP status; -1 when no HTTP answer came (connect, send or read failed, or
    /// the client's timeout).
    let status: Int
    /// When the request started and ended, in seconds since the scenario's t0.
    let start: Double
    let end: Double
    /// Why the answer is not one the contract allows at this point; nil when it is.
    let problem: String?
    var latency: Double { end - start }
    var succeeded: Bool { (200..<300).contains(status) }
}

struct ChaosAccount: Sendable {
    let username: String
    let password: String
}

/// A session as its client knows it.
struct ChaosSession: Sendable {
    let account: ChaosAccount
    var access: String
    /// The newest refresh token the client was given.
    var refresh: String
    /// The one it replaced (nil until the first rotation).
    var previous: String?
    var rotations = 0
    /// The last rotation attempt got no definite answer (a 5xx, or no answer): the store
    /// may or may not have rotated the session, so `refresh` may be spent already.
    var uncertain = false
    /// A refresh after an uncertain attempt was refused as a replay: the attempt had
    /// rotated the session, and the replay ended it.
    var ended = false
    /// No longer used by the load (each thread cycles through a few recent sessions).
    var retired = false

    init(account: ChaosAccount, pair: TokenPair) {
        self.account = account
        access = pair.access
        refresh = pair.refresh
    }
}

/// What a scenario allows besides the contract's own answers.
struct ChaosPolicy: Sendable {
    /// The 5xx answers an operation may get (they must still have the JSON error shape).
    var allowed5xx: @Sendable (ChaosOp, Int) -> Bool
    /// Whether a refresh may be refused as a replay after the session's previous attempt
    /// got a 5xx: true where the store or authd may have done the rotation and lost only
    /// the answer (a killed Redis or authd); false where a 5xx must mean "not done"
    /// (a graceful shutdown).
    var replayAfterUncertainAllowed = true
}

/// One load thread: the operations it cycles through, and a pause between requests.
struct ChaosThreadPlan: Sendable {
    var mix: [ChaosOp]
    var pause: Double = 0
    /// Sessions this thread uses at once; older ones are retired (still verified).
    var activeSessions = 4
}

/// Everything one load thread did.
struct ChaosThreadResult: Sendable {
    var accounts: [ChaosAccount] = []
    /// Registrations that got a 5xx or no answer: they may or may not have happened.
    var uncertainRegistrations: [ChaosAccount] = []
    var sessions: [ChaosSession] = []
    var samples: [ChaosSample] = []
}

/// The parsed error message of an error answer.
func errorMessage(_ response: HTTPResponse) -> String? {
    (response.object?["error"] as? [String: Any])?["message"] as? String
}

/// The API's error shape (as `expectError` checks it, without recording issues):
/// JSON content type, `error.status` equal to the HTTP status, a non-empty message.
func hasErrorShape(_ response: HTTPResponse) -> Bool {
    guard response.header("Content-Type")?.lowercased().hasPrefix("application/json") == true,
          let error = response.object?["error"] as? [String: Any],
          let status = error["status"] as? NSNumber, !(error["status"] is Bool),
          status.intValue == response.status,
          let message = error["message"] as? String, !message.isEmpty else { return false }
    return true
}

/// Registers `count` users (one session each) before the faults start.
func chaosSeed(_ stack: Stack, count: Int, prefix: String = "seed") throws -> [ChaosSession] {
    try (0..<count).map { _ in
        let user = try stack.newUser(prefix)
        return ChaosSession(account: ChaosAccount(username: user.username, password: user.password), pair: user.tokens)
    }
}

/// A running load: `plans.count` threads, each with its own users and sessions (no
/// sharing, so no locks on the request path), sending requests back to back through
/// nginx until `stop()`.
final class ChaosLoad: @unchecked Sendable {
    let stack: Stack
    let t0: Double
    private let policy: ChaosPolicy
    private let stopping = Atomic<Bool>(false)
    private let condition = NSCondition()
    private var results: [ChaosThreadResult?]
    private var finished = 0

    /// `seeds[i]` are thread i's first sessions (at least one each).
    init(stack: Stack, t0: Double, plans: [ChaosThreadPlan], seeds: [[ChaosSession]], policy: ChaosPolicy) {
        precondition(plans.count == seeds.count && seeds.allSatisfy { !$0.isEmpty })
        self.stack = stack
        self.t0 = t0
        self.policy = policy
        results = Array(repeating: nil, count: plans.count)
        for (index, plan) in plans.enumerated() {
            var initial = ChaosThreadResult()
            initial.sessions = seeds[index]
            initial.accounts = seeds[index].map(\.account)
            let state = initial
            let thread = Thread { [self] in
                run(index: index, plan: plan, state: state)
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Stops the threads after their current request; returns what they did.
    func stop() -> [ChaosThreadResult] {
        stopping.store(true, ordering: .sequentiallyConsistent)
        condition.lock()
        defer { condition.unlock() }
        while finished < results.count { condition.wait() }
        return results.map { $0! }
    }

    private func run(index: Int, plan: ChaosThreadPlan, state initial: ChaosThreadResult) {
        var state = initial
        var step = index  // threads start at different points of the mix
        var nextSession = 0, nextAccount = 0
        while !stopping.load(ordering: .relaxed) {
            let op = plan.mix[step % plan.mix.count]
            step += 1
            perform(op, plan: plan, state: &state, nextSession: &nextSession, nextAccount: &nextAccount)
            if plan.pause > 0 { pause(plan.pause) }
        }
        condition.lock()
        results[index] = state
        finished += 1
        condition.broadcast()
        condition.unlock()
    }

    private func perform(_ op: ChaosOp, plan: ChaosThreadPlan, state: inout ChaosThreadResult,
                         nextSession: inout Int, nextAccount: inout Int) {
        let active = state.sessions.indices.filter { !state.sessions[$0].ended && !state.sessions[$0].retired }
        // The newest session's access token: access tokens stay valid after a replay ends
        // their session (they are not looked up in Redis).
        let access = state.sessions.last!.access

        var sessionIndex: Int?
        var account: ChaosAccount?
        let request: () throws -> HTTPResponse
        switch op {
        case .register:
            let fresh = ChaosAccount(username: uniqueName("c"), password: validPassword)
            account = fresh
            request = { try self.stack.register(fresh.username, fresh.password) }
        case .login:
            let known = state.accounts[nextAccount % state.accounts.count]
            nextAccount += 1
            account = known
            request = { try self.stack.login(known.username, known.password) }
        case .refresh:
            guard !active.isEmpty else {
                // Every session of this thread was ended by a replay: start one.
                return perform(.login, plan: plan, state: &state, nextSession: &nextSession, nextAccount: &nextAccount)
            }
            let index = active[nextSession % active.count]
            nextSession += 1
            sessionIndex = index
            let token = state.sessions[index].refresh
            request = { try self.stack.refresh(token) }
        case .home:
            request = { try self.stack.home(access) }
        case .me:
            request = { try self.stack.me(access) }
        }

        let start = monotonicNow()
        let outcome = Result { try request() }
        let end = monotonicNow()
        var problem: String?
        let status: Int
        switch outcome {
        case .failure(let error):
            status = -1
            problem = "\(op.rawValue): no HTTP answer (\(error))"
        case .success(let response):
            status = response.status
            problem = judge(op, response, &state, sessionIndex: sessionIndex, account: account, plan: plan)
        }
        if status == -1 || (500..<600).contains(status) {
            // No definite answer: the request may or may not have been carried out.
            if let sessionIndex { state.sessions[sessionIndex].uncertain = true }
            if op == .register, let account { state.uncertainRegistrations.append(account) }
        }
        state.samples.append(ChaosSample(op: op, status: status, start: start - t0, end: end - t0, problem: problem))
    }

    /// nil when the answer is one the contract (and the scenario's policy) allows;
    /// updates the thread's users and sessions from successful answers.
    private func judge(_ op: ChaosOp, _ response: HTTPResponse, _ state: inout ChaosThreadResult,
                       sessionIndex: Int?, account: ChaosAccount?, plan: ChaosThreadPlan) -> String? {
        let status = response.status
        let label = "\(op.rawValue) \(status)"
        if status >= 400 && !hasErrorShape(response) {
            return "\(label) not in the JSON error shape: \(response)"
        }
        if status >= 500 {
            return policy.allowed5xx(op, status) ? nil : "\(label) not allowed here: \(response)"
        }
        func newSession(_ account: ChaosAccount) -> String? {
            guard let pair = TokenPair.parse(response) else { return "\(label) without a token pair: \(response)" }
            state.sessions.append(ChaosSession(account: account, pair: pair))
            let active = state.sessions.indices.filter { !state.sessions[$0].ended && !state.sessions[$0].retired }
            if active.count > plan.activeSessions { state.sessions[active[0]].retired = true }
            return nil
        }
        switch (op, status) {
        case (.register, 201):
            state.accounts.append(account!)
            return newSession(account!)
        case (.login, 200):
            return newSession(account!)
        case (.refresh, 200):
            guard let pair = TokenPair.parse(response) else { return "\(label) without a token pair: \(response)" }
            var session = state.sessions[sessionIndex!]
            session.previous = session.refresh
            session.refresh = pair.refresh
            session.access = pair.access
            session.rotations += 1
            // The uncertain attempt before this one did not rotate (this token was current).
            session.uncertain = false
            state.sessions[sessionIndex!] = session
            return nil
        case (.refresh, 403) where state.sessions[sessionIndex!].uncertain:
            state.sessions[sessionIndex!].ended = true
            return policy.replayAfterUncertainAllowed
                ? nil
                : "refresh 403 after a 5xx: the request answered 5xx had been carried out (rotated): \(response)"
        case (.home, 200), (.me, 200):
            return nil
        default:
            return "\(label) is not what the contract says here: \(response)"
        }
    }
}

// MARK: - reading the samples

extension Array where Element == ChaosSample {
    /// `200: 1234, 503: 56` (and `no answer: n` for requests without an HTTP answer).
    var byStatus: String {
        let counts = Dictionary(grouping: self, by: \.status).mapValues(\.count)
        if counts.isEmpty { return "none" }
        return counts.keys.sorted().map { "\($0 == -1 ? "no answer" : String($0)): \(counts[$0]!)" }.joined(separator: ", ")
    }

    /// `register 120, login 80, ...`
    var byOperation: String {
        ChaosOp.allCases.compactMap { op in
            let n = filter { $0.op == op }.count
            return n == 0 ? nil : "\(op.rawValue) \(n)"
        }.joined(separator: ", ")
    }

    var maxLatency: Double { map(\.latency).max() ?? 0 }

    /// Requests that started in [from, to).
    func started(from: Double, to: Double = .infinity) -> [ChaosSample] {
        filter { $0.start >= from && $0.start < to }
    }

    /// Seconds from `t` until the first successful answer (its end) of `op` among the
    /// requests started after `t`; nil when there is none.
    func firstSuccess(of op: ChaosOp, after t: Double) -> Double? {
        filter { $0.op == op && $0.start >= t && $0.succeeded }.map { $0.end - t }.min()
    }

    /// The longest time between two consecutive successful answers (their ends) within
    /// [from, to].
    func longestGap(from: Double, to: Double) -> Double {
        let ends = filter(\.succeeded).map(\.end).filter { $0 >= from && $0 <= to }.sorted()
        var gap = 0.0, last = from
        for e in ends {
            gap = Swift.max(gap, e - last)
            last = e
        }
        return Swift.max(gap, to - last)
    }

    var problems: [String] { compactMap(\.problem) }
}

func seconds(_ s: Double) -> String { String(format: "%.3f s", s) }

// MARK: - the summary block

/// One scenario's summary: what happened, each condition with its outcome (each also an
/// `#expect`), and the verdict. Printed as one block.
struct ChaosReport {
    let title: String
    private(set) var lines: [String] = []
    private(set) var failures: [String] = []

    init(_ title: String) { self.title = title }

    mutating func info(_ line: String) { lines.append("  " + line) }

    mutating func check(_ ok: Bool, _ condition: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(ok, "\(title): \(condition)", sourceLocation: sourceLocation)
        lines.append("  [\(ok ? "pass" : "FAIL")] \(condition)")
        if !ok { failures.append(condition) }
    }

    /// The samples' totals: requests sent, answers by status, per operation.
    mutating func traffic(_ samples: [ChaosSample], label: String = "") {
        let prefix = label.isEmpty ? "" : label + " "
        info("\(prefix)requests sent: \(samples.count) (\(samples.byOperation))")
        info("\(prefix)answers by status: \(samples.byStatus)")
    }

    /// Up to `limit` of the problems, then the count.
    mutating func problems(_ problems: [String], limit: Int = 8) {
        for p in problems.prefix(limit) { info("  unexpected: " + String(p.prefix(300))) }
        if problems.count > limit { info("  ... and \(problems.count - limit) more") }
    }

    func print() {
        let verdict = failures.isEmpty
            ? "PASS"
            : "FAIL (\(failures.count) condition\(failures.count == 1 ? "" : "s"))"
        let rule = String(repeating: "=", count: 78)
        let text = ([rule, "CHAOS \(title)"] + lines + ["  verdict: \(verdict)", rule]).joined(separator: "\n")
        // One write, so that blocks never interleave with other output.
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}

// MARK: - checking the state after a restart

/// What a check of the recorded users and sessions found.
struct ChaosStateCheck: Sendable {
    var users = 0, usersLost = 0
    var sessions = 0, sessionsLost = 0
    var previousStillValid = 0
    var replayDidNotEnd = 0
    /// Sessions whose last rotation got no answer: carried out (token spent) or not.
    var uncertainSessions = 0, uncertainCarriedOut = 0, uncertainNotCarriedOut = 0
    /// Registrations that got no answer: the user exists, only the name is reserved, or nothing.
    var uncertainRegistrations = 0, registrationsDone = 0, registrationsReservedOnly = 0, registrationsNotDone = 0
    var failures: [String] = []

    static func + (a: ChaosStateCheck, b: ChaosStateCheck) -> ChaosStateCheck {
        var r = a
        r.users += b.users; r.usersLost += b.usersLost
        r.sessions += b.sessions; r.sessionsLost += b.sessionsLost
        r.previousStillValid += b.previousStillValid; r.replayDidNotEnd += b.replayDidNotEnd
        r.uncertainSessions += b.uncertainSessions; r.uncertainCarriedOut += b.uncertainCarriedOut
        r.uncertainNotCarriedOut += b.uncertainNotCarriedOut
        r.uncertainRegistrations += b.uncertainRegistrations; r.registrationsDone += b.registrationsDone
        r.registrationsReservedOnly += b.registrationsReservedOnly; r.registrationsNotDone += b.registrationsNotDone
        r.failures += b.failures
        return r
    }
}

/// Checks, through nginx, that every user whose registration got 201 logs in, and that
/// for every session whose last rotation was answered, the newest refresh token works
/// and the one before it is a replay (after which the session is over). Sessions and
/// registrations without a definite answer are probed and counted (carried out or
/// not). Spends the sessions it checks. Runs on `threads` threads.
func checkRecordedState(_ stack: Stack, _ results: [ChaosThreadResult], threads: Int = 8) -> ChaosStateCheck {
    enum Item: Sendable {
        case user(ChaosAccount)
        case session(ChaosSession)
        case uncertainRegistration(ChaosAccount)
    }
    var items: [Item] = []
    for r in results {
        items += r.accounts.map(Item.user)
        items += r.sessions.filter { !$0.ended }.map(Item.session)
        items += r.uncertainRegistrations.map(Item.uncertainRegistration)
    }
    let work = items
    let parts = concurrently(threads) { part -> ChaosStateCheck in
        var c = ChaosStateCheck()
        for item in stride(from: part, to: work.count, by: threads).map({ work[$0] }) {
            switch item {
            case .user(let a):
                c.users += 1
                let s = statusOf { try stack.login(a.username, a.password) }
                if s != 200 {
                    c.usersLost += 1
                    c.failures.append("user \(a.username) (registered, 201) cannot log in: \(s)")
                }
            case .session(let session) where session.uncertain:
                c.uncertainSessions += 1
                switch statusOf({ try stack.refresh(session.refresh) }) {
                case 200: c.uncertainNotCarriedOut += 1
                case 403: c.uncertainCarriedOut += 1
                case let s: c.failures.append("session of \(session.account.username): refresh after an unanswered rotation gave \(s)")
                }
            case .session(let session):
                c.sessions += 1
                let newest = Result { try stack.refresh(session.refresh) }
                guard case .success(let r) = newest, r.status == 200, let pair = TokenPair.parse(r) else {
                    c.sessionsLost += 1
                    let s = (try? newest.get().status) ?? -1
                    c.failures.append("session of \(session.account.username) after \(session.rotations) rotation(s): its newest refresh token is refused (\(s))")
                    continue
                }
                guard let previous = session.previous else { continue }
                let replay = statusOf { try stack.refresh(previous) }
                if replay != 403 {
                    c.previousStillValid += 1
                    c.failures.append("session of \(session.account.username): the token before the newest gave \(replay), not 403 (replay)")
                    continue
                }
                let after = statusOf { try stack.refresh(pair.refresh) }
                if after != 403 {
                    c.replayDidNotEnd += 1
                    c.failures.append("session of \(session.account.username): still usable after a replay (\(after))")
                }
            case .uncertainRegistration(let a):
                c.uncertainRegistrations += 1
                switch statusOf({ try stack.register(a.username, a.password) }) {
                case 201: c.registrationsNotDone += 1
                case 409:
                    if statusOf({ try stack.login(a.username, a.password) }) == 200 {
                        c.registrationsDone += 1
                    } else {
                        c.registrationsReservedOnly += 1
                    }
                case let s: c.failures.append("registration of \(a.username) without an answer: registering again gave \(s)")
                }
            }
        }
        return c
    }
    return parts.reduce(ChaosStateCheck(), +)
}
