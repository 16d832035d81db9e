import Foundation
import Testing

let replacementPassword = "a brand new passphrase"

@Suite("POST /auth/password")
struct PasswordChangeTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    @Test func changesThePasswordAndEndsEveryOtherSession() throws {
        let user = try stack.newUser("pwchange")
        let second = try stack.newSession(user)
        let third = try stack.rotate(try stack.newSession(user).refresh)
        let callerSid = try sessionID(of: user.tokens.access)

        try stack.expectPasswordChanged(user.tokens.access, current: user.password, new: replacementPassword)

        expectError(try stack.login(user.username, user.password), status: 401, message: "Username/password not valid")
        expectError(try stack.refresh(second.refresh), status: 403)
        expectError(try stack.refresh(third.refresh), status: 403)
        let list = try stack.listSessions(user.tokens.access)
        #expect(list.map(\.id) == [callerSid], "\(list)")
        #expect(list.first?.current == true, "\(list)")
        // The caller's session goes on, under its id.
        let next = try stack.rotate(user.tokens.refresh)
        #expect(try sessionID(of: next.refresh) == callerSid)
        _ = try stack.rotate(next.refresh)
        // The other sessions' access tokens end with them (revocations); the caller's goes on.
        try expectSessionEndedSoon { try stack.home(second.access) }
        #expect(try stack.home(next.access).status == 200)

