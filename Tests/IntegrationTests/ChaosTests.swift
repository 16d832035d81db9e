import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The fault suite: real redis-server, authd and nginx on loopback, loaded through nginx
/// by the harness's own blocking clients while processes are killed, frozen, stopped or
/// starved. Each scenario starts its own stack and prints one summary block.
///
/// Run with `make chaos` (`AUTHD_CHAOS=1 swift test --filter Chaos`); without
/// AUTHD_CHAOS=1 (plain `swift test`, CI) the suite is skipped. Serialized: each
/// scenario wants the machine's cores to itself.
@Suite("Chaos", .serialized, .enabled(if: Chaos.enabled, "set AUTHD_CHAOS=1 (make chaos) to run the fault suite"))
struct ChaosTests {
    /// The mixed load of scenarios 1 and 3: mostly token checks, then refreshes,
    /// registrations, logins and /auth/me.
    static let mixedLoad: [ChaosOp] = [.home, .refresh, .home, .register, .home, .login, .refresh, .me, .home, .refresh]
    /// A thread that only checks a token, every 10 ms: the "GET / keeps answering" probe.
    static let probe = ChaosThreadPlan(mix: [.home], pause: 0.01)
    /// deploy/nginx.conf's `fastcgi_connect_timeout`: the longest a request should wait
    /// for an authd that is not there.
    static var nginxConnectTimeout: Double { get throws { try NginxSettings.seconds("fastcgi_connect_timeout") } }

    // MARK: 1. Redis SIGKILL under load

