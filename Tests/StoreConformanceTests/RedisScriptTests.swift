import AuthCore
@testable import AuthRedis
import Testing

/// The script layer itself, on the same redis-server as the conformance suite.
@Suite("Redis scripts")
struct RedisScriptTests {
    @Test("every script compiles in Redis, which names it by the SHA-1 computed here")
    func everyScriptLoads() throws {
        let connection = try Self.connection()
        #expect(Scripts.all.count == 18)
        #expect(Set(Scripts.all.map(\.name)).count == Scripts.all.count)
        for lua in Scripts.all {
            let reply = try connection.command(["SCRIPT", "LOAD", lua.source])
            #expect(reply == .string(Array(lua.sha.utf8)), "\(lua.name): \(reply)")
        }
    }

    @Test("keys and arguments reach the body as locals under their names, after the deadline guard")
    func namedLocals() {
        let source = Scripts.Rotate.lua.source
        #expect(source.hasPrefix(LuaScript.deadlineGuard))
        #expect(source.contains("local session, index, user, revocations = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n"))
        #expect(source.contains("local sid, presented, jti, iat, exp, ttl, now, grace, ua, ip, prefix, revoke_ttl = ARGV[1], ARGV[2], "))
        #expect(source.contains("local function revoke(sid)"))
        #expect(source.contains("local function upgrade("))
        #expect(!Scripts.TakeAttempt.lua.source.contains("local function upgrade("))
        #expect(!Scripts.ClearAttempts.lua.source.contains("ARGV[1]"))
    }

    @Test("a script that starts after its deadline answers LATE and changes nothing")
    func lateScriptChangesNothing() throws {
        let connection = try Self.connection()
        let user = UserID("late-\(UInt64.random(in: 0...UInt64.max))")
        let script = Scripts.AddPendingUser(user: UserRecord(id: user, username: "late", passwordHash: "h", createdAt: 1), ttl: 60)
        let lua = Scripts.AddPendingUser.lua
        _ = try connection.command(["SCRIPT", "LOAD", lua.source])
        // The deadline (the first ARGV) one second before Redis's clock started counting.
        let reply = try connection.command(["EVALSHA", lua.sha, "1"] + script.keys.map(\.rawValue) + ["0"] + script.arguments)
        guard case .error(let message) = reply else { Issue.record("not refused: \(reply)"); return }
        #expect(message.hasPrefix("LATE"))
        #expect(try connection.command(["EXISTS", RedisKey.user(user).rawValue]) == .integer(0))
        // In time (the connection's own deadline), the same script writes the user.
        #expect(try connection.evalsha(lua.sha, keys: script.keys.map(\.rawValue), args: script.arguments) == .integer(1))
        #expect(try connection.command(["EXISTS", RedisKey.user(user).rawValue]) == .integer(1))
    }

    @Test("replies a script does not answer are refused, not guessed at")
    func unexpectedRepliesAreRefused() {
        let wrong: [RedisReply] = [.null, .integer(7), .array([]), .array([.integer(9)]), .array([.integer(2), .string([])]),
                                   .error("ERR"), .status("OK")]
        for reply in wrong {
            #expect(throws: UnexpectedReply.self) { try Scripts.Rotate.decode(reply) }
        }
        #expect(throws: UnexpectedReply.self) { try Scripts.CreateSession.decode(.integer(-2)) }
        #expect(throws: UnexpectedReply.self) { try Scripts.KeepReservation.decode(.integer(2)) }
        #expect(throws: UnexpectedReply.self) { try Scripts.ReserveName.decode(.status("QUEUED")) }
        #expect(throws: UnexpectedReply.self) { try Scripts.ListSessions.decode(.array([.integer(0), .string([]), .string([])])) }
        #expect(throws: UnexpectedReply.self) { try Scripts.ReturnAttempt.decode(.error("OOM")) }
        #expect((try? Scripts.Rotate.decode(.array([.integer(3)]))) == .replayed)
        #expect((try? Scripts.TakeAttempt.decode(.integer(0))) == .some(nil))
    }

    @Test func theFeedReadsWhatTheScriptsPublish() {
        #expect(RevocationFeed.entry("abc 1800000000")! == ("abc", 1_800_000_000))
        for bad in [nil, "", "abc", "abc x", "abc 1 2", " 1"] as [String?] { #expect(RevocationFeed.entry(bad) == nil, "\(bad ?? "nil")") }
    }

    static func connection() throws -> RedisConnection {
        RedisConnection(endpoint: .unix(path: try RedisServer.shared.get().socket, database: 0, password: nil), timeoutSeconds: 2)
    }
}
