import Foundation
import Testing

/// Stacks with a small MAX_SESSIONS_PER_USER.
enum SessionCapStacks {
    private static let three = SharedStack(["MAX_SESSIONS_PER_USER": "3"])
    static func capOfThree() throws -> Stack { try three.get() }
}

@Suite("MAX_SESSIONS_PER_USER=3")
struct SessionCapTests {
    let stack: Stack
    init() throws { stack = try SessionCapStacks.capOfThree() }

    /// The Redis index of a user's sessions, as sids in its order.
    func index(of user: User) throws -> [String] {
        let key = "auth:sessions:{\(try userID(of: user.tokens.access))}"
        return try stack.redisCLI("ZRANGE", key, "0", "-1").split(separator: "\n").map { String($0.split(separator: ":").last!) }
    }

    @Test func aFourthLoginEndsTheLeastRecentlyUsedSession() throws {
        let user = try stack.newUser("cap")  // a
        let a = try sessionID(of: user.tokens.access)
        waitForSecondAfter(now)
        let bPair = try stack.newSession(user)
        waitForSecondAfter(now)
        let cPair = try stack.newSession(user)
        waitForSecondAfter(now)
        // a refreshes: b is now the least recently used.
        let a2 = try stack.rotate(user.tokens.refresh)
        let (b, c) = (try sessionID(of: bPair.access), try sessionID(of: cPair.access))
        #expect(try stack.listSessions(a2.access).map(\.id) == [a, c, b])
        let dPair = try stack.newSession(user)
        let d = try sessionID(of: dPair.access)
        let list = try stack.listSessions(a2.access)
        #expect(list.map(\.id) == [d, a, c], "\(list)")
        expectError(try stack.refresh(bPair.refresh), status: 403, message: "Refresh token has been revoked")
        #expect(try stack.redisKeys(containing: b).isEmpty, "b's session key outlived its eviction")
        #expect(try index(of: user) == [d, a, c])
        // The others go on; b's access token is refused with its session (revocations).
        _ = try stack.rotate(a2.refresh)
        _ = try stack.rotate(cPair.refresh)
        let d2 = try stack.rotate(dPair.refresh)
        try expectSessionEndedSoon { try stack.call("GET", "/auth/sessions", bearer: bPair.access) }
        let list2 = try stack.listSessions(d2.access)
        #expect(list2.count == 3 && !list2.contains { $0.id == b }, "\(list2)")
        let metrics = try stack.get("/metrics").text
        let evicted = metrics.split(separator: "\n").first { $0.hasPrefix("authd_sessions_evicted_total ") }
        #expect(evicted.flatMap { Int($0.split(separator: " ")[1]) }.map { $0 >= 1 } == true, "\(evicted ?? "none")")
    }

    @Test func manyLoginsKeepTheCapAndTheNewestSessions() throws {
        let user = try stack.newUser("capmany")
        var pairs = [user.tokens]
        for _ in 0..<9 { pairs.append(try stack.newSession(user)) }
        let list = try stack.listSessions(pairs.last!.access)
        #expect(list.count == 3, "\(list)")
        // Logins within one second tie on both times and go by id: where the newest one
        // stands depends on its id, but it is there.
        #expect(list.filter(\.current).map(\.id) == [try sessionID(of: pairs.last!.access)], "\(list)")
        #expect(try index(of: user).count == 3)
        // Whatever else went, the newest login's session works.
        _ = try stack.rotate(pairs.last!.refresh)
        // Parallel logins: the cap holds too (each script runs alone in Redis).
        _ = concurrently(8) { _ in try? stack.login(user.username, user.password) }
        let fresh = try stack.newSession(user)
        #expect(try stack.listSessions(fresh.access).count == 3)
        #expect(try index(of: user).count == 3)
    }

    @Test func checkConfigShowsTheCap() throws {
        let result = try runCommand(Stack.authdBinary, ["check-config"], environment: stack.environment, directory: stack.dir, timeout: 10)
        #expect(result.termination == .exited(0) && result.output.contains("MAX_SESSIONS_PER_USER=3"), "\(result.output)")
    }

    @Test(arguments: ["0", "10001", "-3", "lots"])
    func aBadCapStopsStartUpNamingIt(value: String) throws {
        let dir = try Stack.makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var environment = Stack.baseEnvironment(dir: dir)
        environment["MAX_SESSIONS_PER_USER"] = value
        let result = try runCommand(Stack.authdBinary, ["check-config"], environment: environment, directory: dir, timeout: 10)
        #expect(result.termination == .exited(1) && result.output.contains("MAX_SESSIONS_PER_USER"), "\(value): \(result.output)")
    }
}

/// Session indexes written by earlier versions (a Redis set of ids) are taken over: the
/// first script that touches one turns it into the sorted index, sessions kept.
@Suite("Session index of an earlier version")
struct LegacySessionIndexTests {
    let stack: Stack
    init() throws { stack = try SessionCapStacks.capOfThree() }