    @Test("1. Redis SIGKILLed (also while hung) under a mixed load")
    func redisKilledUnderLoad() throws {
        var report = ChaosReport("1/5: Redis SIGKILLed under a mixed load (register, login, refresh, GET /, GET /auth/me)")
        defer { report.print() }
        let timeout = Chaos.redisTimeout
        let stack = try Stack.start(Chaos.environment())
        defer { stack.shutdown() }
        let loadThreads = 10
        let plans = Array(repeating: ChaosThreadPlan(mix: Self.mixedLoad), count: loadThreads) + [Self.probe]
        let seeds = try plans.map { _ in try chaosSeed(stack, count: 2) }

        let t0 = monotonicNow()
        func now() -> Double { monotonicNow() - t0 }
        // Only a Redis route may get a 503; GET / (no Redis) must stay 200.
        let load = ChaosLoad(stack: stack, t0: t0, plans: plans, seeds: seeds,
                             policy: ChaosPolicy(allowed5xx: { op, status in status == 503 && op != .home }))
        pause(1.5)

        // (a) Killed outright: connections break, new ones are refused.
        let kill1 = now()
        stack.killRedis()
        pause(2.0)
        let restart1 = now()
        try stack.startRedis(keepData: true)
        let ready1 = now()
        pause(2.5)

        // (b) Hung first (SIGSTOP: connections stay open, nothing answers, so requests wait
        // for REDIS_TIMEOUT), then SIGKILLed while stopped.
        let hang2 = now()
        stack.pauseRedis()
        pause(2 * timeout + 0.5)
        let kill2 = now()
        stack.killRedis()
        pause(1.0)
        let restart2 = now()
        try stack.startRedis(keepData: true)
        let ready2 = now()
        pause(2.5)
        let results = load.stop()
        let end = now()

        let samples = results.flatMap(\.samples)
        report.info(String(format: "timeline (s): load from 0; SIGKILL at %.2f; restart at %.2f (answers PING at %.2f); SIGSTOP at %.2f; SIGKILL at %.2f; restart at %.2f (PING at %.2f); end %.2f",
                           kill1, restart1, ready1, hang2, kill2, restart2, ready2, end))
        report.info("stack: REDIS_TIMEOUT=\(timeout) s, WORKERS=64, AOF appendfsync always; \(loadThreads) load threads + 1 GET / probe (every 10 ms)")
        report.traffic(samples)
        let outage = samples.started(from: kill1, to: ready1) + samples.started(from: hang2, to: ready2)
        report.traffic(outage, label: "during the outages:")
        let bound = timeout + 1
        report.info("max latency: \(seconds(samples.maxLatency)) overall, \(seconds(outage.maxLatency)) during the outages")

        let replays = samples.filter { $0.op == .refresh && $0.status == 403 }.count
        report.info("refresh 403 after a 503 on the same session: \(replays) (Redis had rotated it and the answer was lost: the retry is a replay and ends the session, as the contract says with REFRESH_REUSE_GRACE=0)")
        let problems = samples.problems
        report.check(problems.isEmpty, "every answer is 2xx, 401/403 as the contract says, or 503 in the error shape (\(problems.count) other)")
        report.problems(problems)
        report.check(!samples.contains { $0.status == 500 }, "no 500")
        report.check(outage.contains { $0.status == 503 }, "the outages were seen: routes needing Redis answered 503")
        report.info("max latency by operation: " + ChaosOp.allCases.map { op in
            "\(op.rawValue) \(seconds(samples.filter { $0.op == op }.maxLatency))"
        }.joined(separator: ", "))
        // Registrations and logins are checked on their own: on failure they skip their
        // clean-up call to Redis when the connection just timed out (it would wait a second
        // REDIS_TIMEOUT), which only shows when the hang starts inside such a request.
        let cleaning: Set<ChaosOp> = [.register, .login]
        let others = samples.filter { !cleaning.contains($0.op) }
        let credentials = samples.filter { cleaning.contains($0.op) }
        report.check(others.maxLatency <= bound,
                     "no refresh, GET / or GET /auth/me waited longer than REDIS_TIMEOUT + 1 s = \(seconds(bound)) (max \(seconds(others.maxLatency)))")
        report.check(credentials.maxLatency <= bound,
                     "no registration or login waited longer than REDIS_TIMEOUT + 1 s (max \(seconds(credentials.maxLatency)))")

        let home = samples.filter { $0.op == .home }
        let homeOutage = outage.filter { $0.op == .home }
        let gap = home.longestGap(from: kill1, to: ready2)
        report.info("GET / during the outages: \(homeOutage.byStatus); longest time without a 200 from first kill to last restart: \(seconds(gap))")
        report.check(home.allSatisfy { $0.status == 200 } && homeOutage.count > 50,
                     "GET / answered 200 throughout (\(home.count) requests, \(homeOutage.count) during the outages)")

        // Recovery: the first answers of each Redis route after Redis is back, and no 503
        // for requests that start more than a second later, with the same authd process.
        for (name, ready, next) in [("kill", ready1, hang2), ("hang + kill", ready2, end)] {
            var firsts: [String] = []
            var worst = 0.0
            for op in [ChaosOp.register, .login, .refresh, .me] {
                let first = samples.firstSuccess(of: op, after: ready)
                firsts.append("\(op.rawValue) \(first.map(seconds) ?? "never")")
                worst = max(worst, first ?? .infinity)
            }
            report.info("after the \(name): first 2xx after Redis answered PING: " + firsts.joined(separator: ", "))
            report.check(worst <= 1.0, "after the \(name), every Redis route succeeds again within 1 s, authd not restarted (slowest \(seconds(worst)))")
            // Answered before the next fault began: later answers may be that fault's.
            let late = samples.started(from: ready + 1.0, to: next).filter { $0.end < next && $0.status == 503 }
            report.check(late.isEmpty, "after the \(name), no 503 for requests started 1 s or more after Redis is back (\(late.count))")
            report.problems(late.map { "\($0.op.rawValue) 503 started at " + String(format: "%.3f, answered at %.3f", $0.start, $0.end) })
        }
    }

    // MARK: 2. Durability across a Redis SIGKILL

