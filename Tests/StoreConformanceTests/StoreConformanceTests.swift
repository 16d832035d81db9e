import AuthCore
import AuthRedis
import AuthTesting
import Testing

/// The stores every test body runs against: the in-memory double the handler tests use,
/// and `RedisStore` on a real redis-server (the reference: its Lua scripts).
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory, redis
    var testDescription: String { rawValue }
}

/// A fresh store, and a second handle onto the same data: for Redis another connection,
/// for the double the same object (it is not thread-safe, so the tests stay sequential).
struct Fixture {
    let store: any AuthStore
    let other: any AuthStore
    /// Unix seconds, before any session's expiry. Expiry itself is not tested here: Redis
    /// expires keys in real time, the double by its `TestClock`; only the shared contract is.
    let now: Int64

    init(_ kind: StoreKind) throws {
        let clock = TestClock()
        now = clock.now()
        switch kind {
        case .memory:
            let memory = MemoryStore(clock: clock)
            store = memory
            other = memory
        case .redis:
            let server = try RedisServer.shared.get()
            store = server.store()
            other = server.store()
        }
    }

    /// A registered user with a fresh random id and name.
    func newUser(hash: String = "hash-1") throws -> UserRecord {
        let user = UserRecord(id: UserID(fresh("u")), username: fresh("name"), passwordHash: hash, createdAt: now)
        #expect(try store.reserveUsername(user.username, for: user.id, ttl: 60))
        #expect(try store.createUser(user))
        return user
    }

    func token(_ jti: String, at time: Int64? = nil) -> RefreshTokenState {
        RefreshTokenState(jti: jti, issuedAt: time ?? now, expiresAt: (time ?? now) + ttl)
    }

    /// Starts session `sid` of `user` at `now + offset` with refresh token `sid-0`.
    @discardableResult
    func start(_ sid: String, of user: UserRecord, at offset: Int64 = 0, cap: Int = 100,
               meta: SessionMeta = SessionMeta(userAgent: "ua", address: "192.0.2.1")) throws -> SessionStart {
        try store.createSession(SessionID(sid), of: user.id, token: token(sid + "-0", at: now + offset), ttl: ttl,
                                meta: meta, now: now + offset, passwordHash: user.passwordHash, cap: cap)
    }

    func rotate(_ sid: String, of user: UserRecord, presented: String, next: String, at offset: Int64,
                grace: Int64 = 10) throws -> RotationOutcome {
        try store.rotate(SessionID(sid), of: user.id, presented: presented, next: token(next, at: now + offset),
                         ttl: ttl, grace: grace, meta: SessionMeta(userAgent: "ua-" + next, address: "192.0.2.2"),
                         now: now + offset)
    }

    /// The ids of the whole list, walked in pages of `limit`.
    func listed(_ user: UserRecord, limit: Int = 100) throws -> [String] {
        var ids: [String] = []
        var after: SessionPosition?
        repeat {
            let page = try store.sessions(of: user.id, after: after, limit: limit)
            #expect(page.sessions.count <= limit)
            ids += page.sessions.map(\.id.rawValue)
            after = page.next
        } while after != nil
        return ids
    }

    func exists(_ sid: String, of user: UserRecord) throws -> Bool {
        try store.sessionExists(SessionID(sid), of: user.id)
    }

    /// Which of `sids` the store has reported as ended (the revocation log: for Redis the
    /// sorted set `auth:revocations` that the scripts write as they publish).
    func revoked(_ sids: [String]) throws -> Set<String> {
        if let memory = store as? MemoryStore { return Set(memory.revokedLog).intersection(sids) }
        let log = try RedisServer.shared.get().command(["ZRANGE", "auth:revocations", "0", "-1"])
        return Set(log).intersection(sids)
    }

    let ttl: Int64 = 3600
}

/// A random base64url-safe id, so that tests sharing one redis-server never meet.
func fresh(_ prefix: String) -> String {
    prefix + "-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
}

@Suite struct StoreConformanceTests {
    // MARK: Revocations

