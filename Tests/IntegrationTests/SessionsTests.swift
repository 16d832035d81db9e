import Foundation
import Testing

/// A session id of the right shape that no session has (22 base64url characters).
let unknownSessionID = "AAAAAAAAAAAAAAAAAAAAAA"

/// Ids that are not 22 base64url characters: each must be 404 `Session not found`.
let malformedSessionIDs: [String] = [
    "abc",
    String(repeating: "A", count: 21),
    String(repeating: "A", count: 23),
    String(repeating: "A", count: 44),
    "AAAAAAAAAAAAAAAAAAAAA*",   // 22 characters, one not base64url
    "AAAAAAAAAAAAAAAAAAAAA~",
    "AAAAAAAAAAAAAAAAAAAA==",   // padding
    "AAAAAAAAAAAAAAAAAAAAA%2B", // '+' (standard base64) percent-encoded
    "AAAAAAAAAAAAAAAAAAAAAA/AAAAAAAAAAAAAAAAAAAAAA",
]

@Suite("GET /auth/sessions")
struct SessionsListTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    @Test func oneSessionWithEveryFieldAsCaptured() throws {
        let username = uniqueName("sess")
        let before = now
        let registered = try stack.retryingBusy { try stack.register(username, validPassword, userAgent: "it-agent/1.0 (register)") }
        let after = now
        let pair = try expectTokens(registered, status: 201)
        let sid = try sessionID(of: pair.access)
        #expect(try sessionID(of: pair.refresh) == sid)

