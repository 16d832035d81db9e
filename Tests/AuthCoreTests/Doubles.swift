@testable import AuthCore
import Synchronization

/// A keyed checksum standing in for HMAC, so that the verifier's logic is tested without
/// OpenSSL (the real keys have their own vector tests in AuthCryptoTests).
struct ChecksumKey: SigningKey {
    let algorithm: JWTAlgorithm
    let kid: String
    let secret: UInt64
    var publicJWK: [(String, String)]? { algorithm == .edDSA ? [("kty", "OKP"), ("kid", kid)] : nil }

    init(kid: String, secret: UInt64, algorithm: JWTAlgorithm = .hs256) {
        self.kid = kid
        self.secret = secret
        self.algorithm = algorithm
    }

    func sign(_ input: UnsafeRawBufferPointer) throws -> [UInt8] {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ secret
        for b in input { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return withUnsafeBytes(of: h.bigEndian) { Array($0) }
    }

    func verify(_ signature: [UInt8], for input: UnsafeRawBufferPointer) -> Bool {
        (try? sign(input)) == signature
    }
}

final class TestClock: Clock, @unchecked Sendable {
    private let value = Mutex<Int64>(1_800_000_000)
    func now() -> Int64 { value.withLock { $0 } }
    func advance(_ seconds: Int64) { value.withLock { $0 += seconds } }
}

/// Stores the password itself behind a marker; enough to test the handlers' decisions.
struct PlainHasher: PasswordHasher {
    func hash(_ password: String) throws -> String { "plain:" + password }
    func verify(_ password: String, against hash: String) -> Bool { hash == "plain:" + password }
}

/// An in-memory AuthStore with the same rotation, cap and order rules as the Redis scripts,
/// for driving the handlers without sockets. The Redis implementation is tested against a
/// real server.
final class MemoryStore: AuthStore, @unchecked Sendable {
    struct Session {
        var token: RefreshTokenState, prev: String?, rotatedAt: Int64, expires: Int64, createdAt: Int64, meta: SessionMeta
    }
    var users: [String: UserRecord] = [:]
    var sessions: [String: [String: Session]] = [:]
    var down = false
    /// Only createUser fails (a Redis error between reservation and storing the user).
    var failCreateUser = false
    let clock: TestClock

    init(clock: TestClock) { self.clock = clock }

    private func check() throws { if down { throw StoreUnavailable("down") } }

    var reserved: [String: UserID] = [:]

    func reserveUsername(_ username: String, for id: UserID, ttl: Int64) throws -> Bool {
        try check()
        guard users[username] == nil, reserved[username] == nil else { return false }
        reserved[username] = id
        return true
    }
    func createUser(_ user: UserRecord) throws -> Bool {
        try check()
        if failCreateUser { throw StoreUnavailable("createUser failed") }
        guard reserved[user.username] == user.id else { return false }
        reserved[user.username] = nil
        users[user.username] = user
        return true
    }
    func releaseUsername(_ username: String, for id: UserID) throws {
        try check()
        if reserved[username] == id { reserved[username] = nil }
        if users[username]?.id == id { users[username] = nil }
    }
    func user(named username: String) throws -> UserRecord? { try check(); return users[username] }
    func user(id: UserID) throws -> UserRecord? { try check(); return user(withID: id) }
    private func user(withID id: UserID) -> UserRecord? { users.values.first { $0.id == id } }

    func createSession(_ session: SessionID, of user: UserID, token: RefreshTokenState, ttl: Int64,
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
            if live { evicted += 1 }
        }
        return .started(evicted: evicted)
    }

    private func position(_ id: String, _ s: Session) -> SessionPosition {
        SessionPosition(lastUsedAt: s.rotatedAt, createdAt: s.createdAt, id: SessionID(id))
    }

    func rotate(_ session: SessionID, of user: UserID, presented jti: String, next: RefreshTokenState, ttl: Int64,
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
            return .rotated
        }
        if grace > 0, s.prev == jti, now - s.rotatedAt <= grace { return .retry(current: s.token) }
        sessions[user.rawValue]![session.rawValue] = nil
        return .replayed
    }

    func endSession(_ session: SessionID, of user: UserID) throws -> Bool {
        try check()
        return sessions[user.rawValue]?.removeValue(forKey: session.rawValue).map { $0.expires > clock.now() } ?? false
    }
    func endAllSessions(of user: UserID) throws { try check(); sessions[user.rawValue] = nil }
    func sessions(of user: UserID, after: SessionPosition?, limit: Int) throws -> SessionPage {
        try check()
        let now = clock.now()
        let list = (sessions[user.rawValue] ?? [:]).compactMap { id, s in
            s.expires > now ? SessionInfo(id: SessionID(id), createdAt: s.createdAt, lastUsedAt: s.rotatedAt, meta: s.meta) : nil
        }.sorted { $0.position < $1.position }.filter { s in after.map { $0 < s.position } ?? true }
        let page = Array(list.prefix(limit))
        return SessionPage(sessions: page, next: list.count > limit ? page.last?.position : nil)
    }
    func sessionExists(_ session: SessionID, of user: UserID) throws -> Bool {
        try check()
        return (sessions[user.rawValue]?[session.rawValue]?.expires).map { $0 > clock.now() } ?? false
    }
    func changePassword(of user: UserID, from old: String, to new: String, keeping kept: SessionID) throws -> Bool {
        try check()
        guard var record = self.user(withID: user), record.passwordHash == old else { return false }
        record.passwordHash = new
        users[record.username] = record
        sessions[user.rawValue] = sessions[user.rawValue]?.filter { $0.key == kept.rawValue }
        return true
    }
    func deleteUser(_ user: UserRecord) throws -> Bool {
        try check()
        guard self.user(withID: user.id)?.passwordHash == user.passwordHash else { return false }
        users[user.username] = nil
        sessions[user.id.rawValue] = nil
        return true
    }
    func ping() throws { try check() }

    /// Attempt counters with the Redis script's rules: count and window end.
    var attempts: [ThrottleKey: (count: Int, ends: Int64)] = [:]

    func takeAttempt(_ key: ThrottleKey, limit: Int, window: Int64) throws -> Int64? {
        try check()
        let now = clock.now()
        var a = attempts[key].flatMap { $0.ends > now ? $0 : nil } ?? (count: 0, ends: now + window)
        guard a.count < limit else { return max(1, a.ends - now) }
        a.count += 1
        attempts[key] = a
        return nil
    }
    func returnAttempt(_ key: ThrottleKey) throws {
        try check()
        if let a = attempts[key], a.count > 0 { attempts[key]!.count = a.count - 1 }
    }
    func clearAttempts(_ key: ThrottleKey) throws { try check(); attempts[key] = nil }
}