    /// Every way a session ends reports it, and only the sessions that ended: their access
    /// tokens are refused by every authd from then on.
    @Test(arguments: StoreKind.allCases)
    func everyEndedSessionIsReported(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        func sids(_ n: Int) -> [String] { (0..<n).map { _ in fresh("s") } }
        // Logout of one; logout-all.
        let a = try f.newUser()
        let (a1, a2, a3) = (fresh("s"), fresh("s"), fresh("s"))
        for sid in [a1, a2, a3] { try f.start(sid, of: a) }
        #expect(try f.store.endSession(SessionID(a1), of: a.id))
        #expect(try f.revoked([a1, a2, a3]) == [a1])
        try f.store.endAllSessions(of: a.id)
        #expect(try f.revoked([a1, a2, a3]) == [a1, a2, a3])
        // A replay.
        let b = try f.newUser()
        let b1 = fresh("s")
        try f.start(b1, of: b)
        _ = try f.rotate(b1, of: b, presented: b1 + "-0", next: b1 + "-1", at: 1)
        #expect(try f.revoked([b1]).isEmpty)
        #expect(try f.rotate(b1, of: b, presented: b1 + "-0", next: b1 + "-2", at: 30, grace: 0) == .replayed)
        #expect(try f.revoked([b1]) == [b1])
        // The cap.
        let c = try f.newUser()
        let (c1, c2) = (fresh("s"), fresh("s"))
        try f.start(c1, of: c)
        #expect(try f.start(c2, of: c, at: 1, cap: 1) == .started(evicted: 1))
        #expect(try f.revoked([c1, c2]) == [c1])
        // A password change: the others; a deletion: all.
        let d = try f.newUser()
        let ds = sids(3)
        for sid in ds { try f.start(sid, of: d) }
        #expect(try f.store.changePassword(of: d.id, from: d.passwordHash, to: "hash-2", keeping: SessionID(ds[0])))
        #expect(try f.revoked(ds) == Set(ds.dropFirst()))
        let e = try f.newUser()
        let es = sids(2)
        for sid in es { try f.start(sid, of: e) }
        #expect(try f.store.deleteUser(e))
        #expect(try f.revoked(es) == Set(es))
        // Ending what does not exist reports nothing.
        let ghost = fresh("s")
        #expect(try !f.store.endSession(SessionID(ghost), of: e.id))
        #expect(try f.revoked([ghost]).isEmpty)
    }

    // MARK: Usernames and users

    /// Two handles, one after the other: the double is not thread-safe, so a race of truly
    /// concurrent reservations stays in IntegrationTests (30 parallel registrations).
    @Test(arguments: StoreKind.allCases)
    func oneOfTwoReservationsOfANameWins(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        let name = fresh("name")
        let a = UserID(fresh("u")), b = UserID(fresh("u"))
        #expect(try f.store.reserveUsername(name, for: a, ttl: 60))
        #expect(try !f.other.reserveUsername(name, for: b, ttl: 60))
        #expect(try !f.other.createUser(UserRecord(id: b, username: name, passwordHash: "h", createdAt: f.now)))
        #expect(try f.store.createUser(UserRecord(id: a, username: name, passwordHash: "h", createdAt: f.now)))
        // Taken for good now, by a user that exists.
        #expect(try !f.other.reserveUsername(name, for: b, ttl: 60))
        #expect(try f.other.user(named: name)?.id == a)
    }

    @Test(arguments: StoreKind.allCases)
    func aReservedUserIsInvisibleUntilCreated(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        let user = UserRecord(id: UserID(fresh("u")), username: fresh("name"), passwordHash: "h", createdAt: f.now)
        #expect(try f.store.reserveUsername(user.username, for: user.id, ttl: 60))
        #expect(try f.store.user(named: user.username) == nil)
        #expect(try f.store.user(id: user.id) == nil)
        #expect(try f.store.createUser(user))
        #expect(try f.store.user(named: user.username) == user)
        #expect(try f.store.user(id: user.id) == user)
        #expect(try f.store.user(named: fresh("name")) == nil)
        #expect(try f.store.user(id: UserID(fresh("u"))) == nil)
    }

    @Test(arguments: StoreKind.allCases)
    func releasingAReservationFreesTheName(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        let name = fresh("name")
        let a = UserID(fresh("u")), b = UserID(fresh("u"))
        #expect(try f.store.reserveUsername(name, for: a, ttl: 60))
        // Another id's release leaves it alone.
        try f.store.releaseUsername(name, for: b)
        #expect(try !f.store.reserveUsername(name, for: b, ttl: 60))
        try f.store.releaseUsername(name, for: a)
        #expect(try f.store.reserveUsername(name, for: b, ttl: 60))
        #expect(try !f.store.createUser(UserRecord(id: a, username: name, passwordHash: "h", createdAt: f.now)))
    }

