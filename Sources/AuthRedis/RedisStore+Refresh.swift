import AuthCore

// What happens on refresh (POST /auth/refresh-token). The handler,
// `AuthService.refreshToken` (AuthCore/Handlers.swift), has checked the token's signature
// and claims, and asks `rotate` to trade the presented jti for a new one. In one script:
//
//   the presented jti is the session's current one  -> the new token becomes current  (.rotated)
//   it is the one just replaced, within REUSE_GRACE -> the current token, to re-issue (.retry)
//   (both with the user's name, for the access token's preferred_username)
//   it is any other (an older, replayed token)      -> the session is ended           (.replayed)
//   there is no such session                        -> nothing                        (.unknownSession)
//
// The handler answers 200 with a pair for the first two, 403 for the last two. Should the
// answer to a rotation be lost after Redis applied it, `UndoRotation` makes the presented
// token current again (a `RedisDebts` entry), so that the client's retry with it works.

extension RedisStore {
    public func rotate(_ session: SessionID, of user: UserID, presented jti: String, next: RefreshTokenState,
                       ttl: Int64, grace: Int64, meta: SessionMeta, now: Int64) throws -> RotationOutcome {
        try eval(Scripts.Rotate(session: session, user: user, presented: jti, next: next, ttl: ttl, now: now,
                                grace: grace, meta: meta),
                 undo: .undoRotation(session, of: user, next: next.jti))
    }
}

extension Scripts {
    struct Rotate: RedisScript {
        var session: SessionID, user: UserID, presented: String, next: RefreshTokenState
        var ttl: Int64, now: Int64, grace: Int64, meta: SessionMeta
        static let lua = LuaScript(
            "rotate", keys: ["session", "index", "user"],
            arguments: ["sid", "presented", "jti", "iat", "exp", "ttl", "now", "grace", "ua", "ip", "prefix"],
            sessionIndex: true, revokes: true, body: """
            local current, prev, rotated, current_iat, current_exp, created, used =
              unpack(redis.call('HMGET', session, 'jti', 'prev', 'rotatedAt', 'iat', 'exp', 'createdAt', 'lastUsedAt'))
            if not current then return {0} end
            upgrade(index, prefix)
            if current == presented then
              redis.call('HSET', session, 'jti', jti, 'iat', iat, 'exp', exp, 'prev', presented, 'prevIat', current_iat,
                         'prevExp', current_exp, 'rotatedAt', now, 'lastUsedAt', now, 'ua', ua, 'ip', ip)
              redis.call('EXPIRE', session, ttl)
              redis.call('ZREM', index, member(used, created, sid))
              redis.call('ZADD', index, 0, member(now, created, sid))
              if redis.call('TTL', index) < tonumber(ttl) then redis.call('EXPIRE', index, ttl) end
              return {1, redis.call('HGET', user, 'username') or ''}
            end
            if tonumber(grace) > 0 and prev == presented and tonumber(now) - tonumber(rotated) <= tonumber(grace) then
              return {2, current, current_iat, current_exp, redis.call('HGET', user, 'username') or ''}
            end
            redis.call('DEL', session)
            redis.call('ZREM', index, member(used, created, sid))
            revoke(sid)
            return {3}
            """)
        var keys: [RedisKey] { [.session(session, of: user), .sessions(user), .user(user)] }
        var arguments: [String] {
            [session.rawValue, presented, next.jti, String(next.issuedAt), String(next.expiresAt), String(ttl),
             String(now), String(grace), meta.userAgent, meta.address, RedisKey.sessionPrefix(user)]
        }
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) -> RotationOutcome {
            guard case .array(let r) = reply, case .integer(let code)? = r.first else { throw UnexpectedReply() }
            switch code {
            case 0: return .unknownSession
            case 3: return .replayed
            case 1:
                guard r.count == 2, let username = r[1].text else { throw UnexpectedReply() }
                return .rotated(username: username)
            case 2:
                guard r.count == 5, let jti = r[1].text, let iat = r[2].number, let exp = r[3].number,
                      let username = r[4].text else { throw UnexpectedReply() }
                return .retry(current: RefreshTokenState(jti: jti, issuedAt: iat, expiresAt: exp), username: username)
            default: throw UnexpectedReply()
            }
        }
    }

    /// Undoes a rotation whose new token (`rotatedTo`) nobody received: while that token is
    /// still current, the one it replaced is current again. True when undone.
    struct UndoRotation: RedisScript {
        var session: SessionID, user: UserID, rotatedTo: String
        init(session: SessionID, of user: UserID, rotatedTo: String) {
            (self.session, self.user, self.rotatedTo) = (session, user, rotatedTo)
        }
        static let lua = LuaScript("undoRotation", keys: ["session"], arguments: ["rotated_to"], body: """
            local current, prev, prev_iat, prev_exp = unpack(redis.call('HMGET', session, 'jti', 'prev', 'prevIat', 'prevExp'))
            if current ~= rotated_to or not prev or not prev_iat then return 0 end
            redis.call('HSET', session, 'jti', prev, 'iat', prev_iat, 'exp', prev_exp)
            redis.call('HDEL', session, 'prev', 'prevIat', 'prevExp', 'rotatedAt')
            return 1
            """)
        var keys: [RedisKey] { [.session(session, of: user)] }
        var arguments: [String] { [rotatedTo] }
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) -> Bool { try reply.flag() }
    }
}
