import Foundation
import Testing

/// ACCESS_TOKEN_SESSION_CHECK=true: an access token is good only while its session lives.
@Suite("Access tokens checked against their session (ACCESS_TOKEN_SESSION_CHECK=true)")
struct SessionCheckTests {
    let stack: Stack
    init() throws { stack = try AccountStacks.sessionCheck() }

    /// GET / and GET /auth/me refuse the token as a session that has ended.
    private func expectEnded(_ accessToken: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        expectSessionEnded(try stack.home(accessToken), sourceLocation: sourceLocation)
        expectSessionEnded(try stack.me(accessToken), sourceLocation: sourceLocation)
    }

    /// GET / and GET /auth/me accept it.
    private func expectAlive(_ accessToken: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let home = try stack.home(accessToken)
        #expect(home.status == 200, "GET /: \(home)", sourceLocation: sourceLocation)
        let me = try stack.me(accessToken)
        #expect(me.status == 200, "GET /auth/me: \(me)", sourceLocation: sourceLocation)
    }

    @Test func liveSessionsTokensWork() throws {
        let user = try stack.newUser("strictok")
        try expectAlive(user.tokens.access)
        // A refresh keeps the session: the token from before it still works.
        let next = try stack.rotate(user.tokens.refresh)
        try expectAlive(user.tokens.access)
        try expectAlive(next.access)
        #expect(try stack.listSessions(next.access).count == 1)
    }

    @Test func logoutEndsTheAccessTokenAtOnce() throws {
        let user = try stack.newUser("strictlogout")
        let other = try stack.newSession(user)
        try expectAlive(user.tokens.access)
        expectNoContent(try stack.logout(user.tokens.refresh))
        try expectEnded(user.tokens.access)
        try expectAlive(other.access)
    }

    @Test func endingASessionByIdEndsItsAccessTokenAtOnce() throws {
        let user = try stack.newUser("strictdel")
        let other = try stack.newSession(user)
        try expectAlive(other.access)
        expectNoContent(try stack.endSession(try sessionID(of: other.access), user.tokens.access))
        try expectEnded(other.access)
        try expectAlive(user.tokens.access)
        #expect(try stack.listSessions(user.tokens.access).count == 1)
    }

    @Test func endingTheCallersOwnSessionEndsTheCallersToken() throws {
        let user = try stack.newUser("strictself")
        expectNoContent(try stack.endSession(try sessionID(of: user.tokens.access), user.tokens.access))
        try expectEnded(user.tokens.access)
        expectSessionEnded(try stack.sessions(user.tokens.access))
    }

    @Test func passwordChangeEndsTheOtherSessionsTokensButNotTheCallers() throws {
        let user = try stack.newUser("strictpw")
        let others = [try stack.newSession(user), try stack.newSession(user)]
        try stack.expectPasswordChanged(user.tokens.access, current: user.password, new: replacementPassword)
        for other in others { try expectEnded(other.access) }
        try expectAlive(user.tokens.access)
        let next = try stack.rotate(user.tokens.refresh)
        try expectAlive(next.access)
        #expect(try stack.listSessions(next.access).map(\.id) == [try sessionID(of: user.tokens.access)])
    }

    @Test func accountDeletionEndsEveryToken() throws {
        let user = try stack.newUser("strictacct")
        let other = try stack.newSession(user)
        try stack.expectAccountDeleted(user.tokens.access, password: user.password)
        try expectEnded(user.tokens.access)
        try expectEnded(other.access)
        // Strict mode: the list is refused too (the stateless default answers 200 and []).
        expectSessionEnded(try stack.sessions(other.access))
    }

    @Test func logoutAllAndReplayEndTokensAtOnce() throws {
        let user = try stack.newUser("strictall")
        let other = try stack.newSession(user)
        expectNoContent(try stack.logoutAll(user.tokens.access))
        try expectEnded(user.tokens.access)
        try expectEnded(other.access)

        let again = try stack.newSession(user)
        _ = try stack.rotate(again.refresh)
        expectError(try stack.refresh(again.refresh), status: 403)  // a replay ends the session
        try expectEnded(again.access)
    }

