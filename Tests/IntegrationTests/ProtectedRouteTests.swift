import Foundation
import Testing

/// Ways to spoil a valid access token. Each must give 401 `invalid_token`.
enum BadAccessToken: String, CaseIterable, Sendable {
    case garbage, twoSegments, fourSegments, emptySignature, notBase64
    case tamperedSignature, tamperedPayload
    case algNone, algNoneWithSignature, algNoneCapitalised
    case algEdDSAOnHMACKey, algHS512
    case signedWithWrongKey, signedWithRefreshSecret, refreshTokenAsAccessToken
    case unknownKid, typJWT, typRefresh, noTyp
    case notYetValid, wrongIssuer
    case missingSub, missingExp, expNotANumber, payloadNotAnObject, unknownCriticalHeader
    case expired

    /// Only an expired token has the message `jwt expired`.
    var isExpired: Bool { self == .expired }

    func make(from pair: TokenPair) throws -> String {
        let jwt = try JWT(pair.access)
        let s = jwt.segments
        switch self {
        case .garbage: return "garbage"
        case .twoSegments: return s[0] + "." + s[1]
        case .fourSegments: return pair.access + "." + s[2]
        case .emptySignature: return s[0] + "." + s[1] + "."
        case .notBase64: return s[0] + "." + s[1] + "." + "!!!" + s[2].dropFirst(3)
        case .tamperedSignature:
            let first = s[2].first!
            return s[0] + "." + s[1] + "." + (first == "A" ? "B" : "A") + s[2].dropFirst()
        case .tamperedPayload:
            let payload = Base64URL.encode(jsonBytes(jwt.payload.merging(["sub": "someone-else"]) { $1 }))
            return s[0] + "." + payload + "." + s[2]
        case .algNone: return jwt.resigned(header: ["alg": "none"], hmacKey: nil)
        case .algNoneWithSignature:
            let header = Base64URL.encode(jsonBytes(jwt.header.merging(["alg": "none"]) { $1 }))
            return header + "." + s[1] + "." + s[2]
        case .algNoneCapitalised: return jwt.resigned(header: ["alg": "None"], hmacKey: nil)
        case .algEdDSAOnHMACKey: return jwt.resigned(header: ["alg": "EdDSA"], hmacKey: Secrets.access)
        case .algHS512: return jwt.resigned(header: ["alg": "HS512"], hmacKey: Secrets.access)
        case .signedWithWrongKey:
            return jwt.resigned(hmacKey: "a-completely-different-secret-of-enough-length-0123456789")
        case .signedWithRefreshSecret: return jwt.resigned(hmacKey: Secrets.refresh)
        case .refreshTokenAsAccessToken: return pair.refresh
        case .unknownKid: return jwt.resigned(header: ["kid": "no-such-key"], hmacKey: Secrets.access)
        case .typJWT: return jwt.resigned(header: ["typ": "JWT"], hmacKey: Secrets.access)
        case .typRefresh: return jwt.resigned(header: ["typ": "rt+jwt"], hmacKey: Secrets.access)
        case .noTyp: return jwt.resigned(header: ["typ": nil], hmacKey: Secrets.access)
        case .notYetValid: return jwt.resigned(payload: ["nbf": now + 3600], hmacKey: Secrets.access)
        case .wrongIssuer: return jwt.resigned(payload: ["iss": "someone-else"], hmacKey: Secrets.access)
        case .missingSub: return jwt.resigned(payload: ["sub": nil], hmacKey: Secrets.access)
        case .missingExp: return jwt.resigned(payload: ["exp": nil], hmacKey: Secrets.access)
        case .expNotANumber: return jwt.resigned(payload: ["exp": "\(now + 3600)"], hmacKey: Secrets.access)
        case .payloadNotAnObject:
            let input = s[0] + "." + Base64URL.encode(Array("[]".utf8))
            return input + "." + Base64URL.encode(SHA256.hmac(key: Array(Secrets.access.utf8), message: Array(input.utf8)))
        case .unknownCriticalHeader:
            // RFC 7515 §4.1.11: a `crit` extension the verifier does not know must be refused.
            return jwt.resigned(header: ["crit": ["x-unknown"], "x-unknown": true], hmacKey: Secrets.access)
        case .expired:
            return jwt.resigned(payload: ["iat": now - 7200, "exp": now - 3600], hmacKey: Secrets.access)
        }
    }
}

