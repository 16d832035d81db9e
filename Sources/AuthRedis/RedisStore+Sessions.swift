import AuthCore

// Sessions: one hash per session (`RedisKey.session`) and the user's session index
// (`SessionIndex`), written together by every script here. Rotation is in `+Refresh`.

extension RedisStore {
    public func createSession(_ session: SessionID, of user: UserID, token: RefreshTokenState, ttl: Int64,
                              meta: SessionMeta, now: Int64, passwordHash: String, cap: Int) throws -> SessionStart {
        try eval(Scripts.CreateSession(session: session, user: user, token: token, ttl: ttl, meta: meta, now: now,
                                       passwordHash: passwordHash, cap: cap),
                 undo: .undoSession(session, of: user))
    }

    @discardableResult
    public func endSession(_ session: SessionID, of user: UserID) throws -> Bool {
        try eval(Scripts.EndSession(session: session, of: user))
    }

    public func endAllSessions(of user: UserID) throws {
        try eval(Scripts.EndAllSessions(user: user))
    }

    public func sessions(of user: UserID, after: SessionPosition?, limit: Int) throws -> SessionPage {
        try eval(Scripts.ListSessions(user: user, after: after, limit: limit))
    }

    public func sessionExists(_ session: SessionID, of user: UserID) throws -> Bool {
        let reply = try read("EXISTS", .session(session, of: user))
        guard case .integer(let n) = reply else { throw unexpected("EXISTS", reply) }
        return n == 1
    }
}

