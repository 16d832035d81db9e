import AuthCore

// The login throttle's failed-attempt counters (`LoginThrottle` decides what counts).

extension RedisStore {
    public func takeAttempt(_ key: ThrottleKey, limit: Int, window: Int64) throws -> Int64? {
        try eval(Scripts.TakeAttempt(counter: key, window: window, limit: limit))
    }

    public func returnAttempt(_ key: ThrottleKey) throws {
        cleanUp(.returnAttempt(key))
    }

    public func clearAttempts(_ key: ThrottleKey) throws {
        cleanUp(.clearAttempts(key))
    }
}

extension Scripts {
    /// Counts an attempt in the window that the first one opened. Nil when counted; else
    /// the seconds (at least 1) until the window closes, the attempt not counted.
    struct TakeAttempt: RedisScript {
        var counter: ThrottleKey, window: Int64, limit: Int
        static let lua = LuaScript("takeAttempt", keys: ["counter"], arguments: ["window", "limit"], body: """
            local n = redis.call('INCR', counter)
            local ttl = redis.call('TTL', counter)
            if ttl < 0 then
              redis.call('EXPIRE', counter, window)
              ttl = tonumber(window)
            end
            if n <= tonumber(limit) then return 0 end
            redis.call('DECR', counter)
            return math.max(ttl, 1)
            """)
        var keys: [RedisKey] { [.attempts(counter)] }
        var arguments: [String] { [String(window), String(limit)] }
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) -> Int64? {
            let wait = try reply.integer()
            return wait > 0 ? wait : nil
        }
    }

    /// Gives an attempt back: never below zero, never creates the counter.
    struct ReturnAttempt: RedisScript {
        var counter: ThrottleKey
        static let lua = LuaScript("returnAttempt", keys: ["counter"], body: """
            if tonumber(redis.call('GET', counter) or '0') > 0 then redis.call('DECR', counter) end
            return 1
            """)
        var keys: [RedisKey] { [.attempts(counter)] }
        var arguments: [String] { [] }
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) { _ = try reply.integer() }
    }

    struct ClearAttempts: RedisScript {
        var counter: ThrottleKey
        static let lua = LuaScript("clearAttempts", keys: ["counter"], body: """
            return redis.call('DEL', counter)
            """)
        var keys: [RedisKey] { [.attempts(counter)] }
        var arguments: [String] { [] }
        static func decode(_ reply: RedisReply) throws(UnexpectedReply) { _ = try reply.integer() }
    }
}