@Suite("GET / (protected)")
struct ProtectedRouteTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    @Test func validTokenGives200WithTheUserIdOfTheToken() throws {
        let user = try stack.newUser("home")
        let response = try stack.home(user.tokens.access)
        try #require(response.status == 200, "\(response)")
        let body = try #require(response.object)
        let sub = try #require(try JWT(user.tokens.access).string("sub"))
        #expect(body["userId"] as? String == sub)
        #expect((body["message"] as? String)?.isEmpty == false)
    }

    /// The control for the forged-token cases: a token the test signs itself with the
    /// stack's access secret is accepted, so their 401s come from what they change.
    @Test func tokenResignedWithTheAccessSecretIsAccepted() throws {
        let user = try stack.newUser("forge")
        let jwt = try JWT(user.tokens.access)
        let mac = SHA256.hmac(key: Array(Secrets.access.utf8), message: Array(jwt.signingInput.utf8))
        #expect(mac == jwt.signature, "the test's HMAC-SHA256 disagrees with the service's")
        #expect(try stack.home(jwt.resigned(hmacKey: Secrets.access)).status == 200)
        let withNewJti = try JWT(user.tokens.access).resigned(payload: ["jti": "test-made"], hmacKey: Secrets.access)
        #expect(try stack.home(withNewJti).status == 200)
    }

    @Test(arguments: ["/", "/auth/me"])
    func noAuthorizationHeaderIs401WithBareChallenge(path: String) throws {
        expectMissingCredentials(try stack.call("GET", path))
    }

    @Test func logoutAllWithoutAuthorizationIs401WithBareChallenge() throws {
        expectMissingCredentials(try stack.logoutAll(nil))
    }

    @Test(arguments: BadAccessToken.allCases)
    func badTokenIs401InvalidToken(kind: BadAccessToken) throws {
        let user = try stack.newUser("bad")
        let token = try kind.make(from: user.tokens)
        expectInvalidToken(try stack.home(token), expired: kind.isExpired)
    }

    @Test(arguments: [BadAccessToken.tamperedSignature, .refreshTokenAsAccessToken, .expired, .algNone])
    func badTokenIs401OnMeAndLogoutAllToo(kind: BadAccessToken) throws {
        let user = try stack.newUser("badme")
        let token = try kind.make(from: user.tokens)
        expectInvalidToken(try stack.me(token), expired: kind.isExpired)
        expectInvalidToken(try stack.logoutAll(token), expired: kind.isExpired)
        // The sessions survive a rejected logout-all.
        _ = try stack.rotate(user.tokens.refresh)
    }

    @Test(arguments: ["bearer", "BEARER", "BeArEr"])
    func schemeIsCaseInsensitive(scheme: String) throws {
        let user = try stack.newUser("scheme")
        let response = try stack.get("/", authorization: "\(scheme) \(user.tokens.access)")
        #expect(response.status == 200, "\(response)")
    }

    @Test(arguments: ["Bearer", "Bearer ", "Basic dXNlcjpwYXNzd29yZA==", "Token abc.def.ghi", "Bearerabc.def.ghi"])
    func malformedOrOtherSchemeIs401(authorization: String) throws {
        let response = try stack.get("/", authorization: authorization)
        expectError(response, status: 401, message: "Unauthorized")
        #expect(response.header("WWW-Authenticate")?.hasPrefix("Bearer") == true, "\(response)")
    }

    @Test func otherSchemeWithAValidTokenIs401() throws {
        let user = try stack.newUser("basic")
        let response = try stack.get("/", authorization: "Basic \(user.tokens.access)")
        expectError(response, status: 401)
    }

    @Test(arguments: ["access_token", "token", "accessToken"])
    func tokenInQueryStringIsIgnored(parameter: String) throws {
        let user = try stack.newUser("query")
        let response = try stack.call("GET", "/?\(parameter)=\(user.tokens.access)")
        expectMissingCredentials(response)
    }
}

@Suite("Token expiry (ACCESS_TOKEN_TTL=1, REFRESH_TOKEN_TTL=1)")
struct ExpiryTests {
    @Test func expiredAccessTokenIs401JwtExpired() async throws {
        let stack = try Stacks.shortLivedTokens()
        let user = try stack.newUser("exp")
        #expect(try stack.home(user.tokens.access).status == 200)
        try await Task.sleep(for: .milliseconds(2200))
        expectInvalidToken(try stack.home(user.tokens.access), expired: true)
        expectInvalidToken(try stack.me(user.tokens.access), expired: true)
        expectInvalidToken(try stack.logoutAll(user.tokens.access), expired: true)
    }

    @Test func expiredRefreshTokenIs403OnRefreshAndLogout() async throws {
        let stack = try Stacks.shortLivedTokens()
        let user = try stack.newUser("expr")
        try await Task.sleep(for: .milliseconds(2200))
        expectError(try stack.refresh(user.tokens.refresh), status: 403)
        expectError(try stack.logout(user.tokens.refresh), status: 403)
    }
}

@Suite("Issuer check (a second stack with JWT_ISSUER=authd-other, same secrets)")
struct IssuerTests {
    @Test func tokenOfAnotherIssuerIs401() throws {
        let a = try Stacks.standard()
        let b = try Stacks.anotherIssuer()
        let fromA = try a.newUser("issa")
        let fromB = try b.newUser("issb")
        #expect(try JWT(fromB.tokens.access).string("iss") == "authd-other")
        #expect(try b.home(fromB.tokens.access).status == 200)
        expectInvalidToken(try b.home(fromA.tokens.access))
        expectInvalidToken(try a.home(fromB.tokens.access))
    }
}