extension Scripts {
    /// Starts a session, unless the user's hash is no longer `passwordHash` (the password
    /// changed or the account is gone): then nothing is written. Ends the least recently
    /// used sessions beyond `cap`, never the new one. Also drops from the end of the index a
    /// few ids of sessions that have expired (a session expires a fixed time after its last
    /// use, so the expired ones are the last), so the index does not fill with them.
    struct CreateSession: RedisScript {
        var session: SessionID, user: UserID, token: RefreshTokenState, ttl: Int64
        var meta: SessionMeta, now: Int64, passwordHash: String, cap: Int
        static let lua = LuaScript(
            "createSession", keys: ["session", "index", "user"],
            arguments: ["sid", "jti", "iat", "exp", "ttl", "now", "ua", "ip", "prefix", "hash", "cap"], sessionIndex: true,
            revokes: true, body: """
            if redis.call('HGET', user, 'hash') ~= hash then return -1 end
            upgrade(index, prefix)
            redis.call('HSET', session, 'jti', jti, 'iat', iat, 'exp', exp, 'createdAt', now, 'lastUsedAt', now, 'ua', ua, 'ip', ip)
            redis.call('EXPIRE', session, ttl)
            local new = member(now, now, sid)
            redis.call('ZADD', index, 0, new)
            if redis.call('TTL', index) < tonumber(ttl) then redis.call('EXPIRE', index, ttl) end
            for _ = 1, 8 do
              local last = redis.call('ZRANGE', index, -1, -1)[1]
              if last == new or redis.call('EXISTS', prefix .. sid_of(last)) == 1 then break end
              redis.call('ZREM', index, last)
            end
            local evicted = 0
            local excess = redis.call('ZCARD', index) - tonumber(cap)
            if excess > 0 then
              local tail = redis.call('ZRANGE', index, -(excess + 1), -1)
              for i = #tail, 1, -1 do
                if excess > 0 and tail[i] ~= new then
                  if redis.call('DEL', prefix .. sid_of(tail[i])) == 1 then
                    evicted = evicted + 1
                    revoke(sid_of(tail[i]))
                  end
                  redis.call('ZREM', index, tail[i])
                  excess = excess - 1
                end
              end
            end
            return evicted
            """)
        var keys: [RedisKey] { [.session(session, of: user), .sessions(user), .user(user)] }
        var arguments: [String] {
            [session.rawValue, token.jti, String(token.issuedAt), String(token.expiresAt), String(ttl), String(now),
             meta.userAgent, meta.address, RedisKey.sessionPrefix(user), passwordHash, String(cap)]
        }
        /// -1 when refused, else how many sessions were ended to keep within the cap.
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) -> SessionStart {
            let evicted = try reply.integer()
            guard evicted >= -1 else { throw UnexpectedReply() }
            return evicted < 0 ? .refused : .started(evicted: Int(evicted))
        }
    }

    /// Ends one session. True when it existed.
    struct EndSession: RedisScript {
        var session: SessionID, user: UserID
        init(session: SessionID, of user: UserID) { (self.session, self.user) = (session, user) }
        static let lua = LuaScript("endSession", keys: ["session", "index"], arguments: ["sid", "prefix"], sessionIndex: true,
                                   revokes: true, body: """
            upgrade(index, prefix)
            local created, used = unpack(redis.call('HMGET', session, 'createdAt', 'lastUsedAt'))
            local n = redis.call('DEL', session)
            if n == 1 then
              redis.call('ZREM', index, member(used, created, sid))
              revoke(sid)
            end
            return n
            """)
        var keys: [RedisKey] { [.session(session, of: user), .sessions(user)] }
        var arguments: [String] { [session.rawValue, RedisKey.sessionPrefix(user)] }
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) -> Bool { try reply.integer() > 0 }
    }

    /// Ends every session of a user: O(n), n at most the cap. The session keys it builds
    /// carry the index's hash tag, so they live in the same Cluster slot.
    struct EndAllSessions: RedisScript {
        var user: UserID
        static let lua = LuaScript("endAllSessions", keys: ["index"], arguments: ["prefix"], sessionIndex: true, revokes: true,
                                   body: """
            upgrade(index, prefix)
            local members = redis.call('ZRANGE', index, 0, -1)
            for _, m in ipairs(members) do
              if redis.call('DEL', prefix .. sid_of(m)) == 1 then revoke(sid_of(m)) end
            end
            redis.call('DEL', index)
            return #members
            """)
        var keys: [RedisKey] { [.sessions(user)] }
        var arguments: [String] { [RedisKey.sessionPrefix(user)] }
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) { _ = try reply.integer() }
    }

    /// One page of a user's sessions in the index's order, starting after a position (all
    /// three `after_` arguments empty for the first page). Answers
    /// `{more, lastUsedAt, createdAt, sid, ...}`: more is 1 when sessions may follow, the
    /// next page starting after that position; then five per session: sid, createdAt,
    /// lastUsedAt, ua, ip. Ids of expired sessions met on the way are dropped, and at most
    /// 2 * limit + 1 members are looked at, so a call is O(log n + limit) whatever the index holds.
    struct ListSessions: RedisScript {
        var user: UserID, after: SessionPosition?, limit: Int
        static let lua = LuaScript(
            "listSessions", keys: ["index"], arguments: ["prefix", "limit", "after_used", "after_created", "after_sid"],
            sessionIndex: true, body: """
            upgrade(index, prefix)
            local wanted = tonumber(limit)
            local start = '-'
            if after_sid ~= '' then start = '(' .. member(after_used, after_created, after_sid) end
            local out = {0, '', '', ''}
            local function more(m)
              out[1] = 1
              out[2] = string.format('%d', 9999999999 - tonumber(string.sub(m, 1, 10)))
              out[3] = string.format('%d', 9999999999 - tonumber(string.sub(m, 12, 21)))
              out[4] = sid_of(m)
              return out
            end
            local live, budget, last = 0, 2 * wanted + 1, nil
            while budget > 0 do
              local want = math.min(wanted + 1 - live, budget)
              local batch = redis.call('ZRANGEBYLEX', index, start, '+', 'LIMIT', 0, want)
              for _, m in ipairs(batch) do
                local sid = sid_of(m)
                local s = redis.call('HMGET', prefix .. sid, 'jti', 'createdAt', 'lastUsedAt', 'ua', 'ip')
                if s[1] then
                  if live == wanted then return more(last) end
                  live = live + 1
                  for _, v in ipairs({sid, s[2] or '0', s[3] or s[2] or '0', s[4] or '', s[5] or ''}) do out[#out + 1] = v end
                else
                  redis.call('ZREM', index, m)
                end
                last = m
                budget = budget - 1
              end
              if #batch < want then return out end
              start = '(' .. last
            end
            return more(last)
            """)
        var keys: [RedisKey] { [.sessions(user)] }
        var arguments: [String] {
            [RedisKey.sessionPrefix(user), String(limit),
             after.map { String($0.lastUsedAt) } ?? "", after.map { String($0.createdAt) } ?? "", after?.id.rawValue ?? ""]
        }
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) -> SessionPage {
            guard case .array(let r) = reply, r.count >= 4, r.count % 5 == 4, case .integer(let more) = r[0] else {
                throw UnexpectedReply()
            }
            var next: SessionPosition?
            if more == 1 {
                guard let used = r[1].number, let created = r[2].number, let sid = r[3].text else { throw UnexpectedReply() }
                next = SessionPosition(lastUsedAt: used, createdAt: created, id: SessionID(sid))
            }
            var sessions: [SessionInfo] = []
            for i in stride(from: 4, to: r.count, by: 5) {
                guard let id = r[i].text, let created = r[i + 1].number, let used = r[i + 2].number,
                      let agent = r[i + 3].text, let address = r[i + 4].text else { throw UnexpectedReply() }
                sessions.append(SessionInfo(id: SessionID(id), createdAt: created, lastUsedAt: used,
                                            meta: SessionMeta(userAgent: agent, address: address)))
            }
            return SessionPage(sessions: sessions, next: next)
        }
    }
}
