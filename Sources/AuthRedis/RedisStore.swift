public import AuthCore

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

/// `AuthStore` on Redis. One instance per worker thread; it owns one connection.
public final class RedisStore: AuthStore {
    private let connection: RedisConnection
    /// Script SHA1s as this server knows them; emptied when the server forgets (NOSCRIPT).
    private var loaded: [Script: String] = [:]

    /// `metrics` counts the connections made.
    public init(endpoint: RedisEndpoint, timeoutSeconds: Double, metrics: WorkerMetrics? = nil) {
        connection = RedisConnection(endpoint: endpoint, timeoutSeconds: timeoutSeconds) { metrics?.storeConnected() }
    }

    // MARK: Users

    public func reserveUsername(_ username: String, for id: UserID, ttl: Int64) throws -> Bool {
        let reply = try run(["SET", RedisKey.username(username), id.rawValue, "NX", "EX", String(ttl)])
        if reply == .null { return false }
        guard case .status("OK") = reply else { throw unexpected("SET NX", reply) }
        return true
    }

    public func createUser(_ user: UserRecord) throws -> Bool {
        let key = RedisKey.user(user.id)
        try expectOK(["HSET", key, "username", user.username, "hash", user.passwordHash, "createdAt", String(user.createdAt)])
        // The name index and the user live in different Cluster slots, so this is two steps:
        // the user hash first, then the reservation made permanent if it is still ours.
        let kept = try eval(.keepReservation, keys: [RedisKey.username(user.username)], args: [user.id.rawValue])
        guard case .integer(1) = kept else {
            _ = try run(["DEL", key])
            return false
        }
        return true
    }