    @Test("2. Every acknowledged registration and rotation survives a Redis SIGKILL (AOF)")
    func acknowledgedWritesSurviveRedisKill() throws {
        var report = ChaosReport("2/5: durability: acknowledged writes survive SIGKILL + restart from the AOF")
        defer { report.print() }
        let stack = try Stack.start(Chaos.environment())
        defer { stack.shutdown() }
        let fsync = try stack.redisCLI("CONFIG", "GET", "appendfsync").split(separator: "\n").last.map(String.init) ?? "?"
        let aof = try stack.redisCLI("CONFIG", "GET", "appendonly").split(separator: "\n").last.map(String.init) ?? "?"
        report.info("redis: appendonly \(aof), appendfsync \(fsync) (from deploy/redis/authd.conf)")

        // Writes, mostly: registrations and rotations, some logins.
        let writes: [ChaosOp] = [.register, .refresh, .refresh, .login, .refresh, .home, .refresh]
        let plans = Array(repeating: ChaosThreadPlan(mix: writes), count: 10)
        let seeds = try plans.map { _ in try chaosSeed(stack, count: 1) }
        let t0 = monotonicNow()
        func now() -> Double { monotonicNow() - t0 }
        let load = ChaosLoad(stack: stack, t0: t0, plans: plans, seeds: seeds,
                             policy: ChaosPolicy(allowed5xx: { op, status in status == 503 && op != .home }))
        pause(1.0)
        // A rewrite in the middle: the data then spans a new base file and a new
        // incremental file (Redis 7's multi-part AOF) when the kill comes.
        let rewrite = now()
        let rewriteReply = (try? stack.redisCLI("BGREWRITEAOF")) ?? "failed"
        pause(1.5)
        let kill = now()
        stack.killRedis()
        pause(0.5)
        let results = load.stop()
        try stack.startRedis(keepData: true)
        let restarted = now()

        let samples = results.flatMap(\.samples)
        let acknowledged = samples.filter { $0.succeeded && $0.op != .home && $0.op != .me }
        let beforeKill = acknowledged.filter { $0.end <= kill }
        func count(_ op: ChaosOp, _ s: [ChaosSample]) -> Int { s.filter { $0.op == op }.count }
        report.info(String(format: "timeline (s): load from 0; BGREWRITEAOF at %.2f; SIGKILL at %.2f; load stopped; restart from the AOF done at %.2f",
                           rewrite, kill, restarted) + " (BGREWRITEAOF: \(rewriteReply))")
        report.traffic(samples)
        report.info("acknowledged (2xx) before the SIGKILL: \(count(.register, beforeKill)) registrations, \(count(.refresh, beforeKill)) rotations, \(count(.login, beforeKill)) logins; after it: \(acknowledged.count - beforeKill.count)")
        let problems = samples.problems
        report.check(problems.isEmpty, "during the load, every answer is 2xx or 503 in the error shape (\(problems.count) other)")
        report.problems(problems)

        let check = checkRecordedState(stack, results)
        report.info("checked after the restart: \(check.users) users (login), \(check.sessions) sessions (newest token, then the one before it, then the session is over)")
        report.info("not checked as durable (no answer came): \(check.uncertainSessions) rotations (carried out \(check.uncertainCarriedOut), not \(check.uncertainNotCarriedOut)); \(check.uncertainRegistrations) registrations (done \(check.registrationsDone), name reserved only \(check.registrationsReservedOnly), not done \(check.registrationsNotDone))")
        report.check(check.usersLost == 0, "every user whose registration got 201 logs in after the restart (\(check.usersLost) of \(check.users) lost)")
        report.check(check.sessionsLost == 0, "every answered rotation survived: the session's newest refresh token works (\(check.sessionsLost) of \(check.sessions) refused)")
        report.check(check.previousStillValid == 0, "the token before the newest is a replay (403) (\(check.previousStillValid) accepted)")
        report.check(check.replayDidNotEnd == 0, "the replay ends the session (\(check.replayDidNotEnd) still usable)")
        report.check(check.failures.count == check.usersLost + check.sessionsLost + check.previousStillValid + check.replayDidNotEnd,
                     "no other surprise while checking (\(check.failures.count) findings in all)")
        report.problems(check.failures)
        report.check(check.users > 50 && check.sessions > 50, "enough was written to mean something (\(check.users) users, \(check.sessions) sessions)")
    }

    // MARK: 3. authd SIGKILL under load

