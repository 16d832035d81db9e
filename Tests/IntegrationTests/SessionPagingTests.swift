import Foundation
import Testing

@Suite("GET /auth/sessions?limit=&cursor=")
struct SessionPagingTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    /// A user with `count` sessions in all (the registration and count - 1 logins).
    func user(with count: Int) throws -> User {
        let user = try stack.newUser("pages")
        for _ in 1..<count { _ = try stack.newSession(user) }
        return user
    }

    @Test func walkingWithLimit2SeesEverySessionOnceInOrder() throws {
        let user = try user(with: 5)
        let whole = try stack.sessionPage(user.tokens.access, limit: 100)
        #expect(whole.entries.count == 5 && whole.next == nil, "\(whole)")
        let pages = try stack.allSessionPages(user.tokens.access, limit: 2)
        #expect(pages.map(\.count) == [2, 2, 1], "\(pages)")
        #expect(pages.flatMap { $0 }.map(\.id) == whole.entries.map(\.id), "\(pages) vs \(whole.entries)")
        expectOrdered(pages.flatMap { $0 })
        #expect(pages.flatMap { $0 }.filter(\.current).map(\.id) == [try sessionID(of: user.tokens.access)])
    }

    @Test func aPageOfExactlyTheRestEndsWithANullCursor() throws {
        let user = try user(with: 4)
        let pages = try stack.allSessionPages(user.tokens.access, limit: 2)
        #expect(pages.map(\.count) == [2, 2], "\(pages)")
        #expect(Set(pages.flatMap { $0 }.map(\.id)).count == 4)
        let one = try stack.sessionPage(user.tokens.access, limit: 4)
        #expect(one.entries.count == 4 && one.next == nil)
    }

    /// Without `limit`, a page holds 50: an answer's size is bounded by the page, not by
    /// the user's count.
    @Test func theDefaultPageHolds50() throws {
        let user = try user(with: 53)
        let first = try stack.sessionPage(user.tokens.access)
        #expect(first.entries.count == 50, "\(first.entries.count) sessions on the first page")
        let cursor = try #require(first.next, "no nextCursor after 50 of 53 sessions")
        let rest = try stack.sessionPage(user.tokens.access, cursor: cursor)
        #expect(rest.entries.count == 3 && rest.next == nil, "\(rest)")
        #expect(Set((first.entries + rest.entries).map(\.id)).count == 53)
        // The plain route is that first page (what clients without parameters get).
        #expect(try stack.listSessions(user.tokens.access).map(\.id) == first.entries.map(\.id))
    }

    @Test func aSessionEndedBetweenPagesIsNotListedAndNothingRepeats() throws {
        let user = try user(with: 5)
        let first = try stack.sessionPage(user.tokens.access, limit: 2)
        let cursor = try #require(first.next)
        // End a session that the next page would show (not the caller's: its token would end with it).
        let rest = try stack.sessionPage(user.tokens.access, limit: 10, cursor: cursor)
        let victim = try #require(rest.entries.first { !$0.current })
        expectNoContent(try stack.endSession(victim.id, user.tokens.access))
        let after = try stack.sessionPage(user.tokens.access, limit: 10, cursor: cursor)
        #expect(after.entries.map(\.id) == rest.entries.map(\.id).filter { $0 != victim.id }, "\(after.entries) vs \(rest.entries)")
        #expect(Set(after.entries.map(\.id)).isDisjoint(with: first.entries.map(\.id)))
    }

    @Test(arguments: ["limit=0", "limit=101", "limit=-1", "limit=abc", "limit=1.5", "limit=", "limit", "limit=%2B5",
                      "limit=99999999999999999999", "limit=2&limit=3", "limit=%G1"])
    func badLimitIs400NamingIt(query: String) throws {
        let user = try stack.newUser("badlimit")
        let response = try stack.sessions(user.tokens.access, query: query)
        expectError(response, status: 400)
        let message = (response.object?["error"] as? [String: Any])?["message"] as? String ?? ""
        #expect(message.contains("\"limit\""), "\(query): \(response)")
    }

    @Test(arguments: ["cursor=", "cursor=abc", "cursor=" + String(repeating: "A", count: 33), "cursor=" + String(repeating: "A", count: 35),
                      "cursor=" + String(repeating: "A", count: 33) + "*", "cursor=" + String(repeating: "A", count: 33) + "%3D",
                      "cursor=" + String(repeating: "A", count: 34) + "&cursor=" + String(repeating: "A", count: 34), "cursor=%"])
    func badCursorIs400NamingIt(query: String) throws {
        let user = try stack.newUser("badcursor")
        let response = try stack.sessions(user.tokens.access, query: query)
        expectError(response, status: 400)
        let message = (response.object?["error"] as? [String: Any])?["message"] as? String ?? ""
        #expect(message.contains("\"cursor\""), "\(query): \(response)")
    }

    /// Any 34 base64url characters are a place in the order: a made-up cursor gives a
    /// page (perhaps empty), never an error.
    @Test(arguments: [String(repeating: "A", count: 34), String(repeating: "_", count: 34), String(repeating: "z", count: 34)])
    func anyWellFormedCursorGivesAPage(cursor: String) throws {
        let user = try user(with: 2)
        let page = try stack.sessionPage(user.tokens.access, limit: 5, cursor: cursor)
        #expect(page.entries.count <= 2 && page.next == nil, "\(page)")
    }

    @Test func otherParametersAreIgnoredAndTheTokenComesFirst() throws {
        let user = try user(with: 3)
        let page = try stack.sessions(user.tokens.access, query: "foo=bar&limit=1&x")
        #expect(page.status == 200 && (page.object?["sessions"] as? [Any])?.count == 1, "\(page)")
        expectMissingCredentials(try stack.sessions(nil, query: "limit=0"))
    }

    @Test func headTakesTheParametersToo() throws {
        let user = try stack.newUser("headpages")
        let ok = try stack.call("HEAD", "/auth/sessions?limit=1", bearer: user.tokens.access)
        #expect(ok.status == 200 && ok.body.isEmpty, "\(ok)")
        let bad = try stack.call("HEAD", "/auth/sessions?limit=0", bearer: user.tokens.access)
        #expect(bad.status == 400 && bad.body.isEmpty, "\(bad)")
    }
}
