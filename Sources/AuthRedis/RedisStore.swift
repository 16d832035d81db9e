public import AuthCore
import Synchronization

/// Redis key names. Every key of one user carries the hash tag `{<user id>}`, so a user's
/// keys share one Redis Cluster slot and one script may touch them together; the username
/// index is the one lookup keyed by name (its own slot).
struct RedisKey {
    static let prefix = "auth:"
    static func username(_ name: String) -> String { "\(prefix)username:{\(name)}" }
    static func user(_ id: UserID) -> String { "\(prefix)user:{\(id.rawValue)}" }
    static func sessions(_ id: UserID) -> String { "\(prefix)sessions:{\(id.rawValue)}" }
    static func sessionPrefix(_ id: UserID) -> String { "\(prefix)session:{\(id.rawValue)}:" }
    static func session(_ sid: SessionID, of id: UserID) -> String { sessionPrefix(id) + sid.rawValue }
    static func attempts(_ key: ThrottleKey) -> String {
        switch key {
        case .username(let name): "\(prefix)attempts:user:{\(name)}"
        case .address(let address): "\(prefix)attempts:addr:{\(address)}"
        }
    }
}

/// Clean-ups that Redis could not be asked for when they were due, or whose need only
/// showed when a write's answer was lost: undoing a registration or a login that got 503,
/// a rotation whose new token nobody received, giving back a login attempt. Shared by
/// every worker's store. Each checks what it undoes, so running one late or twice is
/// harmless; what one undoes also expires by itself, so the bounded list may drop the oldest.
///
/// While any is owed, a store settles them before its own command, under one lock: no
/// command sent after a debt was recorded (a client's retry of the request that got 503)
/// overtakes it.
public final class RedisDebts: Sendable {
    enum Debt: Sendable {
        /// A registration that did not complete: its user (never given to anyone), then its name.
        case undoRegistration(username: String, id: UserID)
        /// A session whose creation may have applied without its tokens reaching anyone.
        case undoSession(SessionID, of: UserID)
        /// A rotation that may have applied without its new token reaching anyone.
        case undoRotation(SessionID, of: UserID, next: String)
        case returnAttempt(ThrottleKey)
        case clearAttempts(ThrottleKey)
    }

    private struct State {
        var owed: [Debt] = []
        /// When settling last met a Redis that did not answer.
        var failedAt: ContinuousClock.Instant?
    }

    private let state = Locked(State())
    /// Debts recorded and not yet taken over by a settler: behind a lock of their own, so
    /// that recording one never waits for a settler that is waiting for Redis.
    private let incoming = Locked<[Debt]>([])
    /// Debts recorded and not yet paid (or dropped), both lists together.
    private let count = Atomic<Int>(0)
    static let limit = 4096

    public init() {}

    var isEmpty: Bool { count.load(ordering: .acquiring) == 0 }

    func add(_ debt: Debt) {
        incoming.withLock { list in
            list.append(debt)
            count.add(1, ordering: .releasing)
        }
    }

    /// Runs `pay` on each debt in order, holding the lock. `pay` throws when Redis did not
    /// answer: that debt and the rest stay owed, and for `quiet` every caller is told so at
    /// once (503) rather than each waiting for Redis in turn.
    func settle(quiet: Duration, _ pay: (Debt) throws -> Void) throws {
        let asked = ContinuousClock.now
        try state.withLock { (s: inout State) throws -> Void in
            // Waiting this long for the lock means another store was waiting for Redis:
            // this request has spent its time, and is told so rather than try in turn.
            if let failed = s.failedAt, failed.duration(to: .now) < quiet || asked.duration(to: .now) >= quiet {
                throw StoreUnavailable("redis: clean-ups are owed and it did not answer them just now")
            }
            s.owed += incoming.withLock { list in defer { list = [] }; return list }
            if s.owed.count > Self.limit {
                let dropped = s.owed.count - Self.limit
                s.owed.removeFirst(dropped)
                count.subtract(dropped, ordering: .releasing)
            }
            while let debt = s.owed.first {
                let started = ContinuousClock.now
                do {
                    try pay(debt)
                } catch {
                    // Only a Redis slow to fail (a stall) is worth telling the others at
                    // once; a refused connection costs each of them nothing to meet.
                    if started.duration(to: .now) >= quiet { s.failedAt = .now }
                    throw error
                }
                s.owed.removeFirst()
                count.subtract(1, ordering: .releasing)
            }
            s.failedAt = nil
        }
    }
}