        let response = try stack.sessions(pair.access)
        let body = try #require(response.object, "\(response)")
        #expect(Set(body.keys) == ["sessions", "nextCursor"], "\(response)")
        #expect(body["nextCursor"] is NSNull, "one session, yet a next page: \(response)")
        let list = try stack.listSessions(pair.access)
        try #require(list.count == 1, "\(list)")
        let entry = list[0]
        #expect(entry.keys == ["id", "createdAt", "lastUsedAt", "userAgent", "address", "current"], "\(entry.keys)")
        #expect(entry.id == sid)
        #expect(isSessionIDShaped(entry.id), "\(entry.id)")
        #expect(entry.userAgent == "it-agent/1.0 (register)")
        #expect(entry.address == "127.0.0.1")
        #expect(entry.current)
        let created = try #require(entry.createdSeconds, "createdAt \(entry.createdAt) is not YYYY-MM-DDTHH:MM:SSZ")
        #expect((before...after).contains(created), "createdAt \(entry.createdAt) not within the registration (\(before)...\(after))")
        #expect(entry.lastUsedAt == entry.createdAt, "lastUsedAt before any refresh: \(entry)")
    }

    @Test func loginWithoutUserAgentGivesAnEmptyOne() throws {
        let user = try stack.newUser("noua")  // the test client sends no User-Agent
        let list = try stack.listSessions(user.tokens.access)
        try #require(list.count == 1, "\(list)")
        #expect(list[0].userAgent == "")
    }

    @Test func userAgentIsCutTo256BytesAtACharacterBoundary() throws {
        let user = try stack.newUser("longua")
        let ascii = String(repeating: "x", count: 300)
        let a = try TokenPair(try stack.retryingBusy { try stack.login(user.username, user.password, userAgent: ascii) })
        // "ab" then 3-byte characters: 2 + 3 * 84 = 254 bytes fit, the 85th would end at 257.
        let euro = "ab" + String(repeating: "€", count: 100)
        let b = try TokenPair(try stack.retryingBusy { try stack.login(user.username, user.password, userAgent: euro) })
        let list = try stack.listSessions(user.tokens.access)
        let byID = Dictionary(list.map { ($0.id, $0) }, uniquingKeysWith: { x, _ in x })
        #expect(byID[try sessionID(of: a.access)]?.userAgent == String(repeating: "x", count: 256), "\(list)")
        #expect(byID[try sessionID(of: b.access)]?.userAgent == "ab" + String(repeating: "€", count: 84), "\(list)")
    }

    @Test func everyLiveSessionIsListedAndExactlyTheCallersIsCurrent() throws {
        let user = try stack.newUser("many")
        let second = try stack.newSession(user)
        let third = try stack.newSession(user)
        let pairs = [user.tokens, second, third]
        let sids = try pairs.map { try sessionID(of: $0.refresh) }
        #expect(Set(sids).count == 3)
        for pair in pairs {
            let list = try stack.listSessions(pair.access)
            #expect(Set(list.map(\.id)) == Set(sids), "\(list)")
            #expect(list.count == 3, "\(list)")
            #expect(list.filter(\.current).map(\.id) == [try sessionID(of: pair.access)], "\(list)")
            #expect(list.allSatisfy { $0.address == "127.0.0.1" && isSessionIDShaped($0.id) }, "\(list)")
        }
    }

    @Test func otherUsersSessionsAreNotListed() throws {
        let user = try stack.newUser("mine")
        let other = try stack.newUser("theirs")
        _ = try stack.newSession(other)
        let list = try stack.listSessions(user.tokens.access)
        #expect(list.map(\.id) == [try sessionID(of: user.tokens.access)], "\(list)")
    }

    @Test func refreshKeepsTheIdAndUpdatesUserAgentAndLastUsedAt() throws {
        let user = try stack.newUser("refua")
        let pair = try TokenPair(try stack.retryingBusy { try stack.login(user.username, user.password, userAgent: "first-agent/1") })
        let sid = try sessionID(of: pair.access)
        let loggedIn = now
        let before = try #require(try stack.listSessions(user.tokens.access).first { $0.id == sid })
        #expect(before.userAgent == "first-agent/1")
        waitForSecondAfter(loggedIn)  // so that a refresh stamps a later second
        let refreshedAt = now
        let next = try expectTokens(try stack.refresh(pair.refresh, userAgent: "second-agent/2"), status: 200)
        #expect(try sessionID(of: next.access) == sid)
        #expect(try sessionID(of: next.refresh) == sid)
        let list = try stack.listSessions(next.access)
        #expect(list.count == 2, "\(list)")
        let after = try #require(list.first { $0.id == sid }, "session \(sid) gone after a refresh: \(list)")
        #expect(after.current)
        #expect(after.userAgent == "second-agent/2")
        #expect(after.address == "127.0.0.1")
        #expect(after.createdAt == before.createdAt, "createdAt changed by a refresh: \(before) -> \(after)")
        let used = try #require(after.lastUsedSeconds, "\(after.lastUsedAt)")
        #expect(used >= refreshedAt && used <= now, "lastUsedAt \(after.lastUsedAt) is not the refresh's time (\(refreshedAt))")
        #expect(after.lastUsedAt > after.createdAt, "\(after)")
        // The access token of before the refresh names the same session: still current.
        #expect(try stack.listSessions(pair.access).filter(\.current).map(\.id) == [sid])
    }

    @Test func mostRecentlyUsedFirst() throws {
        let user = try stack.newUser("order")  // a
        let a = try sessionID(of: user.tokens.access)
        waitForSecondAfter(now)
        let bPair = try stack.newSession(user)
        let b = try sessionID(of: bPair.access)
        waitForSecondAfter(now)
        let cPair = try stack.newSession(user)
        let c = try sessionID(of: cPair.access)
        #expect(try stack.listSessions(user.tokens.access).map(\.id) == [c, b, a], "newest first before any refresh")
        waitForSecondAfter(now)
        _ = try stack.rotate(user.tokens.refresh)  // a is now the most recently used
        let list = try stack.listSessions(cPair.access)
        #expect(list.map(\.id) == [a, c, b], "\(list)")
        expectOrdered(list)
    }

    @Test func sessionsStartedInOneBurstAreOrderedByTheRule() throws {
        let user = try stack.newUser("burst")
        _ = concurrently(6) { _ in try? stack.login(user.username, user.password) }
        _ = try stack.rotate(user.tokens.refresh)
        let list = try stack.listSessions(user.tokens.access)
        #expect(list.count >= 2, "\(list)")
        expectOrdered(list)
    }

    @Test func endedSessionsAreAbsent() throws {
        let user = try stack.newUser("ended")
        let loggedOut = try stack.newSession(user)
        let replayed = try stack.newSession(user)
        let kept = try stack.newSession(user)
        expectNoContent(try stack.logout(loggedOut.refresh))
        _ = try stack.rotate(replayed.refresh)
        expectError(try stack.refresh(replayed.refresh), status: 403)  // a replay ends it
        let list = try stack.listSessions(kept.access)
        #expect(Set(list.map(\.id)) == Set([try sessionID(of: user.tokens.access), try sessionID(of: kept.access)]), "\(list)")
    }

    @Test func afterLogoutAllTheListIsEmpty() throws {
        let user = try stack.newUser("allgone")
        _ = try stack.newSession(user)
        #expect(try stack.listSessions(user.tokens.access).count == 2)
        expectNoContent(try stack.logoutAll(user.tokens.access))
        // Nothing is left to list, and the caller's access token ended with its session.
        try expectSessionEndedSoon { try stack.call("GET", "/auth/sessions", bearer: user.tokens.access) }
        let fresh = try stack.newSession(user)
        #expect(try stack.listSessions(fresh.access).map(\.id) == [try sessionID(of: fresh.access)])
    }

    /// An ended session's access token no longer lists anything (it is refused); the
    /// list of the session that remains marks only that one as current.
    @Test func anEndedSessionsTokenListsNothing() throws {
        let user = try stack.newUser("nocurrent")
        let other = try stack.newSession(user)
        expectNoContent(try stack.logout(user.tokens.refresh))
        try expectSessionEndedSoon { try stack.call("GET", "/auth/sessions", bearer: user.tokens.access) }
        let list = try stack.listSessions(other.access)
        #expect(list.map(\.id) == [try sessionID(of: other.access)], "\(list)")
        #expect(list.filter(\.current).count == 1, "\(list)")
    }

    @Test func headAnswers200WithoutABody() throws {
        let user = try stack.newUser("headsess")
        let response = try stack.sessions(user.tokens.access, method: "HEAD")
        #expect(response.status == 200 && response.body.isEmpty, "\(response)")
        let refused = try stack.sessions(nil, method: "HEAD")
        #expect(refused.status == 401 && refused.body.isEmpty, "\(refused)")
    }

    @Test func withoutTokenIs401() throws {
        expectMissingCredentials(try stack.sessions(nil))
    }

    @Test(arguments: [BadAccessToken.tamperedSignature, .refreshTokenAsAccessToken, .expired, .algNone, .garbage])
    func badTokenIs401(kind: BadAccessToken) throws {
        let user = try stack.newUser("badsess")
        expectInvalidToken(try stack.sessions(try kind.make(from: user.tokens)), expired: kind.isExpired)
    }

    @Test(arguments: ["POST", "PUT", "DELETE", "PATCH"])
    func otherMethodsAre405AllowingGetAndHead(method: String) throws {
        let user = try stack.newUser("m405")
        let response = try stack.call(method, "/auth/sessions", bearer: user.tokens.access)
        expectError(response, status: 405)
        #expect(allowedMethods(response) == ["GET", "HEAD"], "Allow: \(response.header("Allow") ?? "(missing)")")
        #expect(try stack.listSessions(user.tokens.access).count == 1, "a refused \(method) changed the sessions")
    }
}