    @Test("3. authd SIGKILLed under load, then restarted")
    func authdKilledUnderLoad() throws {
        var report = ChaosReport("3/5: authd SIGKILLed under a mixed load, then restarted")
        defer { report.print() }
        let stack = try Stack.start(Chaos.environment())
        defer { stack.shutdown() }
        let plans = Array(repeating: ChaosThreadPlan(mix: Self.mixedLoad), count: 10) + [Self.probe]
        let seeds = try plans.map { _ in try chaosSeed(stack, count: 2) }
        let t0 = monotonicNow()
        func now() -> Double { monotonicNow() - t0 }
        // While authd is gone nginx answers every route itself: 502 (or 504).
        let load = ChaosLoad(stack: stack, t0: t0, plans: plans, seeds: seeds,
                             policy: ChaosPolicy(allowed5xx: { _, status in status == 502 || status == 504 }))
        pause(1.5)
        let kill = now()
        let killed = stack.killAuthd()
        pause(1.5)
        let restart = now()
        try stack.startAuthd()
        let up = now()
        pause(2.5)
        let results = load.stop()
        let end = now()

        let samples = results.flatMap(\.samples)
        let down = samples.started(from: kill, to: up)
        report.info(String(format: "timeline (s): load from 0; SIGKILL at %.2f; restart at %.2f (socket back at %.2f); end %.2f",
                           kill, restart, up, end) + " (authd: \(killed.map { "\($0)" } ?? "?"))")
        report.traffic(samples)
        report.traffic(down, label: "while authd was down:")
        report.info("max latency: \(seconds(samples.maxLatency))")

        let replays = samples.filter { $0.op == .refresh && $0.status == 403 }.count
        report.info("refresh 403 after a 502 on the same session: \(replays) (authd had rotated it and was killed before answering: the retry is a replay, as the contract says with REFRESH_REUSE_GRACE=0)")
        let problems = samples.problems
        report.check(problems.isEmpty, "every answer is 2xx, 401/403 as the contract says, or 502/504 in the JSON error shape (\(problems.count) other)")
        report.problems(problems)
        report.check(!samples.contains { $0.status == 500 }, "no 500")
        report.check(down.contains { $0.status == 502 }, "nginx answered 502 in the JSON error shape while authd was down")
        let bound = try Self.nginxConnectTimeout + 1
        report.check(samples.maxLatency <= bound,
                     "no request waited longer than fastcgi_connect_timeout + 1 s = \(seconds(bound)) (max \(seconds(samples.maxLatency)))")
        var firsts: [String] = []
        var worst = 0.0
        for op in ChaosOp.allCases {
            let first = samples.firstSuccess(of: op, after: up)
            firsts.append("\(op.rawValue) \(first.map(seconds) ?? "never")")
            worst = max(worst, first ?? .infinity)
        }
        report.info("first 2xx after the restarted authd's socket appeared: " + firsts.joined(separator: ", "))
        report.check(worst <= 1.0, "the restarted authd serves every route within 1 s (slowest \(seconds(worst)))")
        let late = samples.started(from: up + 1.0).filter { !$0.succeeded }
        report.check(late.isEmpty, "no error for requests started 1 s or more after the restart (\(late.count))")

        // No state lost: it lives in Redis.
        let check = checkRecordedState(stack, results)
        report.info("checked after the restart: \(check.users) users (login), \(check.sessions) sessions (newest token works, the one before is a replay)")
        report.info("requests cut by the kill (502, no answer from authd): \(check.uncertainSessions) rotations (carried out before the kill \(check.uncertainCarriedOut), not \(check.uncertainNotCarriedOut)); \(check.uncertainRegistrations) registrations (done \(check.registrationsDone), name reserved only \(check.registrationsReservedOnly), not done \(check.registrationsNotDone))")
        report.check(check.failures.isEmpty,
                     "no state lost: every registered user logs in, every session's newest refresh token works and the one before it is a replay (\(check.failures.count) findings)")
        report.problems(check.failures)
    }

    // MARK: 4. SIGTERM under load