/// `AuthStore` on Redis. One instance per worker thread; it owns one connection.
///
/// The rule for every write: a 503 means nothing was applied. Each write is a script whose
/// deadline guard (`RedisConnection.evalsha`) makes a late run, one that queued up while
/// Redis stalled and ran after we gave up, change nothing. What a request had already
/// changed before a later step failed is undone (at once, or as a `RedisDebts` entry once
/// Redis answers again).
public final class RedisStore: AuthStore {
    private let connection: RedisConnection
    private let debts: RedisDebts
    /// Script SHA1s as this server knows them; emptied when the server forgets (NOSCRIPT).
    private var loaded: [Script: String] = [:]
    private var settling = false

    /// `metrics` counts the connections made; `debts` is shared by the workers' stores.
    public init(endpoint: RedisEndpoint, timeoutSeconds: Double, metrics: WorkerMetrics? = nil, debts: RedisDebts = RedisDebts()) {
        connection = RedisConnection(endpoint: endpoint, timeoutSeconds: timeoutSeconds) { metrics?.storeConnected() }
        self.debts = debts
    }

    // MARK: Users

    public func reserveUsername(_ username: String, for id: UserID, ttl: Int64) throws -> Bool {
        let key = RedisKey.username(username)
        func reserve() throws -> Bool {
            let reply = try evalOrUndo(.reserveName, keys: [key], args: [id.rawValue, String(ttl)],
                                       undo: .undoRegistration(username: username, id: id))
            if reply == .null { return false }
            guard case .status("OK") = reply else { throw unexpected("reserve name", reply) }
            return true
        }
        if try reserve() { return true }
        return try dropStaleName(username) && reserve()
    }

    /// Frees a name whose user is gone: an account deletion that stopped between its two
    /// steps (user, then name; different Cluster slots) leaves the name index behind.
    /// `createUser` writes the user before it makes the name permanent, and user ids are
    /// never reused, so a name that was already permanent when its user was found missing
    /// is stale for good. (Checked in that order: a name still pending may be a
    /// registration about to write its user.) True when the name may be free now. Runs
    /// only when a registration finds the name taken.
    private func dropStaleName(_ username: String) throws -> Bool {
        let key = RedisKey.username(username)
        let owner = try eval(.permanentOwner, keys: [key], args: [])
        if owner == .null { return false }
        guard case .string(let raw) = owner else { throw unexpected("permanent owner", owner) }
        let id = String(decoding: raw, as: UTF8.self)
        guard case .integer(0) = try run(["EXISTS", RedisKey.user(UserID(id))]) else { return false }
        return try eval(.releaseName, keys: [key], args: [id, "permanent"]) == .integer(1)
    }

    /// The name index and the user live in different Cluster slots, so this is three steps:
    /// the user, pending (invisible to logins) and expiring with the reservation; then the
    /// reservation made permanent if it is still ours; then the user. A failure on the way
    /// is undone by `releaseUsername`, which the handler calls.
    public func createUser(_ user: UserRecord) throws -> Bool {
        let key = RedisKey.user(user.id)
        _ = try eval(.addPendingUser, keys: [key],
                     args: [user.username, user.passwordHash, String(user.createdAt), String(AuthService.reservationTTL)])
        let kept = try eval(.keepReservation, keys: [RedisKey.username(user.username)], args: [user.id.rawValue])
        guard case .integer(1) = kept else { return false }
        guard case .integer(1) = try eval(.confirmUser, keys: [key], args: []) else {
            throw StoreUnavailable("redis: the pending user \(user.id) expired before it was confirmed")
        }
        return true
    }

    /// Undoes a registration that did not complete (no token of it reached anyone): its
    /// user, pending or confirmed, then its name while it is still this user's.
    public func releaseUsername(_ username: String, for id: UserID) throws {
        cleanUp(.undoRegistration(username: username, id: id))
    }

    public func user(named username: String) throws -> UserRecord? {
        let idReply = try run(["GET", RedisKey.username(username)])
        let id: UserID?
        switch idReply {
        case .string(let raw): id = UserID(String(decoding: raw, as: UTF8.self))
        case .null: id = nil
        default: throw unexpected("GET", idReply)
        }
        // An unknown name costs the same two round trips as a known one (the second on a
        // key that cannot exist), so a login's timing does not tell which it was.
        let record = try user(id: id ?? Self.nobody)
        return id == nil ? nil : record
    }