    @Test(arguments: StoreKind.allCases)
    func releasingACreatedUserUndoesTheRegistration(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        let user = try f.newUser()
        try f.start("s1", of: user)
        try f.store.releaseUsername(user.username, for: user.id)
        #expect(try f.store.user(named: user.username) == nil)
        #expect(try f.store.user(id: user.id) == nil)
        #expect(try !f.exists("s1", of: user))
        #expect(try f.listed(user).isEmpty)
        #expect(try f.store.reserveUsername(user.username, for: UserID(fresh("u")), ttl: 60))
    }

    // MARK: Sessions

    @Test(arguments: StoreKind.allCases)
    func aSessionStartsOnlyOnTheCurrentHash(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        let user = try f.newUser(hash: "old")
        #expect(try f.start("s1", of: user) == .started(evicted: 0))
        #expect(try f.exists("s1", of: user))
        var stale = user
        stale.passwordHash = "other"
        #expect(try f.start("s2", of: stale) == .refused)
        #expect(try !f.exists("s2", of: user))
        #expect(try f.store.changePassword(of: user.id, from: "old", to: "new", keeping: SessionID("s1")))
        #expect(try f.start("s3", of: user) == .refused)  // checked against "old"
        stale.passwordHash = "new"
        #expect(try f.start("s4", of: stale) == .started(evicted: 0))
        #expect(try f.listed(user).sorted() == ["s1", "s4"])
        // No such user.
        let nobody = UserRecord(id: UserID(fresh("u")), username: fresh("name"), passwordHash: "old", createdAt: f.now)
        #expect(try f.start("s5", of: nobody) == .refused)
        #expect(try !f.exists("s5", of: nobody))
    }