@Suite("DELETE /auth/sessions/{id}")
struct SessionsDeleteTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    @Test func endsAnotherSessionOfTheCaller() throws {
        let user = try stack.newUser("endone")
        let other = try stack.newSession(user)
        let bystander = try stack.newSession(user)
        let id = try sessionID(of: other.refresh)
        expectNoContent(try stack.endSession(id, user.tokens.access))
        expectError(try stack.refresh(other.refresh), status: 403)
        let list = try stack.listSessions(user.tokens.access)
        #expect(!list.map(\.id).contains(id), "\(list)")
        #expect(list.count == 2, "\(list)")
        // The caller's session and the third one are untouched.
        _ = try stack.rotate(user.tokens.refresh)
        _ = try stack.rotate(bystander.refresh)
        // Gone now: the same answer as for any unknown id.
        expectError(try stack.endSession(id, user.tokens.access), status: 404, message: "Session not found")
    }

    @Test func endsARotatedSessionWhateverTokenItIsAt() throws {
        let user = try stack.newUser("endrot")
        let other = try stack.newSession(user)
        let rotated = try stack.rotate(try stack.rotate(other.refresh).refresh)
        expectNoContent(try stack.endSession(try sessionID(of: other.refresh), user.tokens.access))
        expectError(try stack.refresh(rotated.refresh), status: 403)
    }

    @Test func endingTheCallersOwnSessionIsAllowed() throws {
        let user = try stack.newUser("endself")
        let other = try stack.newSession(user)
        let own = try sessionID(of: user.tokens.access)
        expectNoContent(try stack.endSession(own, user.tokens.access))
        expectError(try stack.refresh(user.tokens.refresh), status: 403)
        let list = try stack.listSessions(other.access)
        #expect(list.map(\.id) == [try sessionID(of: other.access)], "\(list)")
        _ = try stack.rotate(other.refresh)
    }

    @Test func anotherUsersSessionIs404AndUntouched() throws {
        let user = try stack.newUser("thief")
        let victim = try stack.newUser("victim")
        let victimSession = try sessionID(of: victim.tokens.refresh)
        let response = try stack.endSession(victimSession, user.tokens.access)
        expectError(response, status: 404, message: "Session not found")
        // Not a different answer from an unknown id: nothing to learn about other users.
        let unknown = try stack.endSession(unknownSessionID, user.tokens.access)
        #expect(unknown.status == response.status && unknown.text == response.text, "\(unknown) vs \(response)")
        let next = try stack.rotate(victim.tokens.refresh)
        #expect(try stack.listSessions(next.access).map(\.id) == [victimSession])
        _ = try stack.rotate(next.refresh)
        // The caller's own sessions are untouched too.
        _ = try stack.rotate(user.tokens.refresh)
    }

    @Test func unknownIdIs404() throws {
        let user = try stack.newUser("unknownsid")
        expectError(try stack.endSession(unknownSessionID, user.tokens.access), status: 404, message: "Session not found")
        _ = try stack.rotate(user.tokens.refresh)
    }

    @Test func idOfASessionEndedByLogoutIs404() throws {
        let user = try stack.newUser("endedsid")
        let other = try stack.newSession(user)
        expectNoContent(try stack.logout(other.refresh))
        expectError(try stack.endSession(try sessionID(of: other.refresh), user.tokens.access), status: 404,
                    message: "Session not found")
    }

    @Test(arguments: malformedSessionIDs)
    func malformedIdIs404(id: String) throws {
        let user = try stack.newUser("badsid")
        let response = try stack.endSession(id, user.tokens.access)
        expectError(response, status: 404)
        if !id.contains("/") {
            #expect(response.object.flatMap { ($0["error"] as? [String: Any])?["message"] as? String } == "Session not found",
                    "\(response)")
        }
        _ = try stack.rotate(user.tokens.refresh)
    }

    /// A session id differing only in letter case is another id.
    @Test func idIsCaseSensitive() throws {
        let user = try stack.newUser("sidcase")
        let other = try stack.newSession(user)
        let id = try sessionID(of: other.refresh)
        let flipped = String(id.map { $0.isUppercase ? Character($0.lowercased()) : Character($0.uppercased()) })
        try #require(flipped != id, "an id without letters: \(id)")
        expectError(try stack.endSession(flipped, user.tokens.access), status: 404, message: "Session not found")
        _ = try stack.rotate(other.refresh)
    }

    @Test(arguments: ["DELETE", "GET"])
    func emptyIdIs404(method: String) throws {
        let user = try stack.newUser("emptysid")
        expectError(try stack.call(method, "/auth/sessions/", bearer: user.tokens.access), status: 404)
        _ = try stack.rotate(user.tokens.refresh)
    }

    @Test(arguments: ["GET", "POST", "PUT", "PATCH"])
    func otherMethodsAre405AllowingDelete(method: String) throws {
        let user = try stack.newUser("d405")
        let other = try stack.newSession(user)
        let response = try stack.call(method, "/auth/sessions/" + (try sessionID(of: other.refresh)), bearer: user.tokens.access)
        expectError(response, status: 405)
        #expect(allowedMethods(response) == ["DELETE"], "Allow: \(response.header("Allow") ?? "(missing)")")
        _ = try stack.rotate(other.refresh)
    }

    @Test func withoutTokenIs401AndEndsNothing() throws {
        let user = try stack.newUser("sidnotoken")
        expectMissingCredentials(try stack.endSession(try sessionID(of: user.tokens.refresh), nil))
        _ = try stack.rotate(user.tokens.refresh)
    }

    @Test(arguments: [BadAccessToken.tamperedSignature, .refreshTokenAsAccessToken, .expired, .signedWithWrongKey])
    func badTokenIs401AndEndsNothing(kind: BadAccessToken) throws {
        let user = try stack.newUser("sidbadtoken")
        let response = try stack.endSession(try sessionID(of: user.tokens.refresh), try kind.make(from: user.tokens))
        expectInvalidToken(response, expired: kind.isExpired)
        _ = try stack.rotate(user.tokens.refresh)
    }

    /// A forged token naming the victim as `sub` is refused by its signature, so it
    /// cannot reach the victim's sessions.
    @Test func tokenWithAnotherSubjectButNoValidSignatureIs401() throws {
        let user = try stack.newUser("forgesub")
        let victim = try stack.newUser("forgevictim")
        let forged = try JWT(user.tokens.access).resigned(payload: ["sub": try userID(of: victim.tokens.access)],
                                                          hmacKey: "a-completely-different-secret-of-enough-length-0123456789")
        expectInvalidToken(try stack.endSession(try sessionID(of: victim.tokens.refresh), forged))
        _ = try stack.rotate(victim.tokens.refresh)
    }
}

/// The `Allow` header as a set of methods.
func allowedMethods(_ response: HTTPResponse) -> Set<String> {
    Set((response.header("Allow") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
}

/// Most recently used first: `lastUsedAt` descending, then `createdAt` descending.
func expectOrdered(_ list: [SessionEntry], sourceLocation: SourceLocation = #_sourceLocation) {
    for (earlier, later) in zip(list, list.dropFirst()) {
        let a = (earlier.lastUsedSeconds ?? 0, earlier.createdSeconds ?? 0)
        let b = (later.lastUsedSeconds ?? 0, later.createdSeconds ?? 0)
        #expect(a >= b, "\(earlier) listed before \(later)", sourceLocation: sourceLocation)
    }
}