    /// Not a possible user id (ids are base64url), so its key never exists.
    private static let nobody = UserID("!")

    /// Nil also for a user whose registration is still pending.
    public func user(id: UserID) throws -> UserRecord? {
        let reply = try run(["HMGET", RedisKey.user(id), "username", "hash", "createdAt", "pending"])
        guard case .array(let f) = reply, f.count == 4 else { throw unexpected("HMGET", reply) }
        guard let username = f[0].text, let hash = f[1].text, let created = f[2].text.flatMap({ Int64($0) }),
              f[3] == .null else { return nil }
        return UserRecord(id: id, username: username, passwordHash: hash, createdAt: created)
    }

    // MARK: Sessions

    public func createSession(_ session: SessionID, of user: UserID, token: RefreshTokenState, ttl: Int64,
                              meta: SessionMeta, now: Int64, passwordHash: String, cap: Int) throws -> SessionStart {
        let reply = try evalOrUndo(.createSession,
                             keys: [RedisKey.session(session, of: user), RedisKey.sessions(user), RedisKey.user(user)],
                             args: [session.rawValue, token.jti, String(token.issuedAt), String(token.expiresAt),
                                    String(ttl), String(now), meta.userAgent, meta.address, RedisKey.sessionPrefix(user),
                                    passwordHash, String(cap)], undo: .undoSession(session, of: user))
        guard case .integer(let evicted) = reply, evicted >= -1 else { throw unexpected("create session", reply) }
        return evicted < 0 ? .refused : .started(evicted: Int(evicted))
    }

    public func rotate(_ session: SessionID, of user: UserID, presented jti: String, next: RefreshTokenState,
                       ttl: Int64, grace: Int64, meta: SessionMeta, now: Int64) throws -> RotationOutcome {
        let reply = try evalOrUndo(.rotate,
                             keys: [RedisKey.session(session, of: user), RedisKey.sessions(user)],
                             args: [session.rawValue, jti, next.jti, String(next.issuedAt), String(next.expiresAt),
                                    String(ttl), String(now), String(grace), meta.userAgent, meta.address,
                                    RedisKey.sessionPrefix(user)],
                             undo: .undoRotation(session, of: user, next: next.jti))
        guard case .array(let r) = reply, case .integer(let code)? = r.first else { throw unexpected("rotate", reply) }
        switch code {
        case 0: return .unknownSession
        case 1: return .rotated
        case 3: return .replayed
        case 2:
            guard r.count == 4, let cur = r[1].text, let iat = r[2].text.flatMap({ Int64($0) }),
                  let exp = r[3].text.flatMap({ Int64($0) }) else { throw unexpected("rotate", reply) }
            return .retry(current: RefreshTokenState(jti: cur, issuedAt: iat, expiresAt: exp))
        default: throw unexpected("rotate", reply)
        }
    }

    @discardableResult
    public func endSession(_ session: SessionID, of user: UserID) throws -> Bool {
        let reply = try eval(.endSession, keys: [RedisKey.session(session, of: user), RedisKey.sessions(user)],
                             args: [session.rawValue, RedisKey.sessionPrefix(user)])
        guard case .integer(let ended) = reply else { throw unexpected("end session", reply) }
        return ended > 0
    }

    public func endAllSessions(of user: UserID) throws {
        _ = try eval(.endAllSessions, keys: [RedisKey.sessions(user)], args: [RedisKey.sessionPrefix(user)])
    }

    public func sessions(of user: UserID, after: SessionPosition?, limit: Int) throws -> SessionPage {
        let start = after.map { [String($0.lastUsedAt), String($0.createdAt), $0.id.rawValue] } ?? []
        let reply = try eval(.listSessions, keys: [RedisKey.sessions(user)], args: [RedisKey.sessionPrefix(user), String(limit)] + start)
        guard case .array(let r) = reply, r.count >= 4, r.count % 5 == 4, case .integer(let more) = r[0] else {
            throw unexpected("list sessions", reply)
        }
        var next: SessionPosition?
        if more == 1 {
            guard let used = r[1].text.flatMap({ Int64($0) }), let created = r[2].text.flatMap({ Int64($0) }), let sid = r[3].text else {
                throw unexpected("list sessions", reply)
            }
            next = SessionPosition(lastUsedAt: used, createdAt: created, id: SessionID(sid))
        }
        let f = r[4...]
        let sessions = try stride(from: f.startIndex, to: f.endIndex, by: 5).map { i in
            guard let id = f[i].text, let created = f[i + 1].text.flatMap({ Int64($0) }),
                  let used = f[i + 2].text.flatMap({ Int64($0) }), let agent = f[i + 3].text, let address = f[i + 4].text else {
                throw unexpected("list sessions", reply)
            }
            return SessionInfo(id: SessionID(id), createdAt: created, lastUsedAt: used,
                               meta: SessionMeta(userAgent: agent, address: address))
        }
        return SessionPage(sessions: sessions, next: next)
    }

