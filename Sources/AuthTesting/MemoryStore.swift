// Test doubles shared by the test targets: the in-memory store and a settable clock.
// Not a product; nothing outside Tests/ depends on it.
public import AuthCore
import Synchronization

/// A clock that moves only when told to.
public final class TestClock: Clock, @unchecked Sendable {
    private let value = Mutex<Int64>(1_800_000_000)
    public init() {}
    public func now() -> Int64 { value.withLock { $0 } }
    public func advance(_ seconds: Int64) { value.withLock { $0 += seconds } }
}

/// An in-memory AuthStore with the same rotation, cap and order rules as the Redis scripts,
/// for driving the handlers without sockets. `StoreConformanceTests` runs the same test
/// bodies against it and against `RedisStore` on a real redis-server. Expiry follows
/// `clock`, where Redis's follows real time. Not thread-safe: one caller at a time.
public final class MemoryStore: AuthStore, @unchecked Sendable {
    public struct Session {
        public var token: RefreshTokenState, prev: String?, rotatedAt: Int64, expires: Int64, createdAt: Int64, meta: SessionMeta
    }
    public var users: [String: UserRecord] = [:]
    public var sessions: [String: [String: Session]] = [:]
    public var down = false
    /// Only createUser fails (a Redis error between reservation and storing the user).
    public var failCreateUser = false
    public let clock: TestClock
    /// Where ended sessions are reported, as the Redis scripts publish them (`revoke`):
    /// a service's `revocations`, standing in for its feed.
    public var revocations: Revocations?
    public var revocationTTL: Int64 = 3600
    /// Every session id reported, in order (the Redis scripts' log, `auth:revocations`).
    public private(set) var revokedLog: [String] = []

    public init(clock: TestClock) { self.clock = clock }

    private func revoke<S: Sequence<String>>(_ ids: S) {
        let ids = Array(ids)
        revokedLog += ids
        revocations?.revoke(ids.map { ($0, clock.now() + revocationTTL) })
    }

    private func check() throws { if down { throw StoreUnavailable("down") } }

    public var reserved: [String: UserID] = [:]

    public func reserveUsername(_ username: String, for id: UserID, ttl: Int64) throws -> Bool {
        try check()
        guard users[username] == nil, reserved[username] == nil else { return false }
        reserved[username] = id
        return true
    }
    public func createUser(_ user: UserRecord) throws -> Bool {
        try check()
        if failCreateUser { throw StoreUnavailable("createUser failed") }
        guard reserved[user.username] == user.id else { return false }
        reserved[user.username] = nil
        users[user.username] = user
        return true
    }
    public func releaseUsername(_ username: String, for id: UserID) throws {
        try check()
        if reserved[username] == id { reserved[username] = nil }
        if users[username]?.id == id { users[username] = nil }
        // As Redis's `discardUser` does: any session of the user goes with it (a registration
        // whose answer was lost may have started one).
        revoke(live(of: id))
        sessions[id.rawValue] = nil
    }
    public func user(named username: String) throws -> UserRecord? { try check(); return users[username] }
    public func user(id: UserID) throws -> UserRecord? { try check(); return user(withID: id) }
    private func user(withID id: UserID) -> UserRecord? { users.values.first { $0.id == id } }

    public func createSession(_ session: SessionID, of user: UserID, token: RefreshTokenState, ttl: Int64,
                              meta: SessionMeta, now: Int64, passwordHash: String, cap: Int) throws -> SessionStart {
        try check()
        guard self.user(withID: user)?.passwordHash == passwordHash else { return .refused }
        sessions[user.rawValue, default: [:]][session.rawValue] = Session(
            token: token, prev: nil, rotatedAt: now, expires: now + ttl, createdAt: now, meta: meta)
        // Beyond the cap, the last in the list's order go (expired ones included, as their
        // ids linger in Redis's index too); only live ones count as ended.
        var evicted = 0
        let order = (sessions[user.rawValue] ?? [:]).map { id, s in (id, position(id, s), s.expires > clock.now()) }
            .filter { $0.0 != session.rawValue }.sorted { $0.1 < $1.1 }
        for (id, _, live) in order.suffix(max(0, order.count + 1 - cap)) {
            sessions[user.rawValue]![id] = nil
            if live { evicted += 1; revoke([id]) }
        }
        return .started(evicted: evicted)
    }