    /// Turns the user's index back into the earlier layout: a set of the same ids, plus
    /// `extra` more sessions written as the earlier version wrote them, last used 1,000 s
    /// ago and more (older than every real one, newest first), and with `stale` the id of
    /// a session that is gone.
    func makeLegacy(_ user: User, extra: Int = 0, stale: Bool = false) throws -> (key: String, extra: [String]) {
        let uid = try userID(of: user.tokens.access)
        let key = "auth:sessions:{\(uid)}"
        let ids = try stack.redisCLI("ZRANGE", key, "0", "-1").split(separator: "\n").map { String($0.split(separator: ":").last!) }
        var made: [String] = []
        for i in 0..<extra {
            let sid = randomSessionID()
            let used = String(now - 1000 - i * 10)
            try stack.redisCLI("HSET", "auth:session:{\(uid)}:\(sid)", "jti", "legacy", "iat", used, "exp", String(now + 3600),
                               "createdAt", used, "lastUsedAt", used, "ua", "old-client", "ip", "127.0.0.1")
            try stack.redisCLI("EXPIRE", "auth:session:{\(uid)}:\(sid)", "3600")
            made.append(sid)
        }
        try stack.redisCLI("DEL", key)
        try stack.redisCLI(["SADD", key] + ids + made + (stale ? [randomSessionID()] : []))
        try stack.redisCLI("EXPIRE", key, "3600")
        #expect(try stack.redisCLI("TYPE", key) == "set")
        return (key, made)
    }

    @Test func theListTakesItOverInOrder() throws {
        let user = try stack.newUser("legacylist")
        waitForSecondAfter(now)
        let second = try stack.newSession(user)
        let (key, _) = try makeLegacy(user, stale: true)
        let list = try stack.listSessions(user.tokens.access)
        #expect(list.map(\.id) == [try sessionID(of: second.access), try sessionID(of: user.tokens.access)], "\(list)")
        #expect(try stack.redisCLI("TYPE", key) == "zset")
        #expect(try stack.redisCLI("ZCARD", key) == "2", "the stale id was kept")
        let ttl = Int(try stack.redisCLI("TTL", key)) ?? 0
        #expect(ttl > 3000 && ttl <= 3600, "TTL \(ttl)")
    }

    @Test func aLoginTakesItOverAndAppliesTheCap() throws {
        let user = try stack.newUser("legacycap")
        let (key, extra) = try makeLegacy(user, extra: 3)  // 4 sessions, over the cap of 3
        waitForSecondAfter(now)
        let next = try stack.newSession(user)
        // Five sessions by then: the two least recently used (the oldest legacy ones) are gone.
        let list = try stack.listSessions(next.access)
        #expect(list.map(\.id) == [try sessionID(of: next.access), try sessionID(of: user.tokens.access), extra[0]], "\(list)")
        #expect(try stack.redisCLI("TYPE", key) == "zset")
        for sid in extra.dropFirst() { #expect(try stack.redisKeys(containing: sid).isEmpty, "\(sid) not ended") }
        _ = try stack.rotate(user.tokens.refresh)
    }

    @Test func logoutAllEndsEverySessionOfIt() throws {
        let user = try stack.newUser("legacyall")
        let other = try stack.newSession(user)
        let (key, extra) = try makeLegacy(user, extra: 1)
        expectNoContent(try stack.logoutAll(user.tokens.access))
        expectError(try stack.refresh(user.tokens.refresh), status: 403)
        expectError(try stack.refresh(other.refresh), status: 403)
        #expect(try stack.redisKeys(containing: extra[0]).isEmpty)
        #expect(try stack.redisCLI("EXISTS", key) == "0")
    }

    @Test func aPasswordChangeEndsTheOtherSessionsOfIt() throws {
        let user = try stack.newUser("legacypw")
        let other = try stack.newSession(user)
        let (_, extra) = try makeLegacy(user, extra: 1)
        try stack.expectPasswordChanged(user.tokens.access, current: user.password, new: "another good password")
        expectError(try stack.refresh(other.refresh), status: 403)
        #expect(try stack.redisKeys(containing: extra[0]).isEmpty)
        #expect(try stack.listSessions(user.tokens.access).map(\.id) == [try sessionID(of: user.tokens.access)])
        _ = try stack.rotate(user.tokens.refresh)
    }

    @Test func aRefreshAndALogoutTakeItOver() throws {
        let user = try stack.newUser("legacyrot")
        let other = try stack.newSession(user)
        let (key, _) = try makeLegacy(user)
        waitForSecondAfter(now)
        let next = try stack.rotate(user.tokens.refresh)
        #expect(try stack.redisCLI("TYPE", key) == "zset")
        #expect(try stack.listSessions(next.access).map(\.id).first == (try sessionID(of: next.access)))
        _ = try makeLegacy(user)
        expectNoContent(try stack.logout(other.refresh))
        #expect(try stack.redisCLI("TYPE", key) == "zset")
        #expect(try stack.listSessions(next.access).map(\.id) == [try sessionID(of: next.access)])
    }
}

/// 22 random characters of the base64url alphabet: the shape of a session id.
func randomSessionID() -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    return String((0..<22).map { _ in alphabet.randomElement()! })
}