    @Test(arguments: StoreKind.allCases)
    func rotationRetryAndReplay(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        let user = try f.newUser()
        try f.start("s1", of: user)
        #expect(try f.rotate("s1", of: user, presented: "s1-0", next: "s1-1", at: 5) == .rotated(username: user.username))
        // The parent again within the grace window: the current token, untouched.
        #expect(try f.rotate("s1", of: user, presented: "s1-0", next: "s1-x", at: 15, grace: 10)
                == .retry(current: f.token("s1-1", at: f.now + 5), username: user.username))
        #expect(try f.rotate("s1", of: user, presented: "s1-1", next: "s1-2", at: 20) == .rotated(username: user.username))
        // The parent after the window is a replay: the session ends.
        #expect(try f.rotate("s1", of: user, presented: "s1-1", next: "s1-y", at: 31, grace: 10) == .replayed)
        #expect(try !f.exists("s1", of: user))
        #expect(try f.rotate("s1", of: user, presented: "s1-2", next: "s1-3", at: 32) == .unknownSession)
        #expect(try f.listed(user).isEmpty)
        #expect(try f.rotate("nope", of: user, presented: "nope-0", next: "nope-1", at: 1) == .unknownSession)
    }

    @Test(arguments: StoreKind.allCases)
    func anOlderTokenOrNoGraceIsAReplay(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        let user = try f.newUser()
        try f.start("s1", of: user)
        try f.start("s2", of: user)
        #expect(try f.rotate("s1", of: user, presented: "s1-0", next: "s1-1", at: 1) == .rotated(username: user.username))
        #expect(try f.rotate("s1", of: user, presented: "s1-1", next: "s1-2", at: 2) == .rotated(username: user.username))
        #expect(try f.rotate("s1", of: user, presented: "s1-0", next: "s1-x", at: 3) == .replayed)  // a grandparent
        #expect(try f.rotate("s2", of: user, presented: "s2-0", next: "s2-1", at: 1) == .rotated(username: user.username))
        #expect(try f.rotate("s2", of: user, presented: "s2-0", next: "s2-x", at: 1, grace: 0) == .replayed)
        #expect(try f.listed(user).isEmpty)
    }

    @Test(arguments: StoreKind.allCases)
    func endingSessions(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        let user = try f.newUser(), stranger = try f.newUser()
        for sid in ["s1", "s2", "s3"] { try f.start(sid, of: user) }
        try f.start("t1", of: stranger)
        #expect(try !f.store.endSession(SessionID("t1"), of: user.id))  // another user's
        #expect(try f.exists("t1", of: stranger))
        #expect(try !f.exists("t1", of: user))
        #expect(try f.store.endSession(SessionID("s2"), of: user.id))
        #expect(try !f.store.endSession(SessionID("s2"), of: user.id))
        #expect(try !f.exists("s2", of: user))
        #expect(try f.listed(user).sorted() == ["s1", "s3"])
        try f.store.endAllSessions(of: user.id)
        #expect(try f.listed(user).isEmpty)
        #expect(try !f.exists("s1", of: user) && !f.exists("s3", of: user))
        #expect(try f.listed(stranger) == ["t1"])
        try f.store.endAllSessions(of: UserID(fresh("u")))  // nothing to end
    }

    @Test(arguments: StoreKind.allCases)
    func theListIsMostRecentlyUsedFirstInPages(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        let user = try f.newUser()
        try f.start("b", of: user, at: 0, meta: SessionMeta(userAgent: "agent b", address: "2001:db8::1"))
        try f.start("a", of: user, at: 0)
        try f.start("c", of: user, at: 1)
        try f.start("d", of: user, at: 2)
        try f.start("e", of: user, at: 3)
        #expect(try f.rotate("b", of: user, presented: "b-0", next: "b-1", at: 4) == .rotated(username: user.username))
        // lastUsedAt descending, then createdAt descending, then id ascending.
        let order = ["b", "e", "d", "c", "a"]
        let all = try f.store.sessions(of: user.id, after: nil, limit: 10)
        #expect(all.sessions.map(\.id.rawValue) == order)
        #expect(all.next == nil)
        #expect(all.sessions.map(\.lastUsedAt) == [4, 3, 2, 1, 0].map { f.now + $0 })
        #expect(all.sessions.map(\.createdAt) == [0, 3, 2, 1, 0].map { f.now + $0 })
        #expect(all.sessions.first?.meta == SessionMeta(userAgent: "ua-b-1", address: "192.0.2.2"))
        #expect(all.sessions.last?.meta == SessionMeta(userAgent: "ua", address: "192.0.2.1"))
        let first = try f.store.sessions(of: user.id, after: nil, limit: 2)
        #expect(first.sessions.map(\.id.rawValue) == ["b", "e"])
        #expect(first.next == first.sessions.last?.position)
        for limit in 1...5 { #expect(try f.listed(user, limit: limit) == order) }
        // Exactly `limit` left: the last page says so.
        let tail = try f.store.sessions(of: user.id, after: all.sessions[2].position, limit: 2)
        #expect(tail.sessions.map(\.id.rawValue) == ["c", "a"])
        #expect(tail.next == nil)
        let none = try f.store.sessions(of: user.id, after: all.sessions[4].position, limit: 2)
        #expect(none == SessionPage(sessions: [], next: nil))
        #expect(try f.store.sessions(of: UserID(fresh("u")), after: nil, limit: 2) == SessionPage(sessions: [], next: nil))
    }

    @Test(arguments: StoreKind.allCases)
    func theCapEndsTheLeastRecentlyUsed(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        let user = try f.newUser()
        #expect(try f.start("s1", of: user, at: 0, cap: 3) == .started(evicted: 0))
        #expect(try f.start("s2", of: user, at: 1, cap: 3) == .started(evicted: 0))
        #expect(try f.start("s3", of: user, at: 2, cap: 3) == .started(evicted: 0))
        #expect(try f.rotate("s1", of: user, presented: "s1-0", next: "s1-1", at: 3) == .rotated(username: user.username))
        #expect(try f.start("s4", of: user, at: 4, cap: 3) == .started(evicted: 1))
        #expect(try f.listed(user) == ["s4", "s1", "s3"])
        #expect(try !f.exists("s2", of: user))
        #expect(try f.rotate("s2", of: user, presented: "s2-0", next: "s2-1", at: 5) == .unknownSession)
        // A lower cap ends several at once, never the new session, even when it sorts last.
        #expect(try f.start("s5", of: user, at: -10, cap: 2) == .started(evicted: 2))
        #expect(try f.listed(user) == ["s4", "s5"])
        #expect(try f.start("s6", of: user, at: 6, cap: 1) == .started(evicted: 2))
        #expect(try f.listed(user) == ["s6"])
    }

    @Test(arguments: StoreKind.allCases)
    func changingThePasswordKeepsOneSession(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        let user = try f.newUser(hash: "old")
        for (i, sid) in ["s1", "s2", "s3"].enumerated() { try f.start(sid, of: user, at: Int64(i)) }
        #expect(try !f.store.changePassword(of: user.id, from: "wrong", to: "new", keeping: SessionID("s2")))
        #expect(try f.listed(user) == ["s3", "s2", "s1"])
        #expect(try f.store.changePassword(of: user.id, from: "old", to: "new", keeping: SessionID("s2")))
        #expect(try f.listed(user) == ["s2"])
        #expect(try !f.exists("s1", of: user) && f.exists("s2", of: user) && !f.exists("s3", of: user))
        #expect(try f.store.user(id: user.id)?.passwordHash == "new")
        #expect(try f.store.user(named: user.username)?.passwordHash == "new")
        #expect(try !f.store.changePassword(of: user.id, from: "old", to: "newer", keeping: SessionID("s2")))
        #expect(try !f.store.changePassword(of: UserID(fresh("u")), from: "old", to: "new", keeping: SessionID("s2")))
        // The kept session rotates on.
        #expect(try f.rotate("s2", of: user, presented: "s2-0", next: "s2-1", at: 9) == .rotated(username: user.username))
    }

    @Test(arguments: StoreKind.allCases)
    func deletingAUser(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        let user = try f.newUser(hash: "h")
        try f.start("s1", of: user)
        try f.start("s2", of: user)
        var stale = user
        stale.passwordHash = "changed"
        #expect(try !f.store.deleteUser(stale))
        #expect(try f.store.user(id: user.id) == user)
        #expect(try f.listed(user).count == 2)
        #expect(try f.store.deleteUser(user))
        #expect(try f.store.user(id: user.id) == nil)
        #expect(try f.store.user(named: user.username) == nil)
        #expect(try f.listed(user).isEmpty)
        #expect(try !f.exists("s1", of: user))
        #expect(try !f.store.deleteUser(user))
        // The name is free again.
        let next = UserRecord(id: UserID(fresh("u")), username: user.username, passwordHash: "h2", createdAt: f.now)
        #expect(try f.store.reserveUsername(next.username, for: next.id, ttl: 60))
        #expect(try f.store.createUser(next))
        #expect(try f.store.user(named: user.username) == next)
    }

    // MARK: Login attempts

    @Test(arguments: StoreKind.allCases)
    func attemptsAreLimitedPerWindow(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        for key in [ThrottleKey.username(fresh("name")), .address(fresh("192.0.2"))] {
            for _ in 0..<3 { #expect(try f.store.takeAttempt(key, limit: 3, window: 60) == nil) }
            // Refused, not counted; the wait is what is left of the window. (Redis counts it
            // down in real time, the double by its clock: only the range is common.)
            let wait = try #require(try f.store.takeAttempt(key, limit: 3, window: 60))
            #expect((1...60).contains(wait))
            #expect(try f.store.takeAttempt(key, limit: 3, window: 60) != nil)
            // A larger limit on the same window admits exactly the difference: refusals were not counted.
            #expect(try f.store.takeAttempt(key, limit: 4, window: 60) == nil)
            #expect(try f.store.takeAttempt(key, limit: 4, window: 60) != nil)
            try f.store.returnAttempt(key)
            #expect(try f.store.takeAttempt(key, limit: 4, window: 60) == nil)
            #expect(try f.store.takeAttempt(key, limit: 4, window: 60) != nil)
            try f.store.clearAttempts(key)
            for _ in 0..<4 { #expect(try f.store.takeAttempt(key, limit: 4, window: 60) == nil) }
            #expect(try f.store.takeAttempt(key, limit: 4, window: 60) != nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func returnedAttemptsNeverGoBelowZero(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        let key = ThrottleKey.username(fresh("name"))
        try f.store.returnAttempt(key)  // nothing counted: nothing to return
        #expect(try f.store.takeAttempt(key, limit: 2, window: 60) == nil)
        for _ in 0..<3 { try f.store.returnAttempt(key) }
        #expect(try f.store.takeAttempt(key, limit: 2, window: 60) == nil)
        #expect(try f.store.takeAttempt(key, limit: 2, window: 60) == nil)
        #expect(try f.store.takeAttempt(key, limit: 2, window: 60) != nil)
        try f.store.clearAttempts(key)
        try f.store.clearAttempts(key)  // twice is harmless
        #expect(try f.store.takeAttempt(key, limit: 1, window: 60) == nil)
        #expect(try f.store.takeAttempt(key, limit: 1, window: 60) != nil)
    }

    @Test(arguments: StoreKind.allCases)
    func ping(_ kind: StoreKind) throws {
        try Fixture(kind).store.ping()
    }
}