    /// Every route that takes an access token refuses one whose session has ended, and
    /// does nothing.
    @Test func everyAccessTokenRouteRefusesAnEndedSession() throws {
        let user = try stack.newUser("strictroutes")
        let ended = try stack.newSession(user)
        let victim = try stack.newSession(user)
        expectNoContent(try stack.logout(ended.refresh))

        expectSessionEnded(try stack.sessions(ended.access))
        expectSessionEnded(try stack.endSession(try sessionID(of: victim.access), ended.access))
        expectSessionEnded(try stack.changePassword(ended.access, current: user.password, new: replacementPassword))
        expectSessionEnded(try stack.deleteAccount(ended.access, password: user.password))
        expectSessionEnded(try stack.logoutAll(ended.access))

        // Nothing of it happened.
        try expectAlive(victim.access)
        _ = try stack.rotate(victim.refresh)
        _ = try stack.rotate(user.tokens.refresh)
        _ = try expectTokens(try stack.retryingBusy { try stack.login(user.username, user.password) }, status: 200)
    }

    @Test func badTokensAreStillRefusedAsInvalid() throws {
        let user = try stack.newUser("strictbad")
        expectInvalidToken(try stack.home(try BadAccessToken.tamperedSignature.make(from: user.tokens)))
        expectInvalidToken(try stack.home(try BadAccessToken.expired.make(from: user.tokens)), expired: true)
        expectMissingCredentials(try stack.home(nil))
    }
}

@Suite("ACCESS_TOKEN_SESSION_CHECK default and configuration")
struct SessionCheckDefaultTests {
    /// The default (false): no Redis read per request, yet the access tokens of an ended
    /// session are refused, from the revocations every authd keeps in memory.
    @Test func byDefaultAnEndedSessionsAccessTokenIsRefusedWithoutARead() throws {
        let stack = try Stacks.standard()
        let user = try stack.newUser("stateless")
        let other = try stack.newSession(user)
        expectNoContent(try stack.logout(user.tokens.refresh))
        expectError(try stack.refresh(user.tokens.refresh), status: 403)
        try expectSessionEndedSoon { try stack.home(user.tokens.access) }
        try expectSessionEndedSoon { try stack.me(user.tokens.access) }
        #expect(try stack.listSessions(other.access).map(\.id) == [try sessionID(of: other.access)])
    }

    @Test(arguments: ["maybe", "2", "enabled", "tru", "yes please"])
    func badValueStopsStartUpNamingTheVariable(value: String) throws {
        let dir = try Stack.makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var environment = Stack.baseEnvironment(dir: dir)
        environment["ACCESS_TOKEN_SESSION_CHECK"] = value
        let result = try runCommand(Stack.authdBinary, ["serve"], environment: environment, directory: dir, timeout: 10)
        #expect(result.termination == .exited(1), "authd serve with ACCESS_TOKEN_SESSION_CHECK=\(value): \(result.termination) \(result.output)")
        #expect(result.output.contains("ACCESS_TOKEN_SESSION_CHECK"), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/authd.sock"))
    }

    @Test(arguments: ["true", "false", "TRUE", "False", "1", "0", "yes", "no", "on", "off", "On", "YES"])
    func acceptedValuesPassTheConfigurationCheck(value: String) throws {
        let dir = try Stack.makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var environment = Stack.baseEnvironment(dir: dir)
        environment["ACCESS_TOKEN_SESSION_CHECK"] = value
        let result = try runCommand(Stack.authdBinary, ["check-config"], environment: environment, directory: dir, timeout: 10)
        #expect(result.termination == .exited(0), "check-config with ACCESS_TOKEN_SESSION_CHECK=\(value): \(result.output)")
        let on = ["true", "1", "yes", "on"].contains(value.lowercased())
        #expect(result.output.contains("ACCESS_TOKEN_SESSION_CHECK=\(on)"), "\(value): \(result.output)")
    }