    public func sessionExists(_ session: SessionID, of user: UserID) throws -> Bool {
        let reply = try run(["EXISTS", RedisKey.session(session, of: user)])
        guard case .integer(let n) = reply else { throw unexpected("EXISTS", reply) }
        return n == 1
    }

    public func changePassword(of user: UserID, from old: String, to new: String, keeping kept: SessionID) throws -> Bool {
        let reply = try eval(.changePassword, keys: [RedisKey.user(user), RedisKey.sessions(user)],
                             args: [old, new, kept.rawValue, RedisKey.sessionPrefix(user)])
        guard case .integer(let changed) = reply else { throw unexpected("change password", reply) }
        return changed == 1
    }

    public func deleteUser(_ user: UserRecord) throws -> Bool {
        let reply = try eval(.deleteUser, keys: [RedisKey.user(user.id), RedisKey.sessions(user.id)],
                             args: [user.passwordHash, RedisKey.sessionPrefix(user.id)])
        guard case .integer(let deleted) = reply else { throw unexpected("delete user", reply) }
        guard deleted == 1 else { return false }
        // The account is gone; freeing the name is the second step, in the name's slot. If
        // it fails here, the next registration of the name frees it (`dropStaleName`).
        if connection.isConnected {
            _ = try? eval(.releaseName, keys: [RedisKey.username(user.username)], args: [user.id.rawValue, "any"])
        }
        return true
    }

    // MARK: Login throttling

    public func takeAttempt(_ key: ThrottleKey, limit: Int, window: Int64) throws -> Int64? {
        let reply = try eval(.takeAttempt, keys: [RedisKey.attempts(key)], args: [String(window), String(limit)])
        guard case .integer(let wait) = reply else { throw unexpected("take attempt", reply) }
        return wait > 0 ? wait : nil
    }

    public func returnAttempt(_ key: ThrottleKey) throws {
        cleanUp(.returnAttempt(key))
    }

    public func clearAttempts(_ key: ThrottleKey) throws {
        cleanUp(.clearAttempts(key))
    }

    public func ping() throws {
        let reply = try run(["PING"])
        guard case .status("PONG") = reply else { throw unexpected("PING", reply) }
    }

    // MARK: Clean-ups

    /// Runs a clean-up now, or leaves it owed: not now when this request's previous command
    /// timed out or broke the connection, since reconnecting to a Redis that does not answer
    /// would hold the request for another REDIS_TIMEOUT.
    private func cleanUp(_ debt: RedisDebts.Debt) {
        guard connection.isConnected else { return debts.add(debt) }
        do { try settle(debt) } catch { if !connection.isConnected { debts.add(debt) } }
    }

    private func settle(_ debt: RedisDebts.Debt) throws {
        switch debt {
        case .undoRegistration(let username, let id):
            _ = try eval(.discardUser, keys: [RedisKey.user(id), RedisKey.sessions(id)], args: [RedisKey.sessionPrefix(id)])
            _ = try eval(.releaseName, keys: [RedisKey.username(username)], args: [id.rawValue, "any"])
        case .undoSession(let session, let user):
            try endSession(session, of: user)
        case .undoRotation(let session, let user, let next):
            _ = try eval(.undoRotation, keys: [RedisKey.session(session, of: user)], args: [next])
        case .returnAttempt(let key):
            _ = try eval(.returnAttempt, keys: [RedisKey.attempts(key)], args: [])
        case .clearAttempts(let key):
            _ = try eval(.clearAttempts, keys: [RedisKey.attempts(key)], args: [])
        }
    }