    @Test("4. SIGTERM under load: in-flight requests complete, authd exits 0 within 10 s")
    func authdTerminatedUnderLoad() throws {
        var report = ChaosReport("4/5: SIGTERM to authd under load: requests in flight complete, exit 0 within 10 s")
        defer { report.print() }
        // Requests held inside authd by a frozen Redis must outlast the freeze, not time out.
        let redisTimeout = 3.0
        let stack = try Stack.start(Chaos.environment(redisTimeout: redisTimeout))
        defer { stack.shutdown() }
        let plans = Array(repeating: ChaosThreadPlan(mix: Self.mixedLoad), count: 8) + [Self.probe]
        let seeds = try plans.map { _ in try chaosSeed(stack, count: 2) }
        let inFlightCount = 8
        let inFlightSessions = try chaosSeed(stack, count: inFlightCount, prefix: "flight")
        let t0 = monotonicNow()
        func now() -> Double { monotonicNow() - t0 }
        // 502/504 are allowed only for requests authd never took: a refresh refused as a
        // replay after a 502 (the 502'd rotation had been carried out) is a failure here.
        let load = ChaosLoad(stack: stack, t0: t0, plans: plans, seeds: seeds,
                             policy: ChaosPolicy(allowed5xx: { _, status in status == 502 || status == 504 },
                                                 replayAfterUncertainAllowed: false))
        pause(1.5)

        // Requests certainly inside authd when SIGTERM comes: refreshes waiting for a
        // frozen Redis (shorter than REDIS_TIMEOUT, so they succeed once it thaws).
        let freeze = now()
        stack.pauseRedis()
        let inFlight = Background { () -> [(status: Int, start: Double, end: Double, tokens: Bool)] in
            concurrently(inFlightCount) { i in
                let start = monotonicNow() - t0
                let response = try? stack.refresh(inFlightSessions[i].refresh)
                return (response?.status ?? -1, start, monotonicNow() - t0, response.flatMap(TokenPair.parse) != nil)
            }
        }
        pause(0.8)
        let term = now()
        let terminated = Background { stack.terminateAuthd(timeout: 10) }
        pause(0.7)
        let thaw = now()
        stack.resumeRedis()
        let (termination, exitSeconds) = terminated.wait()
        let flights = inFlight.wait()
        let exited = term + exitSeconds
        pause(0.5)  // the load meets a stopped authd: nginx answers 502
        let restart = now()
        try stack.startAuthd()
        let up = now()
        pause(2.0)
        let results = load.stop()
        let end = now()

        let samples = results.flatMap(\.samples)
        report.info(String(format: "timeline (s): load from 0; Redis frozen at %.2f; %d refreshes sent into authd; SIGTERM at %.2f; Redis thawed at %.2f; authd exited at %.2f; restarted at %.2f (socket at %.2f); end %.2f",
                           freeze, inFlightCount, term, thaw, exited, restart, up, end))
        report.info("stack: REDIS_TIMEOUT=\(redisTimeout) s (longer than the freeze), WORKERS=64; 8 load threads + 1 GET / probe")
        report.traffic(samples)
        let draining = samples.started(from: term, to: up)
        report.traffic(draining, label: "from SIGTERM to the restart:")
        report.info("max latency: \(seconds(samples.maxLatency)); in-flight refreshes: \(flights.map { "\($0.status)" }.joined(separator: " ")), answered \(String(format: "%.2f-%.2f s", flights.map(\.end).min() ?? 0, flights.map(\.end).max() ?? 0))")

        report.check(flights.allSatisfy { $0.status == 200 && $0.tokens },
                     "the \(inFlightCount) requests inside authd at SIGTERM completed with 200 and a new pair")
        report.check(termination == .exited(0) && exitSeconds <= 10,
                     "authd exited 0 within 10 s of SIGTERM (\(termination.map { "\($0)" } ?? "still running, SIGKILLed"), after \(seconds(exitSeconds)))")
        let problems = samples.problems
        report.check(problems.isEmpty,
                     "every answer is 2xx, 401/403 as the contract says, or 502/504 in the JSON error shape for a request authd never took (\(problems.count) other)")
        report.problems(problems)
        report.check(!samples.contains { $0.status == 500 }, "no 500")
        report.check(samples.maxLatency <= 11, "no request waited longer than the 10 s shutdown bound + 1 s (max \(seconds(samples.maxLatency)))")

        // A 502 must mean "authd never took it": the rotation or registration did not happen.
        let check = checkRecordedState(stack, results)
        let bad = samples.filter { $0.status == 502 || $0.status == 504 }
        report.info("502/504 answers: \(bad.count) (\(bad.byOperation)); of those, \(check.uncertainSessions) rotations and \(check.uncertainRegistrations) registrations were probed after the restart")
        report.check(check.uncertainCarriedOut == 0 && check.registrationsDone == 0 && check.registrationsReservedOnly == 0,
                     "no 502 for a request authd had taken: none of the 502'd rotations (\(check.uncertainCarriedOut) carried out) or registrations (\(check.registrationsDone + check.registrationsReservedOnly) carried out) had happened")
        report.check(check.failures.isEmpty, "no state lost across the restart (\(check.failures.count) findings)")
        report.problems(check.failures)
        let first = samples.firstSuccess(of: .home, after: up)
        report.check(first.map { $0 <= 1.0 } == true, "the restarted authd serves again (first GET / 200 after \(first.map(seconds) ?? "never"))")
    }