        let fresh = try expectTokens(try stack.retryingBusy { try stack.login(user.username, replacementPassword) }, status: 200)
        _ = try stack.rotate(fresh.refresh)
        #expect(try stack.me(next.access).object?["username"] as? String == user.username)
    }

    @Test func canBeChangedAgainWithTheNewPassword() throws {
        let user = try stack.newUser("pwtwice")
        try stack.expectPasswordChanged(user.tokens.access, current: user.password, new: replacementPassword)
        expectWrongPassword(try stack.changePassword(user.tokens.access, current: user.password, new: "third password here"),
                            message: "Current password is not valid")
        try stack.expectPasswordChanged(user.tokens.access, current: replacementPassword, new: "third password here")
        expectError(try stack.login(user.username, replacementPassword), status: 401)
        _ = try expectTokens(try stack.retryingBusy { try stack.login(user.username, "third password here") }, status: 200)
    }

    /// 72 bytes of UTF-8 (36 two-byte characters) is the longest password.
    @Test func newPasswordOf72BytesIsAccepted() throws {
        let user = try stack.newUser("pw72")
        let long = String(repeating: "é", count: 36)
        try #require(long.utf8.count == 72)
        try stack.expectPasswordChanged(user.tokens.access, current: user.password, new: long)
        _ = try expectTokens(try stack.retryingBusy { try stack.login(user.username, long) }, status: 200)
    }

    @Test func wrongCurrentPasswordIs401AndChangesNothing() throws {
        let user = try stack.newUser("pwwrong")
        let other = try stack.newSession(user)
        let response = try stack.retryingBusy {
            try stack.changePassword(user.tokens.access, current: "not the password", new: replacementPassword)
        }
        expectWrongPassword(response, message: "Current password is not valid")
        expectError(try stack.login(user.username, replacementPassword), status: 401)
        _ = try expectTokens(try stack.retryingBusy { try stack.login(user.username, user.password) }, status: 200)
        _ = try stack.rotate(other.refresh)
        _ = try stack.rotate(user.tokens.refresh)
        #expect(try stack.listSessions(user.tokens.access).count == 3)
    }

    /// Bodies whose fields break the rules, with the user's real current password where
    /// there is one: each is 422 with its message, and the password stays as it was.
    static let invalidFields: [(String, String)] = [
        (#"{"newPassword":"a brand new passphrase"}"#, #""currentPassword" is required"#),
        (#"{"currentPassword":12345678,"newPassword":"a brand new passphrase"}"#, #""currentPassword" must be a string"#),
        (#"{"currentPassword":null,"newPassword":"a brand new passphrase"}"#, #""currentPassword" must be a string"#),
        (#"{"currentPassword":["correct horse battery"],"newPassword":"a brand new passphrase"}"#, #""currentPassword" must be a string"#),
        (#"{"currentPassword":"correct horse battery"}"#, #""newPassword" is required"#),
        (#"{"currentPassword":"correct horse battery","newPassword":12345678}"#, #""newPassword" must be a string"#),
        (#"{"currentPassword":"correct horse battery","newPassword":true}"#, #""newPassword" must be a string"#),
        (#"{"currentPassword":"correct horse battery","newPassword":{"value":"a brand new passphrase"}}"#, #""newPassword" must be a string"#),
        (#"{"currentPassword":"correct horse battery","newPassword":"short"}"#,
         #""newPassword" length must be at least 8 characters long"#),
        (#"{"currentPassword":"correct horse battery","newPassword":""}"#,
         #""newPassword" length must be at least 8 characters long"#),
        (#"{"currentPassword":"correct horse battery","newPassword":"\#(String(repeating: "a", count: 73))"}"#,
         #""newPassword" length must be less than or equal to 72 bytes long in UTF-8 (bcrypt's limit)"#),
        (#"{"currentPassword":"correct horse battery","newPassword":"a\#(String(repeating: "é", count: 36))"}"#,
         #""newPassword" length must be less than or equal to 72 bytes long in UTF-8 (bcrypt's limit)"#),
        (#"{"currentPassword":"correct horse battery","newPassword":"abc\u0000defghij"}"#,
         #""newPassword" must not contain NUL characters"#),
        (#"{"currentPassword":"correct horse battery","newPassword":"correct horse battery"}"#,
         #""newPassword" must differ from "currentPassword""#),
    ]

    @Test(arguments: invalidFields)
    func invalidFieldIs422WithItsMessage(body: String, message: String) throws {
        let user = try stack.newUser("pw422")
        let response = try stack.call("POST", "/auth/password", body: Array(body.utf8), bearer: user.tokens.access)
        expectError(response, status: 422, message: message)
        _ = try expectTokens(try stack.retryingBusy { try stack.login(user.username, user.password) }, status: 200)
        _ = try stack.rotate(user.tokens.refresh)
    }

    /// Fields are checked before the current password: a bad new password with a wrong
    /// current one is still 422.
    @Test func fieldsAreCheckedBeforeTheCurrentPassword() throws {
        let user = try stack.newUser("pworder")
        expectError(try stack.changePassword(user.tokens.access, current: "not the password", new: "short"), status: 422,
                    message: #""newPassword" length must be at least 8 characters long"#)
    }

    @Test func withoutTokenIs401BeforeTheBodyIsRead() throws {
        expectMissingCredentials(try stack.call("POST", "/auth/password", body: Array("{not json".utf8)))
        expectMissingCredentials(try stack.call("POST", "/auth/password", body: Array("{}".utf8), contentType: "text/plain"))
        let user = try stack.newUser("pwnotoken")
        expectMissingCredentials(try stack.changePassword(nil, current: user.password, new: replacementPassword))
        _ = try expectTokens(try stack.retryingBusy { try stack.login(user.username, user.password) }, status: 200)
    }

    @Test(arguments: [BadAccessToken.tamperedSignature, .refreshTokenAsAccessToken, .expired, .algNone])
    func badTokenIs401AndChangesNothing(kind: BadAccessToken) throws {
        let user = try stack.newUser("pwbadtoken")
        let response = try stack.changePassword(try kind.make(from: user.tokens), current: user.password, new: replacementPassword)
        expectInvalidToken(response, expired: kind.isExpired)
        _ = try expectTokens(try stack.retryingBusy { try stack.login(user.username, user.password) }, status: 200)
    }

    @Test func bodyProblemsAre415And400() throws {
        let user = try stack.newUser("pwbody")
        let valid = jsonBytes(["currentPassword": user.password, "newPassword": replacementPassword])
        expectError(try stack.call("POST", "/auth/password", body: valid, contentType: "text/plain", bearer: user.tokens.access), status: 415)
        expectError(try stack.call("POST", "/auth/password", body: valid, contentType: nil, bearer: user.tokens.access), status: 415)
        for bad in ["{not json", "[]", "\"text\"", ""] {
            expectError(try stack.call("POST", "/auth/password", body: Array(bad.utf8), bearer: user.tokens.access), status: 400)
        }
        _ = try expectTokens(try stack.retryingBusy { try stack.login(user.username, user.password) }, status: 200)
    }

    @Test(arguments: ["GET", "PUT", "DELETE"])
    func otherMethodsAre405AllowingPost(method: String) throws {
        let user = try stack.newUser("pw405")
        let response = try stack.call(method, "/auth/password", json: ["currentPassword": user.password, "newPassword": replacementPassword],
                                      bearer: user.tokens.access)
        expectError(response, status: 405)
        #expect(allowedMethods(response) == ["POST"], "Allow: \(response.header("Allow") ?? "(missing)")")
    }

    /// The account was deleted by another of its sessions; this one's token is still valid.
    @Test func userDeletedMeanwhileIs401InvalidToken() throws {
        let user = try stack.newUser("pwgone")
        let other = try stack.newSession(user)
        try stack.expectAccountDeleted(other.access, password: user.password)
        let response = try stack.changePassword(user.tokens.access, current: user.password, new: replacementPassword)
        expectInvalidToken(response)
    }

    // MARK: races

    /// The change races refreshes of the user's other sessions and logins with the old
    /// password. Afterwards nothing that the old password started may be alive.
    @Test func changeRacingRefreshesAndOldPasswordLoginsLeavesNoOldSessionAlive() throws {
        var granted = 0, rotations = 0
        for iteration in 0..<6 {
            let user = try stack.newUser("pwrace")
            let others = try (0..<3).map { _ in try stack.newSession(user) }
            let renewed = "renewed password \(iteration)"
            let race = raceAgainstSessions(stack, user: user, others: others, logins: 6, password: user.password) {
                try? stack.retryingBusy { try stack.changePassword(user.tokens.access, current: user.password, new: renewed) }
            }
            let action = try #require(race.action, "the change did not get an answer")
            try #require(action.status == 204, "iteration \(iteration): change: \(action)")
            granted += race.grantedLogins.count
            rotations += race.rotations

            #expect(race.lateRefreshes == 0, "iteration \(iteration): \(race.lateRefreshes) refreshes after the 204 got 200")
            for token in race.heldRefreshTokens {
                expectError(try stack.refresh(token), status: 403)
            }
            for login in race.logins {
                let status = login?.status ?? -1
                #expect([200, 401, 429, 503].contains(status), "iteration \(iteration): racing login: \(String(describing: login))")
            }
            for pair in race.grantedLogins {
                expectError(try stack.refresh(pair.refresh), status: 403)
            }
            let list = try stack.listSessions(user.tokens.access)
            #expect(list.map(\.id) == [try sessionID(of: user.tokens.access)], "iteration \(iteration): \(list)")
            _ = try stack.rotate(user.tokens.refresh)
            expectError(try stack.login(user.username, user.password), status: 401)
            _ = try expectTokens(try stack.retryingBusy { try stack.login(user.username, renewed) }, status: 200)
        }
        // Not a condition of the contract, only what the race exercised.
        print("password change race: \(granted) old-password logins granted, \(rotations) refreshes before the end")
    }

    /// Two changes with the same current password at once: one wins, the other finds its
    /// current password no longer current.
    @Test func twoConcurrentChangesWithTheSameCurrentPasswordOneWins() throws {
        for iteration in 0..<6 {
            let user = try stack.newUser("pwtwo")
            let other = try stack.newSession(user)
            let tokens = [user.tokens.access, other.access]
            let responses = concurrently(2) { i in
                try? stack.retryingBusy { try stack.changePassword(tokens[i], current: user.password, new: "winner number \(i)") }
            }
            let statuses = responses.map { $0?.status ?? -1 }
            try #require(statuses.sorted() == [204, 401], "iteration \(iteration): \(statuses)")
            let winner = statuses.firstIndex(of: 204)!, loser = 1 - winner
            expectWrongPassword(responses[loser]!, message: "Current password is not valid")
            _ = try expectTokens(try stack.retryingBusy { try stack.login(user.username, "winner number \(winner)") }, status: 200)
            expectError(try stack.login(user.username, "winner number \(loser)"), status: 401)
            expectError(try stack.login(user.username, user.password), status: 401)
            // The winner's session stays, the loser's (another session) was ended by the change.
            let winnerRefresh = winner == 0 ? user.tokens.refresh : other.refresh
            let loserRefresh = winner == 0 ? other.refresh : user.tokens.refresh
            _ = try stack.rotate(winnerRefresh)
            expectError(try stack.refresh(loserRefresh), status: 403)
        }
    }
}

@Suite("POST /auth/password throttling (LOGIN_USER_MAX_FAILURES=3)")
struct PasswordChangeThrottleTests {
    let stack: Stack
    init() throws { stack = try AccountStacks.throttledPerUser() }

    private func storedHash(_ user: User) throws -> String {
        try stack.redisCLI("HGET", "auth:user:{\(try userID(of: user.tokens.access))}", "hash")
    }

    @Test func wrongCurrentPasswordsAreThrottledLikeLogins() throws {
        let user = try stack.newUser("pwthrottle")
        let hash = try storedHash(user)
        try #require(hash.hasPrefix("$2"), "no bcrypt hash in the user record: \(hash)")
        for _ in 0..<3 {
            expectWrongPassword(try stack.changePassword(user.tokens.access, current: "not the password", new: replacementPassword),
                                message: "Current password is not valid")
        }
        // Locked now, even with the right current password; and for login too (one counter).
        let throttled = try stack.changePassword(user.tokens.access, current: user.password, new: replacementPassword)
        expectError(throttled, status: 429)
        let wait = throttled.header("Retry-After").flatMap { Int($0) }
        #expect(wait.map { (1...120).contains($0) } == true, "Retry-After: \(throttled)")
        expectError(try stack.login(user.username, user.password), status: 429)
        #expect(try stack.redisCLI("GET", "auth:attempts:user:{\(user.username)}") == "3")
        #expect(try storedHash(user) == hash, "the password changed while throttled")
        _ = try stack.rotate(user.tokens.refresh)
    }

    @Test func failedLoginsCountAgainstPasswordChanges() throws {
        let user = try stack.newUser("pwthrlogin")
        for _ in 0..<3 { expectError(try stack.login(user.username, "not the password"), status: 401) }
        expectError(try stack.changePassword(user.tokens.access, current: user.password, new: replacementPassword), status: 429)
    }

    @Test func successClearsTheUsersCount() throws {
        let user = try stack.newUser("pwthrreset")
        for _ in 0..<2 {
            expectWrongPassword(try stack.changePassword(user.tokens.access, current: "not the password", new: replacementPassword),
                                message: "Current password is not valid")
        }
        try stack.expectPasswordChanged(user.tokens.access, current: user.password, new: replacementPassword)
        #expect(try stack.redisCLI("EXISTS", "auth:attempts:user:{\(user.username)}") == "0")
        for _ in 0..<3 {
            expectWrongPassword(try stack.changePassword(user.tokens.access, current: "not the password", new: "another new one"),
                                message: "Current password is not valid")
        }
        expectError(try stack.changePassword(user.tokens.access, current: replacementPassword, new: "another new one"), status: 429)
    }

    /// A request refused for its fields never reaches the password check: not counted.
    @Test func invalidFieldsAreNotCounted() throws {
        let user = try stack.newUser("pwthr422")
        for _ in 0..<5 {
            expectError(try stack.changePassword(user.tokens.access, current: "not the password", new: "short"), status: 422)
        }
        try stack.expectPasswordChanged(user.tokens.access, current: user.password, new: replacementPassword)
    }
}

@Suite("POST /auth/password throttling per address (LOGIN_ADDRESS_MAX_FAILURES=2)")
struct PasswordChangeAddressThrottleTests {
    @Test func wrongCurrentPasswordsCountForTheClientAddress() throws {
        let stack = try AccountStacks.throttledPerAddress()
        let user = try stack.newUser("pwaddr")
        let bystander = try stack.newUser("pwaddr2")
        for _ in 0..<2 {
            expectWrongPassword(try stack.changePassword(user.tokens.access, current: "not the password", new: replacementPassword),
                                message: "Current password is not valid")
        }
        // Another account from the same address is locked out too.
        let response = try stack.login(bystander.username, bystander.password)
        expectError(response, status: 429)
        #expect(response.header("Retry-After").flatMap { Int($0) }.map { (1...60).contains($0) } == true, "\(response)")
        #expect(try stack.redisCLI("GET", "auth:attempts:addr:{127.0.0.1}") == "2")
    }
}
