import Foundation
import Testing

/// Looks into Redis (read-only, with redis-cli) for the storage rules of docs/API.md that
/// HTTP cannot show: hash tags and session TTLs.
@Suite("Redis layout")
struct RedisLayoutTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    private func redis(_ arguments: [String]) throws -> [String] {
        let result = try runCommand("redis-cli", ["-s", stack.redisSocket] + arguments, directory: stack.dir)
        try #require(result.termination == .exited(0), "redis-cli \(arguments): \(result.output)")
        return result.output.split(separator: "\n").map(String.init)
    }

    private func keys(containing text: String) throws -> [String] {
        try redis(["--scan", "--pattern", "*\(text)*"])
    }

    @Test func everyKeyOfAUserCarriesTheUserIdAsHashTag() throws {
        let user = try stack.newUser("slot")
        _ = try stack.newSession(user)
        let userId = try #require(try JWT(user.tokens.access).string("sub"))
        let found = try keys(containing: userId)
        #expect(found.count >= 2, "keys of user \(userId): \(found)")
        for key in found {
            let tag = key.firstIndex(of: "{").flatMap { open in
                key[key.index(after: open)...].firstIndex(of: "}").map { String(key[key.index(after: open)..<$0]) }
            }
            #expect(tag == userId, "key \(key) is not tagged {\(userId)}")
        }
        for sid in [try JWT(user.tokens.refresh).string("sid")!] {
            let sessionKeys = try keys(containing: sid)
            #expect(!sessionKeys.isEmpty, "no key for session \(sid)")
            #expect(sessionKeys.allSatisfy { $0.contains("{\(userId)}") }, "\(sessionKeys)")
        }
    }

    @Test func sessionKeyLivesAsLongAsItsRefreshToken() throws {
        let user = try stack.newUser("ttl")
        let refresh = try JWT(user.tokens.refresh)
        let sessionKeys = try keys(containing: try #require(refresh.string("sid")))
        try #require(!sessionKeys.isEmpty)
        let remaining = refresh.int("exp")! - now
        for key in sessionKeys {
            let ttl = try #require(Int(try redis(["TTL", key]).first ?? ""), "TTL of \(key)")
            #expect(abs(ttl - remaining) <= 5, "TTL of \(key) is \(ttl) s, the token has \(remaining) s left")
        }
    }

    /// `auth:sessions:{<id>}` is a sorted set whose members sort as the session list does
    /// (score 0, `<9999999999 - lastUsedAt>:<9999999999 - createdAt>:<sid>`), so that a page
    /// or the least recently used session is one O(log n) lookup.
    @Test func sessionIndexIsASortedSetInTheListsOrder() throws {
        let user = try stack.newUser("index")
        waitForSecondAfter(now)
        let second = try stack.newSession(user)
        waitForSecondAfter(now)
        let refreshed = try stack.rotate(user.tokens.refresh)
        let key = "auth:sessions:{\(try userID(of: user.tokens.access))}"
        #expect(try redis(["TYPE", key]) == ["zset"])
        let members = try redis(["ZRANGE", key, "0", "-1", "WITHSCORES"])
        let list = try stack.listSessions(refreshed.access)
        try #require(members.count == 4 && list.count == 2, "\(members) \(list)")
        #expect(members[1] == "0" && members[3] == "0", "\(members)")
        for (member, entry) in zip([members[0], members[2]], list) {
            let parts = member.split(separator: ":").map(String.init)
            #expect(parts.count == 3 && parts[0].count == 10 && parts[1].count == 10, "\(member)")
            #expect(parts.last == entry.id, "\(member) vs \(entry)")
            #expect(Int(parts[0]).map { 9_999_999_999 - $0 } == entry.lastUsedSeconds, "\(member) vs \(entry)")
            #expect(Int(parts[1]).map { 9_999_999_999 - $0 } == entry.createdSeconds, "\(member) vs \(entry)")
        }
        #expect(list.map(\.id) == [try sessionID(of: refreshed.access), try sessionID(of: second.access)])
    }

    @Test func endedSessionLeavesNoSessionKey() throws {
        let user = try stack.newUser("gone")
        let sid = try #require(try JWT(user.tokens.refresh).string("sid"))
        expectNoContent(try stack.logout(user.tokens.refresh))
        let left = try keys(containing: sid)
        #expect(left.isEmpty, "session keys left after logout: \(left)")
    }
}