    // MARK: 5. Slow clients

    @Test("5. Slow clients and bodies that never finish are bounded; other clients unaffected")
    func slowClientsAreBounded() throws {
        var report = ChaosReport("5/5: slowloris headers, bodies that never finish, a FastCGI request that never finishes")
        defer { report.print() }
        let stack = try Stack.start(Chaos.environment())
        defer { stack.shutdown() }
        let plans = Array(repeating: ChaosThreadPlan(mix: [.home, .refresh, .home, .login, .me, .register], pause: 0.005), count: 4)
            + [Self.probe]
        let seeds = try plans.map { _ in try chaosSeed(stack, count: 2) }
        let t0 = monotonicNow()
        func now() -> Double { monotonicNow() - t0 }
        // Nothing but the contract's answers for the well-behaved clients: no 5xx at all.
        let load = ChaosLoad(stack: stack, t0: t0, plans: plans, seeds: seeds,
                             policy: ChaosPolicy(allowed5xx: { _, _ in false }))
        pause(0.5)

        let host = "Host: 127.0.0.1:\(stack.port)\r\n"
        // Slowloris: a request head that never ends, one more header line every second.
        let slowloris = try (0..<40).map { _ in try SlowConnection(port: stack.port, now: now()) }
        for c in slowloris { c.send("GET / HTTP/1.1\r\n" + host, now: now()) }
        // A Content-Length larger than the body: 1000 announced, 20 sent, then silence.
        let postHead = "POST /auth/login HTTP/1.1\r\n" + host + "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        let stalled = try (0..<20).map { _ in try SlowConnection(port: stack.port, now: now()) }
        for c in stalled { c.send(postHead + #"{"username":"slowpo"#, now: now()) }
        // A body that keeps coming, one byte every 2 s (observed, not asserted: nginx's
        // client_body_timeout is per read, so only the body size bounds it).
        let trickle = try (0..<3).map { _ in try SlowConnection(port: stack.port, now: now()) }
        for c in trickle { c.send(postHead, now: now()) }
        // Straight to authd's FastCGI socket (what nginx never does: it buffers the whole
        // body first): stdin that never finishes, and params that never finish.
        let fcgiParams: [(String, String)] = [
            ("REQUEST_METHOD", "POST"), ("DOCUMENT_URI", "/auth/login"),
            ("CONTENT_TYPE", "application/json"), ("CONTENT_LENGTH", "100"),
        ]
        let fcgiStdin = try (0..<2).map { _ in try SlowConnection(unixPath: stack.authdSocket, now: now()) }
        for c in fcgiStdin {
            c.send(FastCGIRecord.beginRequest() + FastCGIRecord.params(fcgiParams) + FastCGIRecord.endOfParams
                   + FastCGIRecord.stdin(Array(#"{"username"#.utf8)), now: now())
        }
        let fcgiHead = try SlowConnection(unixPath: stack.authdSocket, now: now())
        fcgiHead.send(FastCGIRecord.beginRequest() + FastCGIRecord.params(fcgiParams), now: now())

        let headerTimeout = try NginxSettings.seconds("client_header_timeout")
        let bodyTimeout = try NginxSettings.seconds("client_body_timeout")
        let window = max(headerTimeout, bodyTimeout) + 4
        let started = now()
        var tick = 0
        while now() - started < window {
            pause(0.25)
            tick += 1
            let t = now()
            for c in slowloris + stalled + trickle + fcgiStdin + [fcgiHead] { c.update(now: t) }
            if tick % 4 == 0 { for c in slowloris { c.send("X-Slow-\(tick): 1\r\n", now: t) } }
            if tick % 8 == 0 { for c in trickle { c.send("x", now: t) } }
        }
        let results = load.stop()
        let end = now()
        let samples = results.flatMap(\.samples)

        report.info(String(format: "timeline (s): load from 0; slow clients opened at %.2f; watched for %.0f s; end %.2f", started, window, end))
        report.info("nginx (deploy/nginx.conf): " + ["client_header_timeout", "client_body_timeout", "send_timeout", "reset_timedout_connection"]
            .map { "\($0) \(NginxSettings.value($0) ?? "unset")" }.joined(separator: ", "))
        func lifetimes(_ cs: [SlowConnection]) -> String {
            let l = cs.compactMap(\.lifetime)
            return l.isEmpty ? "none closed" : String(format: "closed after %.1f-%.1f s", l.min()!, l.max()!)
        }
        report.info("slowloris: \(slowloris.count) connections, \(slowloris.filter { !$0.isOpen }.count) closed by nginx (\(lifetimes(slowloris)))")
        report.check(slowloris.allSatisfy { ($0.lifetime ?? .infinity) <= headerTimeout + 2 },
                     "every slowloris connection was closed within client_header_timeout + 2 s = \(seconds(headerTimeout + 2))")
        let answered408 = stalled.filter { $0.response?.status == 408 && $0.response.map(hasErrorShape) == true }.count
        report.info("bodies that never finish: \(stalled.count) connections, \(stalled.filter { !$0.isOpen }.count) ended (\(lifetimes(stalled))); \(answered408) got 408 in the JSON error shape before the close, the rest a reset")
        report.check(stalled.allSatisfy { ($0.lifetime ?? .infinity) <= bodyTimeout + 2 && ($0.response == nil || $0.response?.status == 408) },
                     "every unfinished body ended within client_body_timeout + 2 s = \(seconds(bodyTimeout + 2)), with a 408 or a reset (never authd's answer)")
        report.info("trickled bodies (a byte every 2 s): \(trickle.filter(\.isOpen).count) of \(trickle.count) still open after \(Int(window)) s (bounded only by 16 KiB x client_body_timeout)")

        report.traffic(samples, label: "other clients:")
        let home = samples.filter { $0.op == .home }
        report.info("other clients: max latency \(seconds(samples.maxLatency)); longest time without a GET / 200: \(seconds(home.longestGap(from: started, to: started + window)))")
        let problems = samples.problems
        report.check(problems.isEmpty && samples.allSatisfy(\.succeeded), "other clients got only their normal answers (\(problems.count) other)")
        report.problems(problems)
        report.check(samples.maxLatency <= 2, "other clients waited at most 2 s (max \(seconds(samples.maxLatency)))")

        // authd itself: does a FastCGI request that never finishes pin a worker?
        let fcgi = fcgiStdin + [fcgiHead]
        let fcgiEnds = fcgi.map { $0.lifetime.map { String(format: "%.1f s", $0) } ?? "open" }.joined(separator: ", ")
        report.info("raw FastCGI to authd: \(fcgiStdin.count) with stdin never finished, 1 with params never finished: \(fcgi.filter { !$0.isOpen }.count) closed by authd (\(fcgiEnds))")
        report.check(fcgi.allSatisfy { !$0.isOpen },
                     "authd gave up on FastCGI requests that never finish within \(Int(window)) s (workers not pinned)")
        // ...and what a pinned worker does to a graceful stop.
        let (termination, exitSeconds) = stack.terminateAuthd(timeout: 10)
        report.check(termination == .exited(0) && exitSeconds <= 10,
                     "with those connections still open, SIGTERM: authd exited 0 within 10 s (\(termination.map { "\($0)" } ?? "still running, SIGKILLed") after \(seconds(exitSeconds)))")
    }
}
