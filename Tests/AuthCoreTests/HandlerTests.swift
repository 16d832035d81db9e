import Dispatch
import Logging
import Testing
@testable import AuthCore
import AuthTesting

/// Drives `AuthService.handle` without sockets: routing, validation, token rules and the
/// session decisions, against an in-memory store and a controllable clock.
@Suite struct HandlerTests {
    let clock = TestClock()
    let store: MemoryStore
    let service: AuthService
    var worker: Worker { Worker(store: store) }

    init() throws {
        store = MemoryStore(clock: clock)
        service = try Self.makeService(clock: clock)
        // The store reports the sessions it ends, as the Redis scripts publish them.
        store.revocations = service.revocations
    }

    static func makeService(clock: TestClock, _ extra: [String: String] = [:], hasher: any PasswordHasher = PlainHasher()) throws -> AuthService {
        let env = ["ACCESS_TOKEN_SECRET": String(repeating: "a", count: 32),
                   "REFRESH_TOKEN_SECRET": String(repeating: "b", count: 32), "WORKERS": "4"].merging(extra) { $1 }
        let config = try Config(env: env)
        return AuthService(config: config, access: KeyRing(signing: ChecksumKey(kid: "a1", secret: 1)),
                           refresh: KeyRing(signing: ChecksumKey(kid: "r1", secret: 2)), clock: clock,
                           hasher: hasher, decoyHash: "plain:\u{0}never", logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    func call(_ method: String, _ path: String, json: String? = nil, bearer: String? = nil,
              contentType: String? = "application/json", on service: AuthService? = nil) -> Response {
        let req = Request(method: method, path: path, contentType: json == nil ? nil : contentType,
                          authorization: bearer.map { "Bearer " + $0 }, body: Array((json ?? "").utf8))
        return (service ?? self.service).handle(req, worker: worker)
    }

    func body(_ r: Response) -> [String: JSONValue] {
        guard case .object(let o)? = try? JSONParser.parse(r.body) else { return [:] }
        return o
    }
    func string(_ r: Response, _ key: String) -> String? {
        if case .string(let s)? = body(r)[key] { return s }
        return nil
    }
    func errorMessage(_ r: Response) -> String? {
        guard case .object(let e)? = body(r)["error"], case .string(let m)? = e["message"], case .number(let s)? = e["status"],
              Int(s) == r.status else { return nil }
        return m
    }
    func register(_ name: String = "alice", _ password: String = "password1", on service: AuthService? = nil) -> (access: String, refresh: String) {
        let r = call("POST", "/auth/register", json: #"{"username":"\#(name)","password":"\#(password)"}"#, on: service)
        return (string(r, "accessToken") ?? "", string(r, "refreshToken") ?? "")
    }
    func refresh(_ token: String, on service: AuthService? = nil) -> Response {
        call("POST", "/auth/refresh-token", json: #"{"refreshToken":"\#(token)"}"#, on: service)
    }

    // MARK: Routing

    @Test func unknownPathIs404InTheErrorShape() {
        let r = call("GET", "/nope")
        #expect(r.status == 404 && errorMessage(r) == "Not Found")
    }

    @Test func wrongMethodIs405WithAllow() {
        let r = call("GET", "/auth/login")
        #expect(r.status == 405 && r.header("Allow") == "POST" && errorMessage(r) != nil)
        #expect(call("POST", "/auth/logout", json: "{}").header("Allow") == "DELETE")
    }

    @Test func healthAndJWKS() {
        #expect(call("GET", "/healthz").body == Array(#"{"status":"ok"}"#.utf8))
        #expect(call("GET", "/readyz").status == 200)
        #expect(call("GET", "/.well-known/jwks.json").body == Array(#"{"keys":[]}"#.utf8))
    }

    // MARK: Register and login

    @Test func registerIssuesAPairThatIsNotCached() {
        let r = call("POST", "/auth/register", json: #"{"username":"  Alice ","password":"password1","extra":[1]}"#)
        #expect(r.status == 201)
        #expect(r.header("Cache-Control") == "no-store")
        #expect(string(r, "accessToken") != nil && string(r, "refreshToken") != nil)
        #expect(store.users["alice"] != nil)
    }

    @Test func duplicateIs409CaseInsensitively() {
        _ = register("alice")
        let r = call("POST", "/auth/register", json: #"{"username":"ALICE","password":"password1"}"#)
        #expect(r.status == 409 && errorMessage(r) == "Username is already registered")
    }

    @Test(arguments: [
        (#"{"password":"password1"}"#, #""username" is required"#),
        (#"{"username":5,"password":"password1"}"#, #""username" must be a string"#),
        (#"{"username":"al","password":"password1"}"#, #""username" length must be at least 3 characters long"#),
        (#"{"username":"al ice","password":"password1"}"#, #""username" must only contain the characters a-z, 0-9, '.', '_' and '-'"#),
        (#"{"username":"\u212Aelvin","password":"password1"}"#, #""username" must only contain the characters a-z, 0-9, '.', '_' and '-'"#),
        (#"{"username":"alice","password":"short"}"#, #""password" length must be at least 8 characters long"#),
        (#"{"username":"alice","password":null}"#, #""password" must be a string"#),
        (#"{"username":"alice","password":"pass\u0000word"}"#, #""password" must not contain NUL characters"#),
    ])
    func registerValidationNamesTheField(_ json: String, _ message: String) {
        let r = call("POST", "/auth/register", json: json)
        #expect(r.status == 422)
        #expect(errorMessage(r) == message)
    }

    @Test func passwordLimitIs72BytesNotCharacters() {
        let ok = String(repeating: "é", count: 36)   // 72 bytes
        let long = String(repeating: "é", count: 37) // 74 bytes, 37 characters
        #expect(call("POST", "/auth/register", json: #"{"username":"bob","password":"\#(ok)"}"#).status == 201)
        let r = call("POST", "/auth/register", json: #"{"username":"carol","password":"\#(long)"}"#)
        #expect(r.status == 422 && errorMessage(r)?.contains("72 bytes") == true)
    }

    @Test(arguments: [
        ("{", 400), ("[]", 400), ("\"x\"", 400), ("", 400), ("{\"username\":\"a\",\"username\":\"b\"}", 400),
    ])
    func bodyProblemsAre400(_ json: String, _ status: Int) {
        for path in ["/auth/register", "/auth/login", "/auth/refresh-token"] {
            let r = call("POST", path, json: json)
            #expect(r.status == status, "\(path) \(json)")
            #expect(errorMessage(r) != nil)
        }
    }

    @Test func contentTypeMustBeJSON() {
        #expect(call("POST", "/auth/login", json: "{}", contentType: "text/plain").status == 415)
        #expect(call("POST", "/auth/login", json: "{}", contentType: nil).status == 415)
        _ = register("dave")
        #expect(call("POST", "/auth/login", json: #"{"username":"dave","password":"password1"}"#,
                     contentType: "Application/JSON; charset=utf-8").status == 200)
    }

    @Test func loginRules() {
        _ = register("erin", "password1")
        let ok = call("POST", "/auth/login", json: #"{"username":" ERIN ","password":"password1"}"#)
        #expect(ok.status == 200 && ok.header("Cache-Control") == "no-store")
        let wrong = call("POST", "/auth/login", json: #"{"username":"erin","password":"password2"}"#)
        let unknown = call("POST", "/auth/login", json: #"{"username":"nobody","password":"password1"}"#)
        #expect(wrong.status == 401 && unknown.status == 401)
        #expect(errorMessage(wrong) == "Username/password not valid" && errorMessage(unknown) == errorMessage(wrong))
        let invalid = call("POST", "/auth/login", json: #"{"username":"erin"}"#)
        #expect(invalid.status == 400 && errorMessage(invalid) == "Invalid username/password")
    }

    // MARK: Protected routes

    @Test func protectedRouteAnswersWithTheSubject() {
        let (access, _) = register("frank")
        let r = call("GET", "/", bearer: access)
        #expect(r.status == 200 && string(r, "userId") == store.users["frank"]?.id.rawValue)
        let me = call("GET", "/auth/me", bearer: access)
        #expect(string(me, "username") == "frank" && string(me, "createdAt") == "2027-01-15T08:00:00Z")
    }

    @Test func missingCredentialsGetBareChallenge() {
        let r = call("GET", "/")
        #expect(r.status == 401 && r.header("WWW-Authenticate") == "Bearer" && errorMessage(r) == "Unauthorized")
        let basic = service.handle(Request(method: "GET", path: "/", authorization: "Basic YTpi"), worker: worker)
        #expect(basic.status == 401 && basic.header("WWW-Authenticate") == "Bearer")
    }

    @Test func schemeIsCaseInsensitive() {
        let (access, _) = register("gina")
        for scheme in ["bearer", "BEARER", "Bearer"] {
            let r = service.handle(Request(method: "GET", path: "/", authorization: "\(scheme) \(access)"), worker: worker)
            #expect(r.status == 200)
        }
    }

    @Test func expiredTokenSaysJwtExpired() {
        let (access, _) = register("hank")
        clock.advance(3600)
        let r = call("GET", "/", bearer: access)
        #expect(r.status == 401 && errorMessage(r) == "jwt expired")
        #expect(r.header("WWW-Authenticate")?.hasPrefix(#"Bearer error="invalid_token""#) == true)
    }

    @Test func refreshTokenIsNotAccepted() {
        let (_, refresh) = register("ivan")
        let r = call("GET", "/", bearer: refresh)
        #expect(r.status == 401 && errorMessage(r) == "Unauthorized")
        #expect(r.header("WWW-Authenticate")?.contains(#"error="invalid_token""#) == true)
    }

    // MARK: Refresh, logout

    @Test func refreshRotatesAndDetectsReplay() {
        let (_, first) = register("judy")
        let r1 = refresh(first)
        #expect(r1.status == 200 && r1.header("Cache-Control") == "no-store")
        let second = string(r1, "refreshToken")!
        #expect(second != first)
        let replay = refresh(first)
        #expect(replay.status == 403)
        #expect(refresh(second).status == 403, "a replay ends the whole session")
    }

    @Test func accessTokenIsNotARefreshToken() {
        let (access, _) = register("kate")
        #expect(refresh(access).status == 403)
    }

    @Test func refreshBodyRules() {
        #expect(call("POST", "/auth/refresh-token", json: "{}").status == 400)
        #expect(call("POST", "/auth/refresh-token", json: #"{"refreshToken":7}"#).status == 400)
        #expect(refresh("garbage").status == 403)
    }

    @Test func expiredRefreshTokenIs403() {
        let (_, token) = register("liam")
        clock.advance(365 * 86400)
        let r = refresh(token)
        #expect(r.status == 403 && errorMessage(r) == "Refresh token expired")
    }

    @Test func graceWindowReissuesTheCurrentToken() throws {
        let graceful = try Self.makeService(clock: clock, ["REFRESH_REUSE_GRACE": "10"])
        let first = string(call("POST", "/auth/register", json: #"{"username":"mia","password":"password1"}"#, on: graceful), "refreshToken")!
        let second = string(refresh(first, on: graceful), "refreshToken")!
        let third = string(refresh(second, on: graceful), "refreshToken")!
        clock.advance(5)
        let retry = refresh(second, on: graceful)
        #expect(retry.status == 200 && string(retry, "refreshToken") == third)
        #expect(refresh(first, on: graceful).status == 403, "a grandparent is always a replay")
        #expect(refresh(third, on: graceful).status == 403)
    }

    @Test func graceWindowCloses() throws {
        let graceful = try Self.makeService(clock: clock, ["REFRESH_REUSE_GRACE": "10"])
        let first = string(call("POST", "/auth/register", json: #"{"username":"ned","password":"password1"}"#, on: graceful), "refreshToken")!
        _ = refresh(first, on: graceful)
        clock.advance(11)
        #expect(refresh(first, on: graceful).status == 403)
    }

    @Test func logoutIsIdempotentAndRevokes() {
        let (_, token) = register("olga")
        let body = #"{"refreshToken":"\#(token)"}"#
        let r = call("DELETE", "/auth/logout", json: body)
        #expect(r.status == 204 && r.body.isEmpty)
        #expect(call("DELETE", "/auth/logout", json: body).status == 204)
        #expect(refresh(token).status == 403)
        #expect(call("DELETE", "/auth/logout", json: "{}").status == 400)
        #expect(call("DELETE", "/auth/logout", json: #"{"refreshToken":"x.y.z"}"#).status == 403)
    }

    @Test func logoutAllEndsEverySession() {
        let (access, one) = register("pia")
        let two = string(call("POST", "/auth/login", json: #"{"username":"pia","password":"password1"}"#), "refreshToken")!
        #expect(call("POST", "/auth/logout-all", bearer: access).status == 204)
        #expect(refresh(one).status == 403 && refresh(two).status == 403)
        #expect(call("POST", "/auth/logout-all").status == 401)
    }

    // MARK: Store outage

    @Test func storeOutageIs503ButTokenChecksGoOn() {
        let (access, token) = register("quinn")
        store.down = true
        #expect(call("GET", "/", bearer: access).status == 200)
        for r in [refresh(token), call("GET", "/readyz"), call("GET", "/auth/me", bearer: access),
                  call("POST", "/auth/login", json: #"{"username":"quinn","password":"password1"}"#)] {
            #expect(r.status == 503 && errorMessage(r) != nil)
        }
        store.down = false
        #expect(refresh(token).status == 200)
    }
}

extension HandlerTests {
    @Test func headIsGetWithoutABody() {
        #expect(call("HEAD", "/healthz").status == 200)
        #expect(call("POST", "/healthz", json: "{}").header("Allow") == "GET, HEAD")
        #expect(call("HEAD", "/auth/login").status == 405)
    }
}

/// Blocks every hash until released, to hold logins in flight.
final class GatedHasher: PasswordHasher, @unchecked Sendable {
    let entered = DispatchSemaphore(value: 0)
    let gate = DispatchSemaphore(value: 0)
    func hash(_ password: String) throws -> String { "plain:" + password }
    func verify(_ password: String, against hash: String) throws -> Bool {
        entered.signal()
        gate.wait()
        return hash == "plain:" + password
    }
}

extension HandlerTests {
    /// With most workers busy, a login is refused at once instead of parking a worker.
    @Test func loginsAreRefusedWhenMostWorkersAreBusy() throws {
        let hasher = GatedHasher()
        let config = try Config(env: ["ACCESS_TOKEN_SECRET": String(repeating: "a", count: 32),
                                      "REFRESH_TOKEN_SECRET": String(repeating: "b", count: 32), "WORKERS": "8"])
        let service = AuthService(config: config, access: KeyRing(signing: ChecksumKey(kid: "a1", secret: 1)),
                                  refresh: KeyRing(signing: ChecksumKey(kid: "r1", secret: 2)), clock: clock,
                                  hasher: hasher, decoyHash: "plain:x", logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
        let login = Request(method: "POST", path: "/auth/login", contentType: "application/json",
                            body: Array(#"{"username":"nobody","password":"password1"}"#.utf8))
        let limit = service.passwordAdmissionLimit
        #expect(limit == 5)
        let done = DispatchGroup()
        let store = self.store
        for _ in 0..<limit {
            DispatchQueue.global().async(group: done) { _ = service.handle(login, worker: Worker(store: store)) }
            hasher.entered.wait()
        }
        let refused = service.handle(login, worker: Worker(store: store))
        #expect(refused.status == 503 && refused.header("Retry-After") == "1")
        #expect(service.handle(Request(method: "GET", path: "/healthz"), worker: Worker(store: store)).status == 200)
        for _ in 0..<limit { hasher.gate.signal() }
        done.wait()
        let admitted = DispatchQueue.global()
        admitted.async { hasher.gate.signal() }
        #expect(service.handle(login, worker: Worker(store: store)).status == 401)
    }
}

extension HandlerTests {
    /// A store failure after the name was reserved answers 503 and gives the name back,
    /// so the client's retry is not told 409 for a name that was never registered.
    @Test func failedRegistrationReleasesTheName() {
        store.failCreateUser = true
        let body = #"{"username":"rhea","password":"password1"}"#
        #expect(call("POST", "/auth/register", json: body).status == 503)
        #expect(store.reserved["rhea"] == nil)
        store.failCreateUser = false
        #expect(call("POST", "/auth/register", json: body).status == 201)
    }
}
