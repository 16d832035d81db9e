import Testing
@testable import AuthCore
import AuthTesting

/// GET /auth/verify, nginx's `auth_request` target, without sockets.
@Suite struct GatewayTests {
    /// The handler tests' service, store, clock and calls.
    let helper: HandlerTests

    init() throws { helper = try HandlerTests() }

    func verify(_ method: String = "GET", bearer: String?, gateway: GatewayParams = GatewayParams(),
                on service: AuthService? = nil) -> Response {
        let req = Request(method: method, path: "/auth/verify", authorization: bearer.map { "Bearer " + $0 }, gateway: gateway)
        return (service ?? helper.service).handle(req, worker: helper.worker)
    }

    /// The claims of an access token, read back without checking (the test's own token).
    func claims(_ token: String) throws -> Claims {
        try helper.service.access.verify(token, now: helper.clock.now())
    }

    @Test func aValidTokenPassesWithTheIdentityHeaders() throws {
        let (access, _) = helper.register("gwen")
        let c = try claims(access)
        for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            let r = verify(method, bearer: access)
            #expect(r.status == 204, "\(method)")
            #expect(r.body.isEmpty)
            #expect(r.header("X-Auth-User") == c.subject.rawValue)
            #expect(r.header("X-Auth-Session") == c.session.rawValue)
            #expect(r.header("X-Auth-Username") == "gwen")
            #expect(r.header("X-Auth-Roles") == "")
            #expect(r.header("X-Auth-Expires") == String(c.expiresAt))
            #expect(r.header("Cache-Control") == "no-store")
            #expect(r.header("X-Auth-Error") == nil)
        }
    }

    @Test func accessTokensNameTheUserAfterLoginAndRefreshToo() throws {
        let (_, refresh) = helper.register("hana")
        let login = helper.call("POST", "/auth/login", json: #"{"username":"hana","password":"password1"}"#)
        #expect(try claims(helper.string(login, "accessToken") ?? "").username == "hana")
        let rotated = helper.refresh(refresh)
        #expect(try claims(helper.string(rotated, "accessToken") ?? "").username == "hana")
        // The retry within the grace window re-issues the pair: named too.
        let graced = try HandlerTests.makeService(clock: helper.clock, ["REFRESH_REUSE_GRACE": "10"])
        let (_, first) = helper.register("ines", on: graced)
        _ = helper.refresh(first, on: graced)
        let retry = helper.refresh(first, on: graced)
        #expect(retry.status == 200)
        #expect(try claims(helper.string(retry, "accessToken") ?? "").username == "ines")
    }

    @Test func refusalsAreTheProtectedRoutesOnesWithTheErrorInAHeader() throws {
        let (access, refresh) = helper.register("jade")
        let cases: [(String?, Int, String)] = [
            (nil, 401, "token_missing"), ("garbage", 401, "token_invalid"), (refresh, 401, "token_invalid"),
            (access + "x", 401, "token_invalid"),
        ]
        for (bearer, status, code) in cases {
            let r = verify(bearer: bearer)
            let protected = helper.call("GET", "/", bearer: bearer)
            #expect(r.status == status)
            #expect(r.header("WWW-Authenticate") == protected.header("WWW-Authenticate"))
            #expect(r.body == protected.body)
            // The same error object, for nginx to answer with (it drops a subrequest's body).
            #expect(r.header("X-Auth-Error") == String(decoding: r.body, as: UTF8.self))
            #expect(r.header("X-Auth-Error")?.contains(#""code":"\#(code)""#) == true)
            #expect(r.header("X-Auth-User") == nil)
        }
        helper.clock.advance(3601)
        let expired = verify(bearer: access)
        #expect(expired.status == 401)
        #expect(helper.errorMessage(expired) == "jwt expired")
    }

    @Test func aRequiredRoleIsForbiddenWhileTokensHaveNone() {
        let (access, _) = helper.register("kira")
        let r = verify(bearer: access, gateway: GatewayParams(requireRole: "admin, ops"))
        #expect(r.status == 403)
        #expect(r.header("X-Auth-Error")?.contains(#""code":"role_required""#) == true)
        #expect(helper.errorMessage(r) == "Forbidden: requires the role admin or ops")
        // An empty list requires nothing.
        #expect(verify(bearer: access, gateway: GatewayParams(requireRole: " , ")).status == 204)
        // A bad token is 401 before any role is looked at.
        #expect(verify(bearer: "x", gateway: GatewayParams(requireRole: "admin")).status == 401)
    }

    @Test func sessionCheckPerLocationOrEverywhere() throws {
        let (access, refresh) = helper.register("lena")
        let on = GatewayParams(requireSessionCheck: "on")
        #expect(verify(bearer: access, gateway: on).status == 204)
        #expect(helper.call("DELETE", "/auth/logout", json: #"{"refreshToken":"\#(refresh)"}"#).status == 204)
        // Refused with or without a check: this service's revocations know of the logout.
        for gateway in [GatewayParams(), on] {
            let ended = verify(bearer: access, gateway: gateway)
            #expect(ended.status == 401)
            #expect(ended.header("X-Auth-Error")?.contains(#""code":"session_ended""#) == true)
        }
        // A service that did not hear of it (another instance before the feed told it):
        // only a check finds it out, from the store.
        let other = try HandlerTests.makeService(clock: helper.clock)
        #expect(verify(bearer: access, on: other).status == 204)
        #expect(verify(bearer: access, gateway: on, on: other).status == 401)
        let strict = try HandlerTests.makeService(clock: helper.clock, ["ACCESS_TOKEN_SESSION_CHECK": "true"])
        #expect(verify(bearer: access, on: strict).status == 401)
        // Redis down: 503 under a check (nginx answers it as JSON 503), 204 without.
        let (live, _) = helper.register("lina")
        helper.store.down = true
        #expect(verify(bearer: live, gateway: on).status == 503)
        #expect(verify(bearer: live).status == 204)
    }

    /// Every way a session ends reaches the revocations (the store reports what it ends),
    /// so its access tokens are refused without a store read.
    @Test func everyEndOfASessionRevokesItsAccessTokens() throws {
        func refused(_ token: String) -> Bool { verify(bearer: token).status == 401 }
        // Logout-all.
        let a = helper.register("nora")
        #expect(helper.call("POST", "/auth/logout-all", bearer: a.access).status == 204)
        #expect(refused(a.access))
        // A password change: the other sessions, not the caller's.
        let b = helper.register("olga")
        let b2 = helper.call("POST", "/auth/login", json: #"{"username":"olga","password":"password1"}"#)
        let b2access = helper.string(b2, "accessToken") ?? ""
        #expect(helper.call("POST", "/auth/password", json: #"{"currentPassword":"password1","newPassword":"password2"}"#,
                            bearer: b.access).status == 204)
        #expect(refused(b2access))
        #expect(!refused(b.access))
        // Account deletion.
        let c = helper.register("pia")
        #expect(helper.call("DELETE", "/auth/account", json: #"{"password":"password1"}"#, bearer: c.access).status == 204)
        #expect(refused(c.access))
        // A replayed refresh token.
        let d = helper.register("rosa")
        #expect(helper.refresh(d.refresh).status == 200)
        #expect(helper.refresh(d.refresh).status == 403)
        #expect(refused(d.access))
        // An entry lasts as long as an access token of the session can: then it goes.
        helper.clock.advance(3600)
        helper.service.revocations.prune(now: helper.clock.now())
        #expect(helper.service.revocations.count == 0)
    }

    @Test func aRequirementNginxGotWrongIs500NotAPass() {
        let (access, _) = helper.register("mona")
        for value in ["yes", "enabled", "2"] {
            let r = verify(bearer: access, gateway: GatewayParams(requireSessionCheck: value))
            #expect(r.status == 500)
            #expect(r.header("X-Auth-Error")?.contains(#""code":"gateway_misconfigured""#) == true)
        }
        for value in ["off", "OFF", "false", "0", ""] {
            #expect(verify(bearer: access, gateway: GatewayParams(requireSessionCheck: value)).status == 204)
        }
    }
}