    /// The control of the cases above: check-config does refuse the bad value.
    @Test func checkConfigRefusesABadValue() throws {
        let dir = try Stack.makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var environment = Stack.baseEnvironment(dir: dir)
        environment["ACCESS_TOKEN_SESSION_CHECK"] = "maybe"
        let result = try runCommand(Stack.authdBinary, ["check-config"], environment: environment, directory: dir, timeout: 10)
        #expect(result.termination == .exited(1) && result.output.contains("ACCESS_TOKEN_SESSION_CHECK"), "\(result.output)")
    }
}

@Suite("ACCESS_TOKEN_SESSION_CHECK=true with Redis down (own stack)")
struct SessionCheckOutageTests {
    @Test func tokenRoutesAnswer503WhileRedisIsDownAndRecover() async throws {
        let stack = try Stack.start(["ACCESS_TOKEN_SESSION_CHECK": "true"])
        defer { stack.shutdown() }
        let user = try stack.newUser("strictoutage")
        #expect(try stack.home(user.tokens.access).status == 200)

        stack.stopRedis()

        let duringOutage: [(String, HTTPResponse)] = [
            ("GET /", try stack.home(user.tokens.access)),
            ("GET /auth/me", try stack.me(user.tokens.access)),
            ("GET /auth/sessions", try stack.sessions(user.tokens.access)),
            ("DELETE /auth/sessions/{id}", try stack.endSession(try sessionID(of: user.tokens.access), user.tokens.access)),
            ("POST /auth/password", try stack.changePassword(user.tokens.access, current: user.password, new: replacementPassword)),
            ("DELETE /auth/account", try stack.deleteAccount(user.tokens.access, password: user.password)),
            ("POST /auth/logout-all", try stack.logoutAll(user.tokens.access)),
        ]
        for (name, response) in duringOutage {
            #expect(response.status == 503, "\(name) during the outage: \(response)")
            expectError(response)
        }
        // No fail-open: a forged token is never accepted, with or without Redis.
        let forged = try stack.home(try BadAccessToken.tamperedSignature.make(from: user.tokens))
        #expect(forged.status == 401 || forged.status == 503, "\(forged)")
        #expect(try stack.call("GET", "/healthz").status == 200)

        try stack.startRedis()  // same socket, empty data set: the session is gone
        let answered = try await eventually(timeout: 5) { try stack.home(user.tokens.access).status != 503 }
        #expect(answered, "GET / did not recover")
        expectSessionEnded(try stack.home(user.tokens.access))
        let again = try await eventually(timeout: 5) { try stack.register(uniqueName("strictback"), validPassword).status == 201 }
        #expect(again)
        let fresh = try stack.newUser("strictback")
        #expect(try stack.home(fresh.tokens.access).status == 200)
    }
}

@Suite("Default mode with Redis down: GET / needs no Redis (own stack)")
struct SessionCheckOffOutageTests {
    @Test func homeAnswers200WithoutRedisAndTheNewRoutes503() throws {
        let stack = try Stack.start()
        defer { stack.shutdown() }
        let user = try stack.newUser("statelessoutage")
        stack.stopRedis()
        #expect(try stack.home(user.tokens.access).status == 200)
        for (name, response) in [
            ("GET /auth/sessions", try stack.sessions(user.tokens.access)),
            ("DELETE /auth/sessions/{id}", try stack.endSession(try sessionID(of: user.tokens.access), user.tokens.access)),
            ("POST /auth/password", try stack.changePassword(user.tokens.access, current: user.password, new: replacementPassword)),
            ("DELETE /auth/account", try stack.deleteAccount(user.tokens.access, password: user.password)),
        ] {
            #expect(response.status == 503, "\(name) during the outage: \(response)")
            expectError(response)
        }
    }
}
