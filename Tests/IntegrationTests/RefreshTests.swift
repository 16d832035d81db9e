import Foundation
import Testing

/// Ways to spoil a valid refresh token. Each must give 403 on refresh and on logout.
enum BadRefreshToken: String, CaseIterable, Sendable {
    case garbage, jwtShaped, accessTokenAsRefreshToken
    case tamperedSignature, tamperedSession
    case algNone, signedWithWrongKey, signedWithAccessSecret
    case unknownKid, typAccess, wrongIssuer, expired, notYetValid

    func make(from pair: TokenPair) throws -> String {
        let jwt = try JWT(pair.refresh)
        let s = jwt.segments
        switch self {
        case .garbage: return "garbage"
        case .jwtShaped: return "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"
        case .accessTokenAsRefreshToken: return pair.access
        case .tamperedSignature:
            return s[0] + "." + s[1] + "." + (s[2].first == "A" ? "B" : "A") + s[2].dropFirst()
        case .tamperedSession:
            let payload = Base64URL.encode(jsonBytes(jwt.payload.merging(["sid": "another-session"]) { $1 }))
            return s[0] + "." + payload + "." + s[2]
        case .algNone: return jwt.resigned(header: ["alg": "none"], hmacKey: nil)
        case .signedWithWrongKey:
            return jwt.resigned(hmacKey: "a-completely-different-secret-of-enough-length-0123456789")
        case .signedWithAccessSecret: return jwt.resigned(hmacKey: Secrets.access)
        case .unknownKid: return jwt.resigned(header: ["kid": "no-such-key"], hmacKey: Secrets.refresh)
        case .typAccess: return jwt.resigned(header: ["typ": "at+jwt"], hmacKey: Secrets.refresh)
        case .wrongIssuer: return jwt.resigned(payload: ["iss": "someone-else"], hmacKey: Secrets.refresh)
        case .expired:
            return jwt.resigned(payload: ["iat": now - 7200, "exp": now - 3600], hmacKey: Secrets.refresh)
        case .notYetValid: return jwt.resigned(payload: ["nbf": now + 3600], hmacKey: Secrets.refresh)
        }
    }
}

/// Bodies without a usable `refreshToken` string: 400 on refresh and logout.
let missingOrNonStringTokenBodies: [String] = [
    "{}",
    #"{"refreshToken":null}"#,
    #"{"refreshToken":123}"#,
    #"{"refreshToken":true}"#,
    #"{"refreshToken":["a.b.c"]}"#,
    #"{"refreshToken":{"token":"a.b.c"}}"#,
    #"{"refresh_token":"a.b.c"}"#,
]

@Suite("POST /auth/refresh-token")
struct RefreshTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    @Test func answers200WithANewPair() throws {
        let user = try stack.newUser("ref")
        let pair = try expectTokens(try stack.refresh(user.tokens.refresh), status: 200)
        #expect(pair.refresh != user.tokens.refresh)
        #expect(pair.access != user.tokens.access)
        let home = try stack.home(pair.access)
        #expect(home.status == 200)
        #expect(home.object?["userId"] as? String == (try JWT(user.tokens.access).string("sub")))
    }

    @Test func newRefreshTokenCanBeRotatedAgain() throws {
        let user = try stack.newUser("chain")
        var token = user.tokens.refresh
        for _ in 0..<5 { token = try stack.rotate(token).refresh }
    }

    /// The control for the forged cases: the test's own signature over an unchanged
    /// refresh token is accepted.
    @Test func tokenResignedWithTheRefreshSecretIsAccepted() throws {
        let user = try stack.newUser("reforge")
        let resigned = try JWT(user.tokens.refresh).resigned(hmacKey: Secrets.refresh)
        _ = try expectTokens(try stack.refresh(resigned), status: 200)
    }

    @Test(arguments: missingOrNonStringTokenBodies)
    func missingOrNonStringTokenIs400(body: String) throws {
        expectError(try stack.call("POST", "/auth/refresh-token", body: Array(body.utf8)), status: 400)
    }

    @Test func emptyStringTokenIsRefused() throws {
        let response = try stack.refresh("")
        #expect(response.status == 400 || response.status == 403, "\(response)")
        expectError(response)
    }

    @Test(arguments: BadRefreshToken.allCases)
    func badTokenIs403AndLeavesTheSessionAlone(kind: BadRefreshToken) throws {
        let user = try stack.newUser("badref")
        expectError(try stack.refresh(try kind.make(from: user.tokens)), status: 403)
        _ = try expectTokens(try stack.refresh(user.tokens.refresh), status: 200)
    }

    @Test func replayedTokenIs403AndEndsTheSession() throws {
        let user = try stack.newUser("replay")
        let a = user.tokens.refresh
        let b = try stack.rotate(a).refresh
        expectError(try stack.refresh(a), status: 403)
        expectError(try stack.refresh(b), status: 403)
    }

    @Test func replayEndsOnlyItsOwnSession() throws {
        let user = try stack.newUser("replay2")
        let other = try stack.newSession(user)
        let a = user.tokens.refresh
        let b = try stack.rotate(a).refresh
        expectError(try stack.refresh(a), status: 403)
        expectError(try stack.refresh(b), status: 403)
        _ = try stack.rotate(other.refresh)
    }

    @Test func fortyParallelRefreshesOfOneTokenGiveExactlyOne200() throws {
        let user = try stack.newUser("race")
        let token = user.tokens.refresh
        let responses = concurrently(40) { _ in try? stack.refresh(token) }
        let statuses = responses.map { $0?.status ?? -1 }
        #expect(statuses.filter { $0 == 200 }.count == 1, "\(statuses.sorted())")
        #expect(statuses.filter { $0 == 403 }.count == 39, "\(statuses.sorted())")
        // Every loser presented a token that was no longer current: a replay, so the
        // session is over, including the winner's new token.
        let winner = try #require(responses.compactMap { $0 }.first { $0.status == 200 }.flatMap(TokenPair.parse))
        expectError(try stack.refresh(winner.refresh), status: 403)
    }
}