    public func releaseUsername(_ username: String, for id: UserID) throws {
        guard cleanUpAllowed else { return }
        _ = try eval(.releaseReservation, keys: [RedisKey.username(username)], args: [id.rawValue])
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

    public func user(id: UserID) throws -> UserRecord? {
        let reply = try run(["HMGET", RedisKey.user(id), "username", "hash", "createdAt"])
        guard case .array(let f) = reply, f.count == 3 else { throw unexpected("HMGET", reply) }
        guard let username = f[0].text, let hash = f[1].text, let created = f[2].text.flatMap({ Int64($0) }) else { return nil }
        return UserRecord(id: id, username: username, passwordHash: hash, createdAt: created)
    }

    // MARK: Sessions

    public func createSession(_ session: SessionID, of user: UserID, token: RefreshTokenState,
                              ttl: Int64, meta: SessionMeta, now: Int64) throws {
        let reply = try eval(.createSession,
                             keys: [RedisKey.session(session, of: user), RedisKey.sessions(user)],
                             args: [session.rawValue, token.jti, String(token.issuedAt), String(token.expiresAt),
                                    String(ttl), String(now), meta.userAgent, meta.address, RedisKey.sessionPrefix(user)])
        guard case .integer(1) = reply else { throw unexpected("create session", reply) }
    }

    public func rotate(_ session: SessionID, of user: UserID, presented jti: String, next: RefreshTokenState,
                       ttl: Int64, grace: Int64, meta: SessionMeta, now: Int64) throws -> RotationOutcome {
        let reply = try eval(.rotate,
                             keys: [RedisKey.session(session, of: user), RedisKey.sessions(user)],
                             args: [session.rawValue, jti, next.jti, String(next.issuedAt), String(next.expiresAt),
                                    String(ttl), String(now), String(grace), meta.userAgent, meta.address])
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

    public func endSession(_ session: SessionID, of user: UserID) throws {
        _ = try eval(.endSession, keys: [RedisKey.session(session, of: user), RedisKey.sessions(user)], args: [session.rawValue])
    }

    public func endAllSessions(of user: UserID) throws {
        _ = try eval(.endAllSessions, keys: [RedisKey.sessions(user)], args: [RedisKey.sessionPrefix(user)])
    }

    // MARK: Login throttling

    public func takeAttempt(_ key: ThrottleKey, limit: Int, window: Int64) throws -> Int64? {
        let reply = try eval(.takeAttempt, keys: [RedisKey.attempts(key)], args: [String(window), String(limit)])
        guard case .integer(let wait) = reply else { throw unexpected("take attempt", reply) }
        return wait > 0 ? wait : nil
    }

    public func returnAttempt(_ key: ThrottleKey) throws {
        guard cleanUpAllowed else { return }
        _ = try eval(.returnAttempt, keys: [RedisKey.attempts(key)], args: [])
    }

    public func clearAttempts(_ key: ThrottleKey) throws {
        guard cleanUpAllowed else { return }
        _ = try run(["DEL", RedisKey.attempts(key)])
    }

    public func ping() throws {
        let reply = try run(["PING"])
        guard case .status("PONG") = reply else { throw unexpected("PING", reply) }
    }

    // MARK: Plumbing

    /// Whether a best-effort clean-up (releasing a name, uncounting a login attempt) may
    /// talk to Redis: not when the request's previous command timed out or broke the
    /// connection, since reconnecting to a Redis that does not answer would hold the
    /// request for another REDIS_TIMEOUT. What the clean-up would undo expires by itself
    /// (the name reservation after 60 s, the attempt with its window).
    private var cleanUpAllowed: Bool { connection.isConnected }

    /// A command whose Redis error reply is a store failure, not a client's mistake.
    private func run(_ args: [String]) throws -> RedisReply {
        let reply = try connection.command(args)
        if case .error = reply { throw unexpected(args[0], reply) }
        return reply
    }

    private func expectOK(_ args: [String]) throws {
        let reply = try run(args)
        if case .integer = reply { return }
        if case .status("OK") = reply { return }
        throw unexpected(args[0], reply)
    }

    /// EVALSHA, loading the script on first use and again after the server forgot it
    /// (a restart): NOSCRIPT means nothing ran, so the retry cannot apply a change twice.
    private func eval(_ script: Script, keys: [String], args: [String]) throws -> RedisReply {
        for _ in 0..<2 {
            let sha: String
            if let known = loaded[script] {
                sha = known
            } else {
                let r = try run(["SCRIPT", "LOAD", script.source])
                guard let s = r.text else { throw unexpected("SCRIPT LOAD", r) }
                loaded[script] = s
                sha = s
            }
            let reply = try connection.command(["EVALSHA", sha, String(keys.count)] + keys + args)
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

/// The Lua scripts: each runs atomically on the server.
enum Script: String, CaseIterable {
    case keepReservation, releaseReservation, createSession, rotate, endSession, endAllSessions
    case takeAttempt, returnAttempt

    var source: String {
        switch self {
        case .keepReservation:
            // KEYS: username index. ARGV: user id. 1 when the reservation is ours and now permanent.
            """
            if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
            redis.call('PERSIST', KEYS[1])
            return 1
            """
        case .releaseReservation:
            // KEYS: username index. ARGV: user id. Deletes only a reservation of this id
            // that is still pending (has a TTL), never a registered name.
            """
            if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('TTL', KEYS[1]) > 0 then
              redis.call('DEL', KEYS[1])
            end
            return 1
            """
        case .createSession:
            // KEYS: session, sessions set. ARGV: sid, jti, iat, exp, ttl, now, ua, ip, session key prefix.
            // Also drops ids of sessions that have expired since, so the set stays small.
            """
            redis.call('HSET', KEYS[1], 'jti', ARGV[2], 'iat', ARGV[3], 'exp', ARGV[4], 'createdAt', ARGV[6], 'lastUsedAt', ARGV[6], 'ua', ARGV[7], 'ip', ARGV[8])
            redis.call('EXPIRE', KEYS[1], ARGV[5])
            for _, sid in ipairs(redis.call('SMEMBERS', KEYS[2])) do
              if redis.call('EXISTS', ARGV[9] .. sid) == 0 then redis.call('SREM', KEYS[2], sid) end
            end
            redis.call('SADD', KEYS[2], ARGV[1])
            if redis.call('TTL', KEYS[2]) < tonumber(ARGV[5]) then redis.call('EXPIRE', KEYS[2], ARGV[5]) end
            return 1
            """
        case .rotate:
            // KEYS: session, sessions set. ARGV: sid, presented jti, new jti, new iat, new exp, ttl, now, grace, ua, ip.
            // Returns {1} rotated, {2, jti, iat, exp} retry within grace, {3} replay (session ended), {0} no session.
            """
            local s = redis.call('HMGET', KEYS[1], 'jti', 'prev', 'rotatedAt', 'iat', 'exp')
            if not s[1] then return {0} end
            if s[1] == ARGV[2] then
              redis.call('HSET', KEYS[1], 'jti', ARGV[3], 'iat', ARGV[4], 'exp', ARGV[5], 'prev', ARGV[2], 'rotatedAt', ARGV[7], 'lastUsedAt', ARGV[7], 'ua', ARGV[9], 'ip', ARGV[10])
              redis.call('EXPIRE', KEYS[1], ARGV[6])
              if redis.call('TTL', KEYS[2]) < tonumber(ARGV[6]) then redis.call('EXPIRE', KEYS[2], ARGV[6]) end
              return {1}
            end
            local grace = tonumber(ARGV[8])
            if grace > 0 and s[2] == ARGV[2] and tonumber(ARGV[7]) - tonumber(s[3]) <= grace then
              return {2, s[1], s[4], s[5]}
            end
            redis.call('DEL', KEYS[1])
            redis.call('SREM', KEYS[2], ARGV[1])
            return {3}
            """
        case .endSession:
            // KEYS: session, sessions set. ARGV: sid.
            """
            redis.call('DEL', KEYS[1])
            redis.call('SREM', KEYS[2], ARGV[1])
            return 1
            """
        case .endAllSessions:
            // KEYS: sessions set. ARGV: session key prefix. The session keys it builds carry
            // the same hash tag as KEYS[1], so they live in the same Cluster slot.
            """
            local ids = redis.call('SMEMBERS', KEYS[1])
            for _, sid in ipairs(ids) do redis.call('DEL', ARGV[1] .. sid) end
            redis.call('DEL', KEYS[1])
            return #ids
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
        }
    }
}