    private func position(_ id: String, _ s: Session) -> SessionPosition {
        SessionPosition(lastUsedAt: s.rotatedAt, createdAt: s.createdAt, id: SessionID(id))
    }

    public func rotate(_ session: SessionID, of user: UserID, presented jti: String, next: RefreshTokenState, ttl: Int64,
                       grace: Int64, meta: SessionMeta, now: Int64) throws -> RotationOutcome {
        try check()
        guard var s = sessions[user.rawValue]?[session.rawValue], s.expires > now else { return .unknownSession }
        if s.token.jti == jti {
            s.prev = jti
            s.token = next
            s.rotatedAt = now
            s.expires = now + ttl
            s.meta = meta
            sessions[user.rawValue]![session.rawValue] = s
            return .rotated(username: self.user(withID: user)?.username ?? "")
        }
        if grace > 0, s.prev == jti, now - s.rotatedAt <= grace {
            return .retry(current: s.token, username: self.user(withID: user)?.username ?? "")
        }
        sessions[user.rawValue]![session.rawValue] = nil
        revoke([session.rawValue])
        return .replayed
    }

    public func endSession(_ session: SessionID, of user: UserID) throws -> Bool {
        try check()
        let ended = sessions[user.rawValue]?.removeValue(forKey: session.rawValue).map { $0.expires > clock.now() } ?? false
        if ended { revoke([session.rawValue]) }
        return ended
    }
    public func endAllSessions(of user: UserID) throws {
        try check()
        revoke(live(of: user))
        sessions[user.rawValue] = nil
    }
    /// The ids of a user's sessions that have not expired.
    private func live(of user: UserID) -> [String] {
        (sessions[user.rawValue] ?? [:]).filter { $0.value.expires > clock.now() }.keys.sorted()
    }
    public func sessions(of user: UserID, after: SessionPosition?, limit: Int) throws -> SessionPage {
        try check()
        let now = clock.now()
        let list = (sessions[user.rawValue] ?? [:]).compactMap { id, s in
            s.expires > now ? SessionInfo(id: SessionID(id), createdAt: s.createdAt, lastUsedAt: s.rotatedAt, meta: s.meta) : nil
        }.sorted { $0.position < $1.position }.filter { s in after.map { $0 < s.position } ?? true }
        let page = Array(list.prefix(limit))
        return SessionPage(sessions: page, next: list.count > limit ? page.last?.position : nil)
    }
    public func sessionExists(_ session: SessionID, of user: UserID) throws -> Bool {
        try check()
        return (sessions[user.rawValue]?[session.rawValue]?.expires).map { $0 > clock.now() } ?? false
    }
    public func changePassword(of user: UserID, from old: String, to new: String, keeping kept: SessionID) throws -> Bool {
        try check()
        guard var record = self.user(withID: user), record.passwordHash == old else { return false }
        record.passwordHash = new
        users[record.username] = record
        revoke(live(of: user).filter { $0 != kept.rawValue })
        sessions[user.rawValue] = sessions[user.rawValue]?.filter { $0.key == kept.rawValue }
        return true
    }
    public func deleteUser(_ user: UserRecord) throws -> Bool {
        try check()
        guard self.user(withID: user.id)?.passwordHash == user.passwordHash else { return false }
        users[user.username] = nil
        revoke(live(of: user.id))
        sessions[user.id.rawValue] = nil
        return true
    }
    public func ping() throws { try check() }

    /// Attempt counters with the Redis script's rules: count and window end.
    public var attempts: [ThrottleKey: (count: Int, ends: Int64)] = [:]

    public func takeAttempt(_ key: ThrottleKey, limit: Int, window: Int64) throws -> Int64? {
        try check()
        let now = clock.now()
        var a = attempts[key].flatMap { $0.ends > now ? $0 : nil } ?? (count: 0, ends: now + window)
        guard a.count < limit else { return max(1, a.ends - now) }
        a.count += 1
        attempts[key] = a
        return nil
    }
    public func returnAttempt(_ key: ThrottleKey) throws {
        try check()
        if let a = attempts[key], a.count > 0 { attempts[key]!.count = a.count - 1 }
    }
    public func clearAttempts(_ key: ThrottleKey) throws { try check(); attempts[key] = nil }
}