    /// Settles what is owed before this store's own command. Throws (503) when Redis does
    /// not answer; a debt that Redis refuses (an error reply) is dropped.
    private func settleDebts() throws {
        guard !settling, !debts.isEmpty else { return }
        settling = true
        defer { settling = false }
        // A short quiet: enough for the requests queued behind a failed attempt to be told at
        // once, short enough not to hold back the retries once Redis answers again.
        try debts.settle(quiet: .milliseconds(100)) { debt in
            for attempt in 0..<2 {
                let started = ContinuousClock.now
                do {
                    return try settle(debt)
                } catch {
                    if connection.isConnected { return }  // refused by Redis: dropped
                    // A connection found dead at once (Redis restarted since): once more, afresh.
                    if attempt == 1 || started.duration(to: .now) >= .milliseconds(100) { throw error }
                }
            }
        }
    }

    /// A write whose answer may be lost after Redis applied it (the connection broke, or
    /// Redis froze between running the script and answering): then `undo` is owed, so that
    /// our 503 still means "not applied".
    private func evalOrUndo(_ script: Script, keys: [String], args: [String], undo: RedisDebts.Debt) throws -> RedisReply {
        do {
            return try eval(script, keys: keys, args: args)
        } catch {
            if !connection.isConnected { debts.add(undo) }
            throw error
        }
    }

    // MARK: Plumbing

    /// A command whose Redis error reply is a store failure, not a client's mistake. Reads
    /// only: every write is a script, behind the deadline guard.
    private func run(_ args: [String]) throws -> RedisReply {
        try settleDebts()
        let reply = try connection.command(args)
        if case .error = reply { throw unexpected(args[0], reply) }
        return reply
    }

    /// EVALSHA, loading the script on first use and again after the server forgot it
    /// (a restart): NOSCRIPT means nothing ran, so the retry cannot apply a change twice.
    private func eval(_ script: Script, keys: [String], args: [String]) throws -> RedisReply {
        try settleDebts()
        for _ in 0..<2 {
            let sha: String
            if let known = loaded[script] {
                sha = known
            } else {
                let r = try connection.command(["SCRIPT", "LOAD", script.source])
                guard let s = r.text else { throw unexpected("SCRIPT LOAD", r) }
                loaded[script] = s
                sha = s
            }
            let reply = try connection.evalsha(sha, keys: keys, args: args)
            if case .error(let e) = reply, e.hasPrefix("NOSCRIPT") {
                loaded[script] = nil
                continue
            }
            if case .error = reply { throw unexpected("EVALSHA \(script)", reply) }
            return reply
        }
        throw StoreUnavailable("redis keeps forgetting script \(script)")
    }

    private func unexpected(_ what: String, _ reply: RedisReply) -> StoreUnavailable {
        // A Redis error (OOM, READONLY replica, MISCONF) means the store cannot serve: 503.
        StoreUnavailable("redis \(what): unexpected reply \(reply)")
    }
}

/// The Lua scripts: each runs atomically on the server, behind the deadline guard.
enum Script: String, CaseIterable {
    case reserveName, addPendingUser, keepReservation, confirmUser, discardUser, permanentOwner, releaseName
    case createSession, rotate, undoRotation, endSession, endAllSessions
    case listSessions, changePassword, deleteUser, takeAttempt, returnAttempt, clearAttempts

    /// The first ARGV, which every script is sent (`RedisConnection.evalsha`), is its
    /// deadline in microseconds on Redis's clock: past it the script answers an error and
    /// changes nothing. The guard takes it out of ARGV, so each body's ARGV starts at its
    /// own arguments. (Redis 5+ replicates a script's effects, so `TIME` before a write is allowed.)
    static let deadlineGuard = """
        local deadline = tonumber(table.remove(ARGV, 1))
        local now = redis.call('TIME')
        if tonumber(now[1]) * 1000000 + tonumber(now[2]) > deadline then
          return redis.error_reply('LATE the script started after its deadline; nothing was changed')
        end

        """

    var source: String { Self.deadlineGuard + (touchesSessionIndex ? Self.sessionIndex : "") + body }

    private var touchesSessionIndex: Bool {
        switch self {
        case .createSession, .rotate, .endSession, .endAllSessions, .listSessions, .changePassword, .deleteUser, .discardUser:
            true
        default:
            false
        }
    }

