import Foundation
import Testing

@Suite("Token format and claims")
struct TokenClaimsTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    @Test func accessTokenHeader() throws {
        let jwt = try JWT(try stack.newUser("hdr").tokens.access)
        #expect(jwt.header["alg"] as? String == "HS256")
        #expect(jwt.header["typ"] as? String == "at+jwt")
        #expect(jwt.kid?.isEmpty == false)
    }

    @Test func refreshTokenHeader() throws {
        let jwt = try JWT(try stack.newUser("hdr").tokens.refresh)
        #expect(jwt.header["alg"] as? String == "HS256")
        #expect(jwt.header["typ"] as? String == "rt+jwt")
        #expect(jwt.kid?.isEmpty == false)
    }

    @Test(arguments: [("access", 3600), ("refresh", 365 * 86400)])
    func claims(kind: String, ttl: Int) throws {
        let before = now
        let pair = try stack.newUser("claims").tokens
        let after = now
        let jwt = try JWT(kind == "access" ? pair.access : pair.refresh)
        #expect(jwt.string("iss") == "authd-test")
        let sub = try #require(jwt.string("sub"))
        #expect(!sub.isEmpty)
        #expect(audience(jwt) == [sub], "aud is the user id: \(String(describing: jwt.payload["aud"]))")
        let iat = try #require(jwt.int("iat"))
        #expect((before - 1)...(after + 1) ~= iat)
        #expect(jwt.int("exp") == iat + ttl)
        #expect(jwt.string("jti")?.isEmpty == false)
        #expect(jwt.string("sid")?.isEmpty == false)
    }

    @Test func pairSharesUserAndSessionButNotJti() throws {
        let pair = try stack.newUser("pair").tokens
        let access = try JWT(pair.access), refresh = try JWT(pair.refresh)
        #expect(access.string("sub") == refresh.string("sub"))
        #expect(access.string("sid") == refresh.string("sid"))
        #expect(access.string("jti") != refresh.string("jti"))
    }

    @Test func accessAndRefreshAreSignedWithDifferentKeys() throws {
        let pair = try stack.newUser("keys").tokens
        let access = try JWT(pair.access), refresh = try JWT(pair.refresh)
        let accessKey = Array(Secrets.access.utf8), refreshKey = Array(Secrets.refresh.utf8)
        #expect(SHA256.hmac(key: accessKey, message: Array(access.signingInput.utf8)) == access.signature)
        #expect(SHA256.hmac(key: refreshKey, message: Array(refresh.signingInput.utf8)) == refresh.signature)
    }

    @Test func twoLoginsInTheSameSecondGiveDifferentTokens() throws {
        let user = try stack.newUser("same")
        let logins = concurrently(2) { _ in
            (try? stack.login(user.username, user.password)).flatMap(TokenPair.parse)
        }
        let first = try #require(logins[0]), second = try #require(logins[1])
        #expect(first.access != second.access)
        #expect(first.refresh != second.refresh)
        let a = try JWT(first.access), b = try JWT(second.access)
        #expect(a.string("jti") != b.string("jti"))
        #expect(a.string("sid") != b.string("sid"))
    }

    @Test func refreshKeepsUserAndSessionAndIssuesNewJti() throws {
        let user = try stack.newUser("rotclaims")
        let rotated = try stack.rotate(user.tokens.refresh)
        let old = try JWT(user.tokens.refresh), new = try JWT(rotated.refresh)
        #expect(new.string("sub") == old.string("sub"))
        #expect(new.string("sid") == old.string("sid"))
        #expect(new.string("jti") != old.string("jti"))
        let access = try JWT(rotated.access)
        #expect(access.string("sid") == old.string("sid"))
        #expect(access.header["typ"] as? String == "at+jwt")
        #expect(new.header["typ"] as? String == "rt+jwt")
    }

    private func audience(_ jwt: JWT) -> [String]? {
        if let single = jwt.payload["aud"] as? String { return [single] }
        return jwt.payload["aud"] as? [String]
    }
}

@Suite("GET /auth/me")
struct MeTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    @Test func answersIdUsernameAndCreatedAt() throws {
        let before = Date().addingTimeInterval(-2)
        let user = try stack.newUser("me")
        let after = Date().addingTimeInterval(2)
        let response = try stack.me(user.tokens.access)
        try #require(response.status == 200, "\(response)")
        let body = try #require(response.object)
        #expect(body["id"] as? String == (try JWT(user.tokens.access).string("sub")))
        #expect(body["username"] as? String == user.username)
        #expect(body["password"] == nil && body["passwordHash"] == nil && body["hash"] == nil, "\(response)")
        let createdAt = try #require(body["createdAt"] as? String)
        #expect(createdAt.hasSuffix("Z"), "not UTC: \(createdAt)")
        let date = try #require(parseISO8601(createdAt), "not ISO 8601: \(createdAt)")
        #expect(before <= date && date <= after, "\(createdAt)")
    }

    @Test func createdAtIsStableAcrossCalls() throws {
        let user = try stack.newUser("mestable")
        let first = try stack.me(user.tokens.access).object?["createdAt"] as? String
        let second = try stack.me(try stack.newSession(user).access).object?["createdAt"] as? String
        #expect(first != nil && first == second)
    }

    @Test func withoutTokenIs401() throws {
        expectMissingCredentials(try stack.me(nil))
    }

    @Test func refreshTokenIsNotAccepted() throws {
        let user = try stack.newUser("mert")
        expectInvalidToken(try stack.me(user.tokens.refresh))
    }

    private func parseISO8601(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
