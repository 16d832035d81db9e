import Foundation
import Testing

/// Looks into Redis (read-only, with redis-cli) for the storage rules of API.md that
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

    @Test func endedSessionLeavesNoSessionKey() throws {
        let user = try stack.newUser("gone")
        let sid = try #require(try JWT(user.tokens.refresh).string("sid"))
        expectNoContent(try stack.logout(user.tokens.refresh))
        let left = try keys(containing: sid)
        #expect(left.isEmpty, "session keys left after logout: \(left)")
    }
}
