import AuthCore

// Password change and account deletion: each one script on the user's slot, conditional
// on the stored hash being the one the handler checked the password against.

extension RedisStore {
    public func changePassword(of user: UserID, from old: String, to new: String, keeping kept: SessionID) throws -> Bool {
        try eval(Scripts.ChangePassword(user: user, old: old, new: new, kept: kept))
    }

    public func deleteUser(_ user: UserRecord) throws -> Bool {
        guard try eval(Scripts.DeleteUser(user: user)) else { return false }
        // The account is gone; freeing the name is the second step, in the name's slot. If
        // it fails here, the next registration of the name frees it (`dropStaleName`).
        if connection.isConnected {
            _ = try? eval(Scripts.ReleaseName(username: user.username, owner: user.id, state: .any))
        }
        return true
    }
}

extension Scripts {
    /// Sets the new hash and ends every session but `kept`, unless the stored hash is not
    /// `old` (then nothing changes). One step with respect to `CreateSession` and `Rotate`:
    /// a login that checked the old password cannot add a session afterwards, and no other
    /// session outlives it. O(n), n at most the cap. True when changed.
    struct ChangePassword: RedisScript {
        var user: UserID, old: String, new: String, kept: SessionID
        static let lua = LuaScript(
            "changePassword", keys: ["user", "index"], arguments: ["old_hash", "new_hash", "kept", "prefix"],
            sessionIndex: true, revokes: true, body: """
            if redis.call('HGET', user, 'hash') ~= old_hash then return 0 end
            redis.call('HSET', user, 'hash', new_hash)
            upgrade(index, prefix)
            for _, m in ipairs(redis.call('ZRANGE', index, 0, -1)) do
              if sid_of(m) ~= kept then
                if redis.call('DEL', prefix .. sid_of(m)) == 1 then revoke(sid_of(m)) end
                redis.call('ZREM', index, m)
              end
            end
            return 1
            """)
        var keys: [RedisKey] { [.user(user), .sessions(user)] }
        var arguments: [String] { [old, new, kept.rawValue, RedisKey.sessionPrefix(user)] }
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) -> Bool { try reply.flag() }
    }

    /// Deletes the user and its sessions, unless the stored hash is not the record's (then
    /// nothing). O(n), n at most the cap. True when deleted; the name is freed after.
    struct DeleteUser: RedisScript {
        var user: UserRecord
        static let lua = LuaScript("deleteUser", keys: ["user", "index"], arguments: ["hash", "prefix"], sessionIndex: true,
                                   revokes: true, body: """
            if redis.call('HGET', user, 'hash') ~= hash then return 0 end
            upgrade(index, prefix)
            for _, m in ipairs(redis.call('ZRANGE', index, 0, -1)) do
              if redis.call('DEL', prefix .. sid_of(m)) == 1 then revoke(sid_of(m)) end
            end
            redis.call('DEL', user, index)
            return 1
            """)
        var keys: [RedisKey] { [.user(user.id), .sessions(user.id)] }
        var arguments: [String] { [user.passwordHash, RedisKey.sessionPrefix(user.id)] }
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) -> Bool { try reply.flag() }
    }
}
