import Foundation
import Testing

@Suite("DELETE /auth/logout")
struct LogoutTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    @Test func answers204WithEmptyBody() throws {
        let user = try stack.newUser("logout")
        expectNoContent(try stack.logout(user.tokens.refresh))
    }

    @Test func refreshAfterLogoutIs403() throws {
        let user = try stack.newUser("logoutref")
        expectNoContent(try stack.logout(user.tokens.refresh))
        expectError(try stack.refresh(user.tokens.refresh), status: 403)
    }

    @Test func logoutIsIdempotent() throws {
        let user = try stack.newUser("logout2")
        expectNoContent(try stack.logout(user.tokens.refresh))
        expectNoContent(try stack.logout(user.tokens.refresh))
    }

    @Test func logoutAfterRotationWithTheCurrentTokenEndsTheSession() throws {
        let user = try stack.newUser("logoutrot")
        let current = try stack.rotate(user.tokens.refresh).refresh
        expectNoContent(try stack.logout(current))
        expectError(try stack.refresh(current), status: 403)
    }

    @Test func logoutOfASessionEndedByLogoutAllIs204() throws {
        let user = try stack.newUser("logoutended")
        expectNoContent(try stack.logoutAll(user.tokens.access))
        expectNoContent(try stack.logout(user.tokens.refresh))
    }

    @Test func logoutOfASessionEndedByReplayIs204() throws {
        let user = try stack.newUser("logoutreplay")
        let b = try stack.rotate(user.tokens.refresh).refresh
        expectError(try stack.refresh(user.tokens.refresh), status: 403)
        expectNoContent(try stack.logout(b))
    }

    @Test func logoutEndsOnlyThePresentedSession() throws {
        let user = try stack.newUser("logoutone")
        let other = try stack.newSession(user)
        expectNoContent(try stack.logout(user.tokens.refresh))
        _ = try stack.rotate(other.refresh)
    }

    @Test(arguments: missingOrNonStringTokenBodies.prefix(1))
    func missingTokenIs400(body: String) throws {
        expectError(try stack.call("DELETE", "/auth/logout", body: Array(body.utf8)), status: 400)
    }

    @Test(arguments: missingOrNonStringTokenBodies.dropFirst())
    func nonStringTokenIsAClientError(body: String) throws {
        let response = try stack.call("DELETE", "/auth/logout", body: Array(body.utf8))
        #expect(response.status == 400 || response.status == 403, "\(response)")
        expectError(response)
    }

    @Test(arguments: BadRefreshToken.allCases)
    func badTokenIs403AndLeavesTheSessionAlone(kind: BadRefreshToken) throws {
        let user = try stack.newUser("badlogout")
        expectError(try stack.logout(try kind.make(from: user.tokens)), status: 403)
        _ = try stack.rotate(user.tokens.refresh)
    }
}

@Suite("POST /auth/logout-all")
struct LogoutAllTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    @Test func endsEverySessionOfTheUser() throws {
        let user = try stack.newUser("all")
        let first = try stack.newSession(user)
        let second = try stack.newSession(user)
        expectNoContent(try stack.logoutAll(first.access))
        for token in [user.tokens.refresh, first.refresh, second.refresh] {
            expectError(try stack.refresh(token), status: 403)
        }
    }

    @Test func endsRotatedSessionsToo() throws {
        let user = try stack.newUser("allrot")
        let rotated = try stack.rotate(user.tokens.refresh)
        expectNoContent(try stack.logoutAll(rotated.access))
        expectError(try stack.refresh(rotated.refresh), status: 403)
    }

    @Test func leavesOtherUsersAlone() throws {
        let user = try stack.newUser("allme")
        let bystander = try stack.newUser("allother")
        expectNoContent(try stack.logoutAll(user.tokens.access))
        _ = try stack.rotate(bystander.tokens.refresh)
    }

    @Test func newLoginAfterLogoutAllWorks() throws {
        let user = try stack.newUser("allagain")
        expectNoContent(try stack.logoutAll(user.tokens.access))
        _ = try stack.rotate(try stack.newSession(user).refresh)
    }

    @Test func withoutTokenIs401() throws {
        expectMissingCredentials(try stack.logoutAll(nil))
    }

    @Test func refreshTokenAsBearerIs401AndEndsNothing() throws {
        let user = try stack.newUser("allrt")
        expectInvalidToken(try stack.logoutAll(user.tokens.refresh))
        _ = try stack.rotate(user.tokens.refresh)
    }
}
