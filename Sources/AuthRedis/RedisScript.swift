import AuthCore
import AuthCrypto

/// One Lua script: its text, its SHA, its typed arguments and its typed result. A request
/// for it is a value of the type (its keys and arguments); `RedisStore.eval` sends it with
/// `EVALSHA` and decodes the reply with `decode`. Each feature's scripts live next to the
/// store methods that run them (`RedisStore+Users.swift`, `+Sessions`, `+Refresh`, ...).
protocol RedisScript {
    associatedtype Result
    /// The Lua text and SHA, built once per type.
    static var lua: LuaScript { get }
    /// In the order of `lua.keys`.
    var keys: [RedisKey] { get }
    /// In the order of `lua.arguments`.
    var arguments: [String] { get }
    /// The result, or `UnexpectedReply` for anything the script does not answer.
    static func decode(_ reply: RedisReply) throws(UnexpectedReply) -> Result
}

/// A reply that the script's type does not describe: a store failure (503), never a
/// client's mistake.
struct UnexpectedReply: Error {}

/// A script's Lua source, as Redis runs it, and the SHA-1 by which Redis knows it.
///
/// The source is the deadline guard, then one `local` per key and argument under the
/// names given (so a body reads `redis.call('HGET', user, 'hash') ~= hash`, not
/// `KEYS[3]` and `ARGV[10]`), then the session index's functions for the scripts that
/// touch one, then the body. A script that ends sessions (`revokes`) also gets the key
/// `revocations` and the argument `revoke_ttl`, which `RedisStore.eval` adds, and the
/// function `revoke(sid)`, which it must call for each session it ends.
struct LuaScript: Sendable {
    let name: String
    let keys: [String]
    let arguments: [String]
    let revokes: Bool
    let source: String
    let sha: String

    init(_ name: String, keys: [String], arguments: [String] = [], sessionIndex: Bool = false, revokes: Bool = false,
         body: String) {
        let keys = keys + (revokes ? ["revocations"] : []), arguments = arguments + (revokes ? ["revoke_ttl"] : [])
        let names = keys + arguments
        precondition(Set(names).count == names.count && Set(names).isDisjoint(with: Self.reserved),
                     "script \(name): key and argument names must be distinct Lua names not used by the preludes")
        func locals(_ names: [String], _ table: String) -> String {
            names.isEmpty ? "" : "local \(names.joined(separator: ", ")) = "
                + names.indices.map { "\(table)[\($0 + 1)]" }.joined(separator: ", ") + "\n"
        }
        self.name = name
        self.keys = keys
        self.arguments = arguments
        self.revokes = revokes
        source = Self.deadlineGuard + locals(keys, "KEYS") + locals(arguments, "ARGV")
            + (sessionIndex ? SessionIndex.functions : "") + (revokes ? Self.revoke : "") + body
        sha = Digest.sha1Hex(source)
    }

    /// Names the preludes define, or that a local must not hide.
    static let reserved: Set<String> = ["deadline", "clock", "member", "sid_of", "upgrade", "revoke", "redis", "KEYS", "ARGV",
                                        "table", "string", "math", "tonumber", "tostring", "ipairs", "unpack", "next", "type"]

    /// The first ARGV, which every script is sent (`RedisConnection.evalsha`), is its
    /// deadline in microseconds on Redis's clock: past it the script answers an error and
    /// changes nothing. The guard takes it out of ARGV, so each script's ARGV starts at its
    /// own arguments. (Redis 5+ replicates a script's effects, so `TIME` before a write is allowed.)
    static let deadlineGuard = """
        local deadline = tonumber(table.remove(ARGV, 1))
        local clock = redis.call('TIME')
        if tonumber(clock[1]) * 1000000 + tonumber(clock[2]) > deadline then
          return redis.error_reply('LATE the script started after its deadline; nothing was changed')
        end

        """

    /// `revoke(sid)`: logs an ended session with the moment until which its access tokens
    /// may still be presented (now on Redis's clock plus `revoke_ttl`), dropping what has
    /// passed, and announces it to every authd (`RevocationFeed`). In the same script as
    /// the end of the session, so none is ended unannounced.
    static let revoke = """
        local pruned = false
        local function revoke(sid)
          local now_s = tonumber(clock[1])
          if not pruned then
            redis.call('ZREMRANGEBYSCORE', revocations, '-inf', now_s)
            pruned = true
          end
          local until_s = now_s + tonumber(revoke_ttl)
          redis.call('ZADD', revocations, until_s, sid)
          redis.call('PUBLISH', revocations, sid .. ' ' .. string.format('%d', until_s))
        end

        """
}

/// A user's session index (`auth:sessions:{<id>}`).
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
enum SessionIndex {
    static let functions = """
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
}

extension RedisReply {
    /// A bulk string or integer reply as a number.
    var number: Int64? { if case .integer(let n) = self { n } else { text.flatMap { Int64($0) } } }

    /// The integer of an integer reply, else `UnexpectedReply`.
    func integer() throws(UnexpectedReply) -> Int64 {
        guard case .integer(let n) = self else { throw UnexpectedReply() }
        return n
    }

    /// An integer reply of 1 (true) or 0 (false), else `UnexpectedReply`.
    func flag() throws(UnexpectedReply) -> Bool {
        switch self {
        case .integer(1): true
        case .integer(0): false
        default: throw UnexpectedReply()
        }
    }
}
