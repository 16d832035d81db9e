import Foundation
import Testing

/// Revocation at memory speed: a session ended at one authd refuses its access tokens at
/// every other, without a Redis read per request (`RevocationFeed`). Each test talks
/// FastCGI straight to each instance's socket, so it knows which one answers.
@Suite("Revocations across instances (own stacks)")
struct RevocationTests {
    /// `method path` at instance `n`, with an access token and a JSON body.
    static func ask(_ stack: Stack, _ n: Int, _ method: String, _ path: String, bearer: String? = nil,
                    json: String? = nil) throws -> HTTPResponse {
        var params = [("REQUEST_METHOD", method), ("DOCUMENT_URI", path), ("REQUEST_URI", path), ("REMOTE_ADDR", "127.0.0.1")]
        if let bearer { params.append(("HTTP_AUTHORIZATION", "Bearer " + bearer)) }
        let body = Array((json ?? "").utf8)
        if json != nil { params += [("CONTENT_TYPE", "application/json"), ("CONTENT_LENGTH", String(body.count))] }
        return try FastCGIClient(socketPath: stack.authdSocket(n), timeout: 5).request(params: params, stdin: body)
    }

    /// Polls `verify` at instance `n` until it refuses the token; the seconds it took.
    static func secondsUntilRefused(_ stack: Stack, _ n: Int, _ token: String, limit: Double = 5) throws -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < limit {
            if try ask(stack, n, "GET", "/auth/verify", bearer: token).status == 401 { return Date().timeIntervalSince(start) }
        }
        return nil
    }

    @Test func aLogoutAtOneInstanceRefusesTheTokenAtTheOtherWithin100ms() throws {
        let stack = try Stack.start(["AUTHD_INSTANCES": "2"])
        defer { stack.shutdown() }
        var worst = 0.0
        for round in 0..<5 {
            let user = try stack.newUser("revoke")
            #expect(try Self.ask(stack, 2, "GET", "/auth/verify", bearer: user.tokens.access).status == 204)
            #expect(try Self.ask(stack, 2, "GET", "/", bearer: user.tokens.access).status == 200)
            let logout = try Self.ask(stack, 1, "DELETE", "/auth/logout", json: #"{"refreshToken":"\#(user.tokens.refresh)"}"#)
            #expect(logout.status == 204, "round \(round): \(logout)")
            let seconds = try #require(try Self.secondsUntilRefused(stack, 2, user.tokens.access), "round \(round): never refused")
            worst = max(worst, seconds)
            expectSessionEnded(try Self.ask(stack, 2, "GET", "/", bearer: user.tokens.access))
        }
        print("revocation: refused at the other instance at most \(String(format: "%.1f", worst * 1000)) ms after the logout's answer")
        #expect(worst < 0.1, "slowest: \(worst) s")
    }

    /// Logout-all, a password change and a deletion at instance 1: instance 2 refuses the
    /// sessions they ended (and only those).
    @Test func everyWayOfEndingSessionsReachesTheOtherInstance() throws {
        let stack = try Stack.start(["AUTHD_INSTANCES": "2"])
        defer { stack.shutdown() }
        let a = try stack.newUser("revall")
        let a2 = try stack.newSession(a)
        #expect(try Self.ask(stack, 1, "POST", "/auth/logout-all", bearer: a.tokens.access).status == 204)
        for token in [a.tokens.access, a2.access] { #expect(try Self.secondsUntilRefused(stack, 2, token) != nil) }

        let b = try stack.newUser("revpw")
        let b2 = try stack.newSession(b)
        let change = try Self.ask(stack, 1, "POST", "/auth/password", bearer: b.tokens.access,
                                  json: #"{"currentPassword":"\#(b.password)","newPassword":"an entirely new one"}"#)
        #expect(change.status == 204, "\(change)")
        #expect(try Self.secondsUntilRefused(stack, 2, b2.access) != nil)
        #expect(try Self.ask(stack, 2, "GET", "/auth/verify", bearer: b.tokens.access).status == 204)

        let c = try stack.newUser("revdel")
        let deleted = try Self.ask(stack, 1, "DELETE", "/auth/account", bearer: c.tokens.access, json: #"{"password":"\#(c.password)"}"#)
        #expect(deleted.status == 204, "\(deleted)")
        #expect(try Self.secondsUntilRefused(stack, 2, c.tokens.access) != nil)
    }

    /// Redis goes away and comes back (from its append-only file) while a logout happens:
    /// the other instance was not subscribed when it was announced, and learns of it from
    /// the log when it subscribes again.
    @Test func aLogoutDuringARedisRestartIsStillRefusedOnceRedisIsBack() throws {
        let stack = try Stack.start(["AUTHD_INSTANCES": "2"])
        defer { stack.shutdown() }
        let user = try stack.newUser("revrestart")
        #expect(try Self.ask(stack, 2, "GET", "/auth/verify", bearer: user.tokens.access).status == 204)
        stack.killRedis()
        try stack.startRedis(keepData: true)
        // At once, before instance 2's feed is back (it retries within a second).
        var logout: HTTPResponse?
        for _ in 0..<200 {
            logout = try Self.ask(stack, 1, "DELETE", "/auth/logout", json: #"{"refreshToken":"\#(user.tokens.refresh)"}"#)
            if logout?.status == 204 { break }
            usleep(10_000)
        }
        #expect(logout?.status == 204, "\(String(describing: logout))")
        let seconds = try Self.secondsUntilRefused(stack, 2, user.tokens.access)
        #expect(seconds != nil, "instance 2 never refused the token of the session ended during the restart")
        print("revocation after a Redis restart: refused at the other instance \(String(format: "%.0f", (seconds ?? 0) * 1000)) ms after the logout")
        // And an authd started afterwards knows of it from the start.
        _ = stack.stopAuthd(instance: 2)
        try stack.startAuthd(instance: 2)
        expectSessionEnded(try Self.ask(stack, 2, "GET", "/", bearer: user.tokens.access))
    }

    /// While Redis is away the feed waits between attempts (50 ms doubling to 1 s) and says
    /// so once: an outage costs neither CPU nor a log line a retry.
    @Test func aRedisOutageCostsTheFeedNoCPUAndOneLogLine() throws {
        let stack = try Stack.start(Stack.oneInstance)
        defer { stack.shutdown() }
        let pid = try #require(stack.authdPID)
        func cpuSeconds() throws -> Double {
            // utime and stime, fields 14 and 15 of /proc/PID/stat, in clock ticks.
            let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
            let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
            return (Double(fields[11])! + Double(fields[12])!) / Double(sysconf(Int32(_SC_CLK_TCK)))
        }
        stack.stopRedis()
        let before = try cpuSeconds()
        sleep(4)
        let used = try cpuSeconds() - before
        try stack.startRedis()
        let user = try stack.retryingBusy { try stack.register(uniqueName("back"), validPassword) }
        #expect(user.status == 201 || user.status == 503)
        print("revocation feed during a 4 s Redis outage: \(used) s of authd CPU")
        #expect(used < 1.0, "authd used \(used) s of CPU in 4 s without Redis")
        let log = try String(contentsOfFile: stack.authdLogPath, encoding: .utf8)
        #expect(log.components(separatedBy: "revocation feed: lost Redis").count - 1 == 1, "\(log.suffix(2000))")
    }
}