    /// Lua functions for the scripts that touch a user's session index (`auth:sessions:{<id>}`).
    ///
    /// The index is a sorted set whose members all have score 0, so that Redis orders them
    /// by their bytes: `<9999999999 - lastUsedAt>:<9999999999 - createdAt>:<sid>`, both
    /// numbers written with 10 digits. Ascending order is then the list's order (most
    /// recently used first, then the newest, then by id), a page is one ZRANGEBYLEX and
    /// the least recently used session is the last member: O(log n) to find either end.
    /// A member is computed again from the session's `lastUsedAt` and `createdAt` to
    /// remove it, so every write of those two fields updates the index in the same script.
    ///
    /// Before this layout the index was a plain set of ids. `upgrade` turns such a set into
    /// the sorted set the first time a script touches it: O(n) once per user.
    static let sessionIndex = """
        local function member(used, created, sid)
          created = tonumber(created) or 0
          used = tonumber(used) or created
          return string.format('%010d:%010d:', 9999999999 - used, 9999999999 - created) .. sid
        end
        local function sid_of(m) return string.sub(m, 23) end
        local function upgrade(index, prefix)
          if redis.call('TYPE', index).ok ~= 'set' then return end
          local ttl = redis.call('PTTL', index)
          local ids = redis.call('SMEMBERS', index)
          redis.call('DEL', index)
          for _, sid in ipairs(ids) do
            local s = redis.call('HMGET', prefix .. sid, 'jti', 'createdAt', 'lastUsedAt')
            if s[1] then redis.call('ZADD', index, 0, member(s[3], s[2], sid)) end
          end
          if ttl > 0 and redis.call('EXISTS', index) == 1 then redis.call('PEXPIRE', index, ttl) end
        end

        """

