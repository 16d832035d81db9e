import Foundation
import Testing

@Suite("DELETE /auth/account")
struct AccountDeletionTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    @Test func deletesTheUserEverySessionAndFreesTheName() throws {
        let user = try stack.newUser("delete")
        let second = try stack.newSession(user)
        let third = try stack.rotate(try stack.newSession(user).refresh)
        let uid = try userID(of: user.tokens.access)
        #expect(!(try stack.redisKeys(containing: uid)).isEmpty)

        try stack.expectAccountDeleted(user.tokens.access, password: user.password)

        expectError(try stack.login(user.username, user.password), status: 401, message: "Username/password not valid")
        for token in [user.tokens.refresh, second.refresh, third.refresh] {
            expectError(try stack.refresh(token), status: 403)
        }
        expectInvalidToken(try stack.me(user.tokens.access))
        expectInvalidToken(try stack.me(third.access))
        // The other sessions' access tokens end with the account.
        try expectSessionEndedSoon { try stack.call("GET", "/auth/sessions", bearer: second.access) }
        let left = try stack.redisKeys(containing: uid)
        #expect(left.isEmpty, "keys of the deleted user left in Redis: \(left)")

        // The name is free: anyone may register it, as a new user.
        let again = try stack.retryingBusy { try stack.register(user.username, "someone else's password") }
        let pair = try expectTokens(again, status: 201)
        #expect(try userID(of: pair.access) != uid)
        let me = try stack.me(pair.access)
        #expect(me.status == 200 && me.object?["username"] as? String == user.username, "\(me)")
        #expect(me.object?["id"] as? String != uid, "\(me)")
        expectError(try stack.login(user.username, user.password), status: 401)
        // The old tokens do not reach the new account.
        expectError(try stack.refresh(second.refresh), status: 403)
        #expect(try stack.listSessions(pair.access).map(\.id) == [try sessionID(of: pair.access)])
        // The old user's token sees nothing of the new owner's: it is refused.
        try expectSessionEndedSoon { try stack.call("GET", "/auth/sessions", bearer: user.tokens.access) }
    }

    @Test func otherUsersAreUntouched() throws {
        let user = try stack.newUser("delme")
        let bystander = try stack.newUser("delother")
        try stack.expectAccountDeleted(user.tokens.access, password: user.password)
        _ = try stack.rotate(bystander.tokens.refresh)
        _ = try expectTokens(try stack.retryingBusy { try stack.login(bystander.username, bystander.password) }, status: 200)
        #expect(try stack.me(bystander.tokens.access).status == 200)
    }

    @Test func wrongPasswordIs401AndTheAccountIsIntact() throws {
        let user = try stack.newUser("delwrong")
        let other = try stack.newSession(user)
        expectWrongPassword(try stack.retryingBusy { try stack.deleteAccount(user.tokens.access, password: "not the password") },
                            message: "Password not valid")
        #expect(try stack.me(user.tokens.access).status == 200)
        _ = try stack.rotate(other.refresh)
        _ = try stack.rotate(user.tokens.refresh)
        _ = try expectTokens(try stack.retryingBusy { try stack.login(user.username, user.password) }, status: 200)
        expectError(try stack.register(user.username, validPassword), status: 409)
    }

    static let invalidFields: [(String, String)] = [
        ("{}", #""password" is required"#),
        (#"{"pasword":"correct horse battery"}"#, #""password" is required"#),
        (#"{"password":null}"#, #""password" must be a string"#),
        (#"{"password":12345678}"#, #""password" must be a string"#),
        (#"{"password":true}"#, #""password" must be a string"#),
        (#"{"password":["correct horse battery"]}"#, #""password" must be a string"#),
        (#"{"password":{"value":"correct horse battery"}}"#, #""password" must be a string"#),
    ]

    @Test(arguments: invalidFields)
    func invalidFieldIs422AndDeletesNothing(body: String, message: String) throws {
        let user = try stack.newUser("del422")
        let response = try stack.call("DELETE", "/auth/account", body: Array(body.utf8), bearer: user.tokens.access)
        expectError(response, status: 422, message: message)
        #expect(try stack.me(user.tokens.access).status == 200)
        _ = try stack.rotate(user.tokens.refresh)
    }

    @Test func bodyProblemsAre415And400() throws {
        let user = try stack.newUser("delbody")
        let valid = jsonBytes(["password": user.password])
        expectError(try stack.call("DELETE", "/auth/account", body: valid, contentType: "text/plain", bearer: user.tokens.access), status: 415)
        expectError(try stack.call("DELETE", "/auth/account", bearer: user.tokens.access), status: 415)
        for bad in ["{not json", "[]", "42", ""] {
            expectError(try stack.call("DELETE", "/auth/account", body: Array(bad.utf8), bearer: user.tokens.access), status: 400)
        }
        #expect(try stack.me(user.tokens.access).status == 200)
    }

    @Test func secondDeleteWithTheSameTokenIs401InvalidToken() throws {
        let user = try stack.newUser("deltwice")
        try stack.expectAccountDeleted(user.tokens.access, password: user.password)
        expectInvalidToken(try stack.deleteAccount(user.tokens.access, password: user.password))
    }

    /// The name was taken again by someone else: the old token still names the old id,
    /// so a second DELETE must not reach the new account.
    @Test func deleteWithATokenOfTheDeletedUserCannotReachTheNewOwnerOfTheName() throws {
        let user = try stack.newUser("delreuse")
        try stack.expectAccountDeleted(user.tokens.access, password: user.password)
        let newcomer = try expectTokens(try stack.retryingBusy { try stack.register(user.username, user.password) }, status: 201)
        expectInvalidToken(try stack.deleteAccount(user.tokens.access, password: user.password))
        #expect(try stack.me(newcomer.access).status == 200)
        _ = try stack.rotate(newcomer.refresh)
    }

    @Test func withoutTokenIs401BeforeTheBodyIsRead() throws {
        expectMissingCredentials(try stack.call("DELETE", "/auth/account", body: Array("{not json".utf8)))
        let user = try stack.newUser("delnotoken")
        expectMissingCredentials(try stack.deleteAccount(nil, password: user.password))
        #expect(try stack.me(user.tokens.access).status == 200)
    }

    @Test(arguments: [BadAccessToken.tamperedSignature, .refreshTokenAsAccessToken, .expired, .algNone])
    func badTokenIs401AndDeletesNothing(kind: BadAccessToken) throws {
        let user = try stack.newUser("delbadtoken")
        expectInvalidToken(try stack.deleteAccount(try kind.make(from: user.tokens), password: user.password), expired: kind.isExpired)
        #expect(try stack.me(user.tokens.access).status == 200)
    }

    @Test(arguments: ["GET", "POST", "PUT"])
    func otherMethodsAre405AllowingDelete(method: String) throws {
        let user = try stack.newUser("del405")
        let response = try stack.call(method, "/auth/account", json: ["password": user.password], bearer: user.tokens.access)
        expectError(response, status: 405)
        #expect(allowedMethods(response) == ["DELETE"], "Allow: \(response.header("Allow") ?? "(missing)")")
        #expect(try stack.me(user.tokens.access).status == 200)
    }

    /// The deletion races refreshes of the user's other sessions and logins: after the 204
    /// nothing of the user is alive.
    @Test func deletionRacingRefreshesAndLoginsLeavesNothingAlive() throws {
        var granted = 0, rotations = 0
        for iteration in 0..<6 {
            let user = try stack.newUser("delrace")
            let others = try (0..<3).map { _ in try stack.newSession(user) }
            let race = raceAgainstSessions(stack, user: user, others: others, logins: 6, password: user.password) {
                try? stack.retryingBusy { try stack.deleteAccount(user.tokens.access, password: user.password) }
            }
            let action = try #require(race.action, "the deletion did not get an answer")
            try #require(action.status == 204, "iteration \(iteration): deletion: \(action)")
            granted += race.grantedLogins.count
            rotations += race.rotations

            #expect(race.lateRefreshes == 0, "iteration \(iteration): \(race.lateRefreshes) refreshes after the 204 got 200")
            for token in race.heldRefreshTokens + [user.tokens.refresh] {
                expectError(try stack.refresh(token), status: 403)
            }
            for login in race.logins {
                let status = login?.status ?? -1
                #expect([200, 401, 429, 503].contains(status), "iteration \(iteration): racing login: \(String(describing: login))")
            }
            for pair in race.grantedLogins {
                expectError(try stack.refresh(pair.refresh), status: 403)
                expectInvalidToken(try stack.me(pair.access))
                try expectSessionEndedSoon { try stack.call("GET", "/auth/sessions", bearer: pair.access) }
            }
            expectError(try stack.login(user.username, user.password), status: 401)
            expectInvalidToken(try stack.me(user.tokens.access))
            try expectSessionEndedSoon { try stack.call("GET", "/auth/sessions", bearer: user.tokens.access) }
        }
        print("account deletion race: \(granted) logins granted, \(rotations) refreshes before the end")
    }

    /// Two deletions at once with the same password, by two sessions of the user: at least
    /// one 204, the other 204 or 401 (the account already gone), never a 5xx; the name
    /// ends up free.
    @Test func twoConcurrentDeletionsDeleteOnce() throws {
        for iteration in 0..<4 {
            let user = try stack.newUser("deltwo")
            let other = try stack.newSession(user)
            let tokens = [user.tokens.access, other.access]
            let responses = concurrently(2) { i in
                try? stack.retryingBusy { try stack.deleteAccount(tokens[i], password: user.password) }
            }
            let statuses = responses.map { $0?.status ?? -1 }
            try #require(statuses.contains(204) && statuses.allSatisfy { $0 == 204 || $0 == 401 },
                         "iteration \(iteration): \(statuses)")
            for response in responses.compactMap({ $0 }) where response.status == 401 { expectError(response) }
            _ = try expectTokens(try stack.retryingBusy { try stack.register(user.username, validPassword) }, status: 201)
        }
    }

    /// A crash between the two steps of a deletion (the user's own keys first, then the
    /// name) leaves the name pointing at a user that no longer exists, for good (no TTL).
    /// Registering that name must repair it.
    @Test func registeringANameLeftByAnInterruptedDeletionSucceeds() throws {
        let user = try stack.newUser("delcrash")
        let other = try stack.newSession(user)
        let uid = try userID(of: user.tokens.access)
        let nameKey = "auth:username:{\(user.username)}"
        try #require(try stack.redisCLI("GET", nameKey) == uid)

        // The first step, done by hand: the user hash and its session keys.
        let userKeys = try stack.redisKeys(containing: "{\(uid)}")
        try #require(userKeys.contains("auth:user:{\(uid)}"), "\(userKeys)")
        for key in userKeys { _ = try stack.redisCLI("DEL", key) }
        try #require(try stack.redisCLI("GET", nameKey) == uid)
        try #require(try stack.redisCLI("TTL", nameKey) == "-1")

        expectError(try stack.login(user.username, user.password), status: 401)
        expectError(try stack.refresh(other.refresh), status: 403)
        let response = try stack.retryingBusy { try stack.register(user.username, "the new owner's password") }
        let pair = try expectTokens(response, status: 201)
        let newID = try userID(of: pair.access)
        #expect(newID != uid)
        #expect(try stack.redisCLI("GET", nameKey) == newID)
        #expect(try stack.redisCLI("TTL", nameKey) == "-1", "the repaired name must be permanent")
        _ = try expectTokens(try stack.retryingBusy { try stack.login(user.username, "the new owner's password") }, status: 200)
        let me = try stack.me(pair.access)
        #expect(me.status == 200 && me.object?["id"] as? String == newID, "\(me)")
        // And a second registration of the name is refused as usual.
        expectError(try stack.register(user.username, validPassword), status: 409)
    }

    /// A name still pending (a registration between its reservation and writing its user,
    /// which holds no user yet) is not stale: it is not taken from that registration.
    @Test func aPendingReservationIsNotRepaired() throws {
        let name = uniqueName("delpending")
        let nameKey = "auth:username:{\(name)}"
        _ = try stack.redisCLI("SET", nameKey, "AAAAAAAAAAAAAAAAAAAAAA", "EX", "60")
        expectError(try stack.register(name, validPassword), status: 409)
        #expect(try stack.redisCLI("GET", nameKey) == "AAAAAAAAAAAAAAAAAAAAAA")
    }

    /// The index pointing at a live user is not "repaired": 409 as always.
    @Test func aNameOfALiveUserIsStillTaken() throws {
        let user = try stack.newUser("dellive")
        expectError(try stack.register(user.username, validPassword), status: 409)
        _ = try expectTokens(try stack.retryingBusy { try stack.login(user.username, user.password) }, status: 200)
    }
}

@Suite("DELETE /auth/account throttling (LOGIN_USER_MAX_FAILURES=3)")
struct AccountDeletionThrottleTests {
    let stack: Stack
    init() throws { stack = try AccountStacks.throttledPerUser() }

    @Test func wrongPasswordsAreThrottledAndTheAccountSurvives() throws {
        let user = try stack.newUser("delthrottle")
        for _ in 0..<3 {
            expectWrongPassword(try stack.deleteAccount(user.tokens.access, password: "not the password"), message: "Password not valid")
        }
        let throttled = try stack.deleteAccount(user.tokens.access, password: user.password)
        expectError(throttled, status: 429)
        #expect(throttled.header("Retry-After").flatMap { Int($0) }.map { (1...120).contains($0) } == true, "\(throttled)")
        #expect(try stack.me(user.tokens.access).status == 200, "deleted while throttled")
        _ = try stack.rotate(user.tokens.refresh)
        expectError(try stack.login(user.username, user.password), status: 429)
    }

    @Test func failedPasswordChangesAndDeletionsShareTheCount() throws {
        let user = try stack.newUser("delshare")
        expectWrongPassword(try stack.changePassword(user.tokens.access, current: "not the password", new: replacementPassword),
                            message: "Current password is not valid")
        expectWrongPassword(try stack.deleteAccount(user.tokens.access, password: "not the password"), message: "Password not valid")
        expectError(try stack.login(user.username, "not the password"), status: 401)
        expectError(try stack.deleteAccount(user.tokens.access, password: user.password), status: 429)
        #expect(try stack.me(user.tokens.access).status == 200)
    }
}
