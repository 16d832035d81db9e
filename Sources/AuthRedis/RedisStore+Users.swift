import AuthCore

// Registration and the username index. The name index and the user live in different
// Cluster slots, so a registration is several scripts: reserve the name (with a TTL), add
// the user pending (invisible to logins, expiring with the reservation), make the
// reservation permanent if it is still ours, confirm the user. A failure on the way is
// undone by `releaseUsername` (AuthService.register calls it).

extension RedisStore {
    public func reserveUsername(_ username: String, for id: UserID, ttl: Int64) throws -> Bool {
        let reserve = Scripts.ReserveName(username: username, owner: id, ttl: ttl)
        let undo = RedisDebts.Debt.undoRegistration(username: username, id: id)
        if try eval(reserve, undo: undo) { return true }
        return try dropStaleName(username) && eval(reserve, undo: undo)
    }

    /// Frees a name whose user is gone: an account deletion that stopped between its two
    /// steps (user, then name; different Cluster slots) leaves the name index behind.
    /// `createUser` writes the user before it makes the name permanent, and user ids are
    /// never reused, so a name that was already permanent when its user was found missing
    /// is stale for good. (Checked in that order: a name still pending may be a
    /// registration about to write its user.) True when the name may be free now. Runs
    /// only when a registration finds the name taken.
    private func dropStaleName(_ username: String) throws -> Bool {
        guard let owner = try eval(Scripts.PermanentOwner(username: username)) else { return false }
        guard case .integer(0) = try read("EXISTS", .user(owner)) else { return false }
        return try eval(Scripts.ReleaseName(username: username, owner: owner, state: .permanent))
    }

    public func createUser(_ user: UserRecord) throws -> Bool {
        try eval(Scripts.AddPendingUser(user: user, ttl: AuthService.reservationTTL))
        guard try eval(Scripts.KeepReservation(username: user.username, owner: user.id)) else { return false }
        guard try eval(Scripts.ConfirmUser(user: user.id)) else {
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
        let reply = try read("GET", .username(username))
        let id: UserID?
        switch reply {
        case .string(let raw): id = UserID(String(decoding: raw, as: UTF8.self))
        case .null: id = nil
        default: throw unexpected("GET", reply)
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
        let reply = try read("HMGET", .user(id), "username", "hash", "createdAt", "pending")
        guard case .array(let f) = reply, f.count == 4 else { throw unexpected("HMGET", reply) }
        guard let username = f[0].text, let hash = f[1].text, let created = f[2].number, f[3] == .null else { return nil }
        return UserRecord(id: id, username: username, passwordHash: hash, createdAt: created)
    }
}

extension Scripts {
    /// Reserves a free name for `ttl` seconds. True when reserved; false when it is taken.
    struct ReserveName: RedisScript {
        var username: String, owner: UserID, ttl: Int64
        static let lua = LuaScript("reserveName", keys: ["name"], arguments: ["owner", "ttl"], body: """
            return redis.call('SET', name, owner, 'NX', 'EX', ttl)
            """)
        var keys: [RedisKey] { [.username(username)] }
        var arguments: [String] { [owner.rawValue, String(ttl)] }
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) -> Bool {
            switch reply {
            case .status("OK"): true
            case .null: false
            default: throw UnexpectedReply()
            }
        }
    }

    /// Writes the user, pending until `ConfirmUser` and gone by itself after `ttl` if never confirmed.
    struct AddPendingUser: RedisScript {
        var user: UserRecord, ttl: Int64
        static let lua = LuaScript("addPendingUser", keys: ["user"], arguments: ["username", "hash", "created", "ttl"], body: """
            redis.call('HSET', user, 'username', username, 'hash', hash, 'createdAt', created, 'pending', '1')
            redis.call('EXPIRE', user, ttl)
            return 1
            """)
        var keys: [RedisKey] { [.user(user.id)] }
        var arguments: [String] { [user.username, user.passwordHash, String(user.createdAt), String(ttl)] }
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) { _ = try reply.integer() }
    }

    /// Makes the name's reservation permanent. True when it was still `owner`'s.
    struct KeepReservation: RedisScript {
        var username: String, owner: UserID
        static let lua = LuaScript("keepReservation", keys: ["name"], arguments: ["owner"], body: """
            if redis.call('GET', name) ~= owner then return 0 end
            redis.call('PERSIST', name)
            return 1
            """)
        var keys: [RedisKey] { [.username(username)] }
        var arguments: [String] { [owner.rawValue] }
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) -> Bool { try reply.flag() }
    }

    /// Makes a pending user permanent. True when done; false when it is gone (expired).
    struct ConfirmUser: RedisScript {
        var user: UserID
        static let lua = LuaScript("confirmUser", keys: ["user"], body: """
            if redis.call('EXISTS', user) == 0 then return 0 end
            redis.call('HDEL', user, 'pending')
            redis.call('PERSIST', user)
            return 1
            """)
        var keys: [RedisKey] { [.user(user)] }
        var arguments: [String] { [] }
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) -> Bool { try reply.flag() }
    }

    /// Deletes the user and any session of it (a registration whose answer was lost).
    struct DiscardUser: RedisScript {
        var user: UserID
        static let lua = LuaScript("discardUser", keys: ["user", "index"], arguments: ["prefix"], sessionIndex: true, revokes: true,
                                   body: """
            upgrade(index, prefix)
            for _, m in ipairs(redis.call('ZRANGE', index, 0, -1)) do
              if redis.call('DEL', prefix .. sid_of(m)) == 1 then revoke(sid_of(m)) end
            end
            return redis.call('DEL', user, index)
            """)
        var keys: [RedisKey] { [.user(user), .sessions(user)] }
        var arguments: [String] { [RedisKey.sessionPrefix(user)] }
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) { _ = try reply.integer() }
    }

    /// The user a name belongs to if the name is permanent (registered), else nil: the id
    /// and the TTL read together, so the id is the one that was permanent.
    struct PermanentOwner: RedisScript {
        var username: String
        static let lua = LuaScript("permanentOwner", keys: ["name"], body: """
            local id = redis.call('GET', name)
            if id and redis.call('TTL', name) == -1 then return id end
            return false
            """)
        var keys: [RedisKey] { [.username(username)] }
        var arguments: [String] { [] }
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) -> UserID? {
            switch reply {
            case .string(let raw): UserID(String(decoding: raw, as: UTF8.self))
            case .null: nil
            default: throw UnexpectedReply()
            }
        }
    }

    /// Deletes the name only while it is `owner`'s and in `state`. True when deleted.
    struct ReleaseName: RedisScript {
        enum State: String {
            /// A reservation (with a TTL).
            case pending
            /// A registered name (no TTL).
            case permanent
            case any
        }
        var username: String, owner: UserID, state: State
        static let lua = LuaScript("releaseName", keys: ["name"], arguments: ["owner", "state"], body: """
            if redis.call('GET', name) ~= owner then return 0 end
            local ttl = redis.call('TTL', name)
            if (state == 'pending' and ttl < 0) or (state == 'permanent' and ttl ~= -1) then return 0 end
            return redis.call('DEL', name)
            """)
        var keys: [RedisKey] { [.username(username)] }
        var arguments: [String] { [owner.rawValue, state.rawValue] }
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) -> Bool { try reply.flag() }
    }
}