    private var body: String {
        switch self {
        case .reserveName:
            // KEYS: username index. ARGV: user id, ttl. OK, or nil when the name is taken.
            """
            return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
            """
        case .addPendingUser:
            // KEYS: user. ARGV: username, hash, createdAt, ttl. Pending until `confirmUser`,
            // and gone by itself after ttl if never confirmed.
            """
            redis.call('HSET', KEYS[1], 'username', ARGV[1], 'hash', ARGV[2], 'createdAt', ARGV[3], 'pending', '1')
            redis.call('EXPIRE', KEYS[1], ARGV[4])
            return 1
            """
        case .confirmUser:
            // KEYS: user. 1 when the pending user is now permanent; 0 when it is gone.
            """
            if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
            redis.call('HDEL', KEYS[1], 'pending')
            redis.call('PERSIST', KEYS[1])
            return 1
            """
        case .discardUser:
            // KEYS: user, sessions set. ARGV: session key prefix. The user and any session
            // of it (a registration's whose answer was lost).
            """
            upgrade(KEYS[2], ARGV[1])
            for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do redis.call('DEL', ARGV[1] .. sid_of(m)) end
            return redis.call('DEL', KEYS[1], KEYS[2])
            """
        case .keepReservation:
            // KEYS: username index. ARGV: user id. 1 when the reservation is ours and now permanent.
            """
            if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
            redis.call('PERSIST', KEYS[1])
            return 1
            """
        case .permanentOwner:
            // KEYS: username index. The user id it holds if it is permanent (a registered
            // name), else nil: read together, so the id is the one that was permanent.
            """
            local id = redis.call('GET', KEYS[1])
            if id and redis.call('TTL', KEYS[1]) == -1 then return id end
            return false
            """
        case .releaseName:
            // KEYS: username index. ARGV: user id; which: `pending` (a reservation, with a
            // TTL), `permanent` (a registered name) or `any`. Deletes the name only while it
            // is this id's and in that state. 1 when deleted.
            """
            if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
            local ttl = redis.call('TTL', KEYS[1])
            if (ARGV[2] == 'pending' and ttl < 0) or (ARGV[2] == 'permanent' and ttl ~= -1) then return 0 end
            return redis.call('DEL', KEYS[1])
            """
        case .createSession:
            // KEYS: session, session index, user. ARGV: sid, jti, iat, exp, ttl, now, ua, ip,
            // session key prefix, password hash, cap. -1 (nothing written) when the user's
            // hash is not that one any more: the password changed or the account is gone.
            // Else the number of sessions ended to keep the user within the cap: the least
            // recently used, never the new one. Also drops from the end of the index a few
            // ids of sessions that have expired (a session expires a fixed time after its
            // last use, so the expired ones are the last), so the index does not fill with them.
            """
            if redis.call('HGET', KEYS[3], 'hash') ~= ARGV[10] then return -1 end
            upgrade(KEYS[2], ARGV[9])
            redis.call('HSET', KEYS[1], 'jti', ARGV[2], 'iat', ARGV[3], 'exp', ARGV[4], 'createdAt', ARGV[6], 'lastUsedAt', ARGV[6], 'ua', ARGV[7], 'ip', ARGV[8])
            redis.call('EXPIRE', KEYS[1], ARGV[5])
            local new = member(ARGV[6], ARGV[6], ARGV[1])
            redis.call('ZADD', KEYS[2], 0, new)
            if redis.call('TTL', KEYS[2]) < tonumber(ARGV[5]) then redis.call('EXPIRE', KEYS[2], ARGV[5]) end
            for _ = 1, 8 do
              local last = redis.call('ZRANGE', KEYS[2], -1, -1)[1]
              if last == new or redis.call('EXISTS', ARGV[9] .. sid_of(last)) == 1 then break end
              redis.call('ZREM', KEYS[2], last)
            end
            local evicted = 0
            local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[11])
            if excess > 0 then
              local tail = redis.call('ZRANGE', KEYS[2], -(excess + 1), -1)
              for i = #tail, 1, -1 do
                if excess > 0 and tail[i] ~= new then
                  evicted = evicted + redis.call('DEL', ARGV[9] .. sid_of(tail[i]))
                  redis.call('ZREM', KEYS[2], tail[i])
                  excess = excess - 1
                end
              end
            end
            return evicted
            """
        case .rotate:
            // KEYS: session, session index. ARGV: sid, presented jti, new jti, new iat, new exp, ttl, now, grace, ua, ip,
            // session key prefix. Returns {1} rotated (the session moves to the front of the
            // index), {2, jti, iat, exp} retry within grace, {3} replay (session ended), {0} no session.
            """
            local s = redis.call('HMGET', KEYS[1], 'jti', 'prev', 'rotatedAt', 'iat', 'exp', 'createdAt', 'lastUsedAt')
            if not s[1] then return {0} end
            upgrade(KEYS[2], ARGV[11])
            if s[1] == ARGV[2] then
              redis.call('HSET', KEYS[1], 'jti', ARGV[3], 'iat', ARGV[4], 'exp', ARGV[5], 'prev', ARGV[2], 'prevIat', s[4], 'prevExp', s[5], 'rotatedAt', ARGV[7], 'lastUsedAt', ARGV[7], 'ua', ARGV[9], 'ip', ARGV[10])
              redis.call('EXPIRE', KEYS[1], ARGV[6])
              redis.call('ZREM', KEYS[2], member(s[7], s[6], ARGV[1]))
              redis.call('ZADD', KEYS[2], 0, member(ARGV[7], s[6], ARGV[1]))
              if redis.call('TTL', KEYS[2]) < tonumber(ARGV[6]) then redis.call('EXPIRE', KEYS[2], ARGV[6]) end
              return {1}
            end
            local grace = tonumber(ARGV[8])
            if grace > 0 and s[2] == ARGV[2] and tonumber(ARGV[7]) - tonumber(s[3]) <= grace then
              return {2, s[1], s[4], s[5]}
            end
            redis.call('DEL', KEYS[1])
            redis.call('ZREM', KEYS[2], member(s[7], s[6], ARGV[1]))
            return {3}
            """
        case .undoRotation:
            // KEYS: session. ARGV: the jti a rotation set, which nobody received. While it is
            // still current, the token it replaced is current again. 1 when undone.
            """
            local s = redis.call('HMGET', KEYS[1], 'jti', 'prev', 'prevIat', 'prevExp')
            if s[1] ~= ARGV[1] or not s[2] or not s[3] then return 0 end
            redis.call('HSET', KEYS[1], 'jti', s[2], 'iat', s[3], 'exp', s[4])
            redis.call('HDEL', KEYS[1], 'prev', 'prevIat', 'prevExp', 'rotatedAt')
            return 1
            """
        case .endSession:
            // KEYS: session, session index. ARGV: sid, session key prefix. 1 when the session existed.
            """
            upgrade(KEYS[2], ARGV[2])
            local s = redis.call('HMGET', KEYS[1], 'createdAt', 'lastUsedAt')
            local n = redis.call('DEL', KEYS[1])
            if n == 1 then redis.call('ZREM', KEYS[2], member(s[2], s[1], ARGV[1])) end
            return n
            """
        case .endAllSessions:
            // KEYS: session index. ARGV: session key prefix. The session keys it builds carry
            // the same hash tag as KEYS[1], so they live in the same Cluster slot. O(n), n
            // at most the cap.
            """
            upgrade(KEYS[1], ARGV[1])
            local members = redis.call('ZRANGE', KEYS[1], 0, -1)
            for _, m in ipairs(members) do redis.call('DEL', ARGV[1] .. sid_of(m)) end
            redis.call('DEL', KEYS[1])
            return #members
            """
        case .listSessions:
            // KEYS: session index. ARGV: session key prefix, limit, then the position to
            // start after (lastUsedAt, createdAt, sid), none for the first page. Returns
            // {more, lastUsedAt, createdAt, sid, ...}: more is 1 when sessions may follow,
            // the next page starting after that position; then five per session, in the
            // index's order: sid, createdAt, lastUsedAt, ua, ip. Ids of expired sessions
            // met on the way are dropped, and at most 2 * limit + 1 members are looked at,
            // so a call is O(log n + limit) whatever the index holds.
            """
            upgrade(KEYS[1], ARGV[1])
            local limit = tonumber(ARGV[2])
            local start = '-'
            if ARGV[3] then start = '(' .. member(ARGV[3], ARGV[4], ARGV[5]) end
            local out = {0, '', '', ''}
            local function more(m)
              out[1] = 1
              out[2] = string.format('%d', 9999999999 - tonumber(string.sub(m, 1, 10)))
              out[3] = string.format('%d', 9999999999 - tonumber(string.sub(m, 12, 21)))
              out[4] = sid_of(m)
              return out
            end
            local live, budget, last = 0, 2 * limit + 1, nil
            while budget > 0 do
              local want = math.min(limit + 1 - live, budget)
              local batch = redis.call('ZRANGEBYLEX', KEYS[1], start, '+', 'LIMIT', 0, want)
              for _, m in ipairs(batch) do
                local sid = sid_of(m)
                local s = redis.call('HMGET', ARGV[1] .. sid, 'jti', 'createdAt', 'lastUsedAt', 'ua', 'ip')
                if s[1] then
                  if live == limit then return more(last) end
                  live = live + 1
                  for _, v in ipairs({sid, s[2] or '0', s[3] or s[2] or '0', s[4] or '', s[5] or ''}) do out[#out + 1] = v end
                else
                  redis.call('ZREM', KEYS[1], m)
                end
                last = m
                budget = budget - 1
              end
              if #batch < want then return out end
              start = '(' .. last
            end
            return more(last)
            """
        case .changePassword:
            // KEYS: user, session index. ARGV: old hash, new hash, sid to keep, session key
            // prefix. 0 (nothing changed) unless the stored hash is the old one. One step
            // with respect to createSession and rotate: a login that checked the old
            // password cannot add a session afterwards, and no other session outlives it.
            // O(n), n at most the cap.
            """
            if redis.call('HGET', KEYS[1], 'hash') ~= ARGV[1] then return 0 end
            redis.call('HSET', KEYS[1], 'hash', ARGV[2])
            upgrade(KEYS[2], ARGV[4])
            for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
              if sid_of(m) ~= ARGV[3] then
                redis.call('DEL', ARGV[4] .. sid_of(m))
                redis.call('ZREM', KEYS[2], m)
              end
            end
            return 1
            """
        case .deleteUser:
            // KEYS: user, session index. ARGV: password hash, session key prefix. 0 (nothing
            // deleted) unless the stored hash is that one. O(n), n at most the cap.
            """
            if redis.call('HGET', KEYS[1], 'hash') ~= ARGV[1] then return 0 end
            upgrade(KEYS[2], ARGV[2])
            for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do redis.call('DEL', ARGV[2] .. sid_of(m)) end
            redis.call('DEL', KEYS[1], KEYS[2])
            return 1
            """
        case .takeAttempt:
            // KEYS: attempt counter. ARGV: window, limit. 0 when counted; else the seconds
            // (at least 1) until the window closes, the attempt not counted.
            """
            local n = redis.call('INCR', KEYS[1])
            local ttl = redis.call('TTL', KEYS[1])
            if ttl < 0 then
              redis.call('EXPIRE', KEYS[1], ARGV[1])
              ttl = tonumber(ARGV[1])
            end
            if n <= tonumber(ARGV[2]) then return 0 end
            redis.call('DECR', KEYS[1])
            return math.max(ttl, 1)
            """
        case .returnAttempt:
            // KEYS: attempt counter. Never below zero, never creates the key.
            """
            if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
            return 1
            """
        case .clearAttempts:
            // KEYS: attempt counter.
            """
            return redis.call('DEL', KEYS[1])
            """
        }
    }
}