@Suite("Refresh retry grace (REFRESH_REUSE_GRACE=5)")
struct RefreshGraceTests {
    let stack: Stack
    init() throws { stack = try Stacks.retryGrace() }

    @Test func parentWithinGraceGetsTheSameRefreshTokenAndAFreshAccessToken() throws {
        let user = try stack.newUser("grace")
        let a = user.tokens.refresh
        let first = try stack.rotate(a)
        let retry = try expectTokens(try stack.refresh(a), status: 200)
        #expect(retry.refresh == first.refresh)
        #expect(retry.access != first.access)
        #expect(try stack.home(retry.access).status == 200)
        #expect(try JWT(retry.access).string("sid") == JWT(a).string("sid"))
    }

    @Test func sessionContinuesAfterARetry() throws {
        let user = try stack.newUser("graceok")
        let a = user.tokens.refresh
        let b = try stack.rotate(a).refresh
        #expect(try stack.rotate(a).refresh == b)
        let c = try stack.rotate(b).refresh
        _ = try stack.rotate(c)
    }

    @Test func parallelRetriesWithinGraceAllGetTheSameNewRefreshToken() throws {
        let user = try stack.newUser("gracerace")
        let responses = concurrently(20) { _ in try? stack.refresh(user.tokens.refresh) }
        let statuses = responses.map { $0?.status ?? -1 }
        #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses.sorted())")
        let refreshTokens = Set(responses.compactMap { $0.flatMap(TokenPair.parse)?.refresh })
        #expect(refreshTokens.count == 1, "\(refreshTokens.count) different refresh tokens")
        _ = try stack.rotate(try #require(refreshTokens.first))
    }

    @Test func grandparentIsAReplayAndEndsTheSession() throws {
        let user = try stack.newUser("gparent")
        let a = user.tokens.refresh
        let b = try stack.rotate(a).refresh
        let c = try stack.rotate(b).refresh
        expectError(try stack.refresh(a), status: 403)
        expectError(try stack.refresh(c), status: 403)
    }
}

@Suite("Sessions: short grace, idle expiry, leeway (REFRESH_REUSE_GRACE=1, REFRESH_IDLE_TTL=6, ACCESS_TOKEN_TTL=1, JWT_LEEWAY=30)")
struct SessionTimingTests {
    let stack: Stack
    init() throws { stack = try Stacks.tunedSessions() }

    @Test func parentAfterTheGraceWindowIsAReplay() async throws {
        let user = try stack.newUser("graceend")
        let a = user.tokens.refresh
        let b = try stack.rotate(a).refresh
        // 2.2 s: past a 1 s window even when it is measured in whole seconds.
        try await Task.sleep(for: .milliseconds(2200))
        expectError(try stack.refresh(a), status: 403)
        expectError(try stack.refresh(b), status: 403)
    }

    @Test func sessionNotRefreshedForTheIdleTimeEnds() async throws {
        let user = try stack.newUser("idle")
        try await Task.sleep(for: .milliseconds(7500))
        expectError(try stack.refresh(user.tokens.refresh), status: 403)
    }

    @Test func refreshingKeepsAnIdleLimitedSessionAlive() throws {
        let user = try stack.newUser("active")
        var token = user.tokens.refresh
        // Gaps of 2 s stay well inside the 6 s idle limit; 8 s in all is past the idle time
        // since login. A blocking sleep, not Task.sleep: the other tests' blocking sockets
        // can hold the cooperative pool, and a late wake-up would stretch a gap past 6 s.
        for _ in 0..<4 {
            Thread.sleep(forTimeInterval: 2)
            token = try stack.rotate(token).refresh
        }
    }

    @Test func leewayAcceptsARecentlyExpiredAccessToken() throws {
        let user = try stack.newUser("leeway")
        // Blocking: a late Task.sleep wake-up (a busy cooperative pool) could pass the leeway.
        Thread.sleep(forTimeInterval: 2.2)
        #expect(try JWT(user.tokens.access).int("exp")! < now)
        #expect(try stack.home(user.tokens.access).status == 200)
    }

    @Test func leewayDoesNotCoverLongExpiredTokens() throws {
        let user = try stack.newUser("leeway2")
        let old = try JWT(user.tokens.access).resigned(payload: ["iat": now - 3600, "exp": now - 60], hmacKey: Secrets.access)
        expectInvalidToken(try stack.home(old), expired: true)
    }
}
