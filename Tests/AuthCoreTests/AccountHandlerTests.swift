import Testing
@testable import AuthCore

/// PlainHasher that runs `onVerify` once, inside the first check after it is set: the
/// window between a password check and the store write that depends on it. The handlers
/// call the hasher on the calling thread, and each test drives one service from one
/// thread, so the hook needs no lock.
final class RacingHasher: PasswordHasher, @unchecked Sendable {
    var onVerify: (() -> Void)?
    func hash(_ password: String) throws -> String { "plain:" + password }
    func verify(_ password: String, against hash: String) throws -> Bool {
        let hook = onVerify
        onVerify = nil
        hook?()
        return hash == "plain:" + password
    }
}

/// Sessions, password change and account deletion through `AuthService.handle`.
extension HandlerTests {
    func request(_ method: String, _ path: String, json: String? = nil, bearer: String? = nil,
                 userAgent: String = "", address: String = "192.0.2.1") -> Request {
        Request(method: method, path: path, contentType: json == nil ? nil : "application/json",
                authorization: bearer.map { "Bearer " + $0 }, userAgent: userAgent, remoteAddress: address,
                body: Array((json ?? "").utf8))
    }
    func login(_ name: String, _ password: String, userAgent: String = "", on service: AuthService? = nil) -> (access: String, refresh: String) {
        let r = (service ?? self.service).handle(
            request("POST", "/auth/login", json: #"{"username":"\#(name)","password":"\#(password)"}"#, userAgent: userAgent), worker: worker)
        return (string(r, "accessToken") ?? "", string(r, "refreshToken") ?? "")
    }
    func sessionList(_ access: String, on service: AuthService? = nil) -> [[String: JSONValue]] {
        let r = call("GET", "/auth/sessions", bearer: access, on: service)
        guard case .array(let items)? = body(r)["sessions"] else { return [] }
        return items.compactMap { if case .object(let o) = $0 { o } else { nil } }
    }
    func changePassword(_ access: String, from current: String, to new: String, on service: AuthService? = nil) -> Response {
        call("POST", "/auth/password", json: #"{"currentPassword":"\#(current)","newPassword":"\#(new)"}"#, bearer: access, on: service)
    }

    /// A service on this store with alice registered, whose next password check first
    /// runs `interleaved` (given the service and alice's access token): a write landing
    /// between a check and the store write that depends on it.
    func racingService(_ interleaved: @escaping (AuthService, String) -> Void) throws -> (service: AuthService, alice: (access: String, refresh: String)) {
        let hasher = RacingHasher()
        let racing = try Self.makeService(clock: clock, hasher: hasher)
        let alice = register("alice", "password1", on: racing)
        hasher.onVerify = { interleaved(racing, alice.access) }
        return (racing, alice)
    }

    // MARK: Routing

    @Test func sessionRoutesAndTheirMethods() {
        #expect(AuthService.route("/auth/sessions", "GET") == .found(.sessions))
        #expect(AuthService.route("/auth/sessions", "HEAD") == .found(.sessions))
        #expect(AuthService.route("/auth/sessions", "DELETE") == .wrongMethod(allow: "GET, HEAD"))
        #expect(AuthService.route("/auth/sessions/abc", "DELETE") == .found(.endSession))
        #expect(AuthService.route("/auth/sessions/abc", "GET") == .wrongMethod(allow: "DELETE"))
        #expect(AuthService.route("/auth/sessions/", "DELETE") == .unknownPath)
        #expect(AuthService.route("/auth/sessionsX", "DELETE") == .unknownPath)
        #expect(AuthService.route("/auth/password", "PUT") == .wrongMethod(allow: "POST"))
        #expect(AuthService.route("/auth/account", "POST") == .wrongMethod(allow: "DELETE"))
    }

    @Test func sessionIDsHaveTheShapeOfRandomIDs() {
        #expect(AuthService.isRandomID(Substring(randomID())))
        #expect(!AuthService.isRandomID(Substring(randomID().dropLast())))
        #expect(!AuthService.isRandomID("aaaaaaaaaaaaaaaaaaaaa/"))
        #expect(!AuthService.isRandomID("aaaaaaaaaaaaaaaaaaaaa="))
        #expect(!AuthService.isRandomID("aaaaaaaaaaaaaaaaaaaaaé"))
    }

    // MARK: Sessions

    @Test func sessionsAreListedWithTheirClientsAndTheCurrentOne() {
        let a = register("alice", "password1")
        clock.advance(10)
        let b = login("alice", "password1", userAgent: "phone/2")
        let list = sessionList(a.access)
        #expect(list.count == 2)
        // Most recently used first: b's login is 10 s younger; ties go by ascending id.
        let c = login("alice", "password1")
        let tied = sessionList(a.access).prefix(2).compactMap { if case .string(let id)? = $0["id"] { id } else { nil } }
        #expect(tied.count == 2 && tied[0] < tied[1])
        _ = call("DELETE", "/auth/logout", json: #"{"refreshToken":"\#(c.refresh)"}"#)
        #expect(list.first?["userAgent"] == .string("phone/2") && list.first?["current"] == .bool(false))
        #expect(list.last?["current"] == .bool(true) && list.last?["address"] == .string(""))
        #expect(list.first?["createdAt"] == .string(ISO8601.format(clock.now())))
        // A refresh keeps the id and moves lastUsedAt and the client.
        clock.advance(5)
        let before = list.first?["id"]
        let r = service.handle(request("POST", "/auth/refresh-token", json: #"{"refreshToken":"\#(b.refresh)"}"#,
                                       userAgent: "phone/3", address: "2001:db8::1"), worker: worker)
        #expect(r.status == 200)
        let after = sessionList(a.access).first
        #expect(after?["id"] == before && after?["userAgent"] == .string("phone/3") && after?["address"] == .string("2001:db8::1"))
        #expect(after?["lastUsedAt"] == .string(ISO8601.format(clock.now())))
        #expect(after?["createdAt"] == .string(ISO8601.format(clock.now() - 5)))
    }

    @Test func userAgentIsCutBetweenScalars() {
        func cut(_ agent: String) -> String { service.sessionMeta(request("GET", "/", userAgent: agent)).userAgent }
        #expect(cut(String(repeating: "é", count: 200)) == String(repeating: "é", count: 128))  // 2 bytes each
        // One Character of 301 scalars: cut inside it, not dropped whole.
        let combining = "a" + String(repeating: "\u{301}", count: 300)
        #expect(Array(cut(combining).unicodeScalars) == Array(combining.unicodeScalars.prefix(128)))  // 1 + 127 * 2 bytes
        #expect(cut(String(repeating: "x", count: 255) + "e\u{301}") == String(repeating: "x", count: 255) + "e")
        #expect(cut("curl/8") == "curl/8")
    }

    @Test func endingASessionIsLimitedToTheCallersOwn() {
        let alice = register("alice", "password1")
        let other = login("alice", "password1")
        let bob = register("bob", "password2")
        guard let bobSession = sessionList(bob.access).first?["id"], case .string(let bobID) = bobSession,
              let mine = sessionList(alice.access).first(where: { $0["current"] == .bool(false) })?["id"],
              case .string(let otherID) = mine else {
            Issue.record("no sessions listed")
            return
        }
        // Someone else's session and an unknown one: the same 404.
        let foreign = call("DELETE", "/auth/sessions/\(bobID)", bearer: alice.access)
        let unknown = call("DELETE", "/auth/sessions/\(randomID())", bearer: alice.access)
        #expect(foreign.status == 404 && foreign.body == unknown.body)
        #expect(refresh(bob.refresh).status == 200)
        #expect(call("DELETE", "/auth/sessions/\(otherID)", bearer: alice.access).status == 204)
        #expect(refresh(other.refresh).status == 403)
        #expect(call("DELETE", "/auth/sessions/\(otherID)", bearer: alice.access).status == 404)
        #expect(call("DELETE", "/auth/sessions/not-an-id", bearer: alice.access).status == 404)
        #expect(call("DELETE", "/auth/sessions/\(otherID)").status == 401)
    }

    // MARK: Password change

    @Test func passwordChangeKeepsTheCallersSessionAndEndsTheOthers() {
        let a = register("alice", "password1")
        let b = login("alice", "password1")
        #expect(changePassword(a.access, from: "password1", to: "password2").status == 204)
        #expect(refresh(b.refresh).status == 403)
        #expect(refresh(a.refresh).status == 200)
        #expect(call("POST", "/auth/login", json: #"{"username":"alice","password":"password1"}"#).status == 401)
        #expect(call("POST", "/auth/login", json: #"{"username":"alice","password":"password2"}"#).status == 200)
    }

    @Test func passwordChangeChecksInOrder() {
        let a = register("alice", "password1")
        #expect(changePassword("nope", from: "password1", to: "password2").status == 401)
        let wrong = changePassword(a.access, from: "password9", to: "password2")
        #expect(wrong.status == 401 && errorMessage(wrong) == "Current password is not valid" && wrong.header("WWW-Authenticate") == nil)
        #expect(errorMessage(changePassword(a.access, from: "password1", to: "short")) == "\"newPassword\" length must be at least 8 characters long")
        #expect(errorMessage(changePassword(a.access, from: "password1", to: "password1")) == "\"newPassword\" must differ from \"currentPassword\"")
        let missing = call("POST", "/auth/password", json: #"{"newPassword":"password2"}"#, bearer: a.access)
        #expect(missing.status == 422 && errorMessage(missing) == "\"currentPassword\" is required")
        // Over 72 bytes cannot be the password, even when its first 72 bytes are.
        let long = "password1" + String(repeating: "x", count: 70)
        #expect(changePassword(a.access, from: long, to: "password2").status == 401)
        #expect(call("POST", "/auth/login", json: #"{"username":"alice","password":"password1"}"#).status == 200)
    }

    @Test func wrongCurrentPasswordsCountAsFailedLogins() throws {
        let limited = try Self.makeService(clock: clock, ["LOGIN_USER_MAX_FAILURES": "2"])
        let a = register("alice", "password1")
        #expect(changePassword(a.access, from: "password8", to: "password2", on: limited).status == 401)
        #expect(changePassword(a.access, from: "password9", to: "password2", on: limited).status == 401)
        let refused = changePassword(a.access, from: "password1", to: "password2", on: limited)
        #expect(refused.status == 429 && refused.header("Retry-After") != nil)
        #expect(limited.handle(request("POST", "/auth/login", json: #"{"username":"alice","password":"password1"}"#), worker: worker).status == 429)
    }

    /// A login that checked the old password while the change committed gets no session.
    @Test func loginRacingAPasswordChangeLeavesNoSessionOfTheOldPassword() throws {
        let (racing, a) = try racingService { racing, access in
            #expect(self.changePassword(access, from: "password1", to: "password2", on: racing).status == 204)
        }
        let late = racing.handle(request("POST", "/auth/login", json: #"{"username":"alice","password":"password1"}"#), worker: worker)
        #expect(late.status == 401)
        #expect(sessionList(a.access, on: racing).count == 1)
    }

    /// Two changes that both checked the same current password: the second finds the hash
    /// changed under it and gets 401.
    @Test func concurrentPasswordChangesCommitOnce() throws {
        let (racing, a) = try racingService { racing, access in
            #expect(self.changePassword(access, from: "password1", to: "password2", on: racing).status == 204)
        }
        #expect(changePassword(a.access, from: "password1", to: "password3", on: racing).status == 401)
        #expect(call("POST", "/auth/login", json: #"{"username":"alice","password":"password2"}"#, on: racing).status == 200)
    }

    /// A change whose account was deleted while its password was checked: the user is
    /// gone (401 invalid_token), not a wrong password, and no failed login is counted.
    @Test func passwordChangeRacingAccountDeletionFindsTheUserGone() throws {
        let (racing, a) = try racingService { racing, access in
            #expect(self.call("DELETE", "/auth/account", json: #"{"password":"password1"}"#, bearer: access, on: racing).status == 204)
        }
        let r = changePassword(a.access, from: "password1", to: "password2", on: racing)
        #expect(r.status == 401 && r.header("WWW-Authenticate")?.contains("The user no longer exists") == true)
        #expect(store.attempts[.username("alice")].map(\.count) ?? 0 == 0)
    }

    // MARK: Account deletion

    @Test func deletingTheAccountEndsEverythingAndFreesTheName() {
        let a = register("alice", "password1")
        let b = login("alice", "password1")
        let wrong = call("DELETE", "/auth/account", json: #"{"password":"password9"}"#, bearer: a.access)
        #expect(wrong.status == 401 && errorMessage(wrong) == "Password not valid")
        #expect(call("DELETE", "/auth/account", json: "{}", bearer: a.access).status == 422)
        #expect(call("DELETE", "/auth/account", json: #"{"password":"password1"}"#, bearer: a.access).status == 204)
        #expect(refresh(a.refresh).status == 403 && refresh(b.refresh).status == 403)
        #expect(call("GET", "/auth/me", bearer: a.access).status == 401)
        let again = call("DELETE", "/auth/account", json: #"{"password":"password1"}"#, bearer: a.access)
        #expect(again.status == 401 && again.header("WWW-Authenticate")?.contains("invalid_token") == true)
        #expect(call("POST", "/auth/register", json: #"{"username":"alice","password":"password5"}"#).status == 201)
    }

    // MARK: ACCESS_TOKEN_SESSION_CHECK

    @Test func sessionCheckMakesEndedSessionsUnauthorizedAtOnce() throws {
        let strict = try Self.makeService(clock: clock, ["ACCESS_TOKEN_SESSION_CHECK": "true"])
        let a = register("alice", "password1")
        #expect(call("GET", "/", bearer: a.access, on: strict).status == 200)
        #expect(call("DELETE", "/auth/logout", json: #"{"refreshToken":"\#(a.refresh)"}"#).status == 204)
        // Off (the default), the service that ended it knows from its revocations; on, the
        // store is asked (this service never heard of the logout).
        #expect(call("GET", "/", bearer: a.access).status == 401)
        let ended = call("GET", "/", bearer: a.access, on: strict)
        #expect(ended.status == 401 && ended.header("WWW-Authenticate")?.contains("The session has ended") == true)
        let b = login("alice", "password1")
        store.down = true
        #expect(call("GET", "/", bearer: b.access, on: strict).status == 503)
        #expect(call("GET", "/", bearer: b.access).status == 200)
    }

    @Test func sessionCheckSettingIsABoolean() throws {
        func check(_ value: String) throws -> Bool {
            try Config(env: ["ACCESS_TOKEN_SECRET": String(repeating: "a", count: 32),
                             "REFRESH_TOKEN_SECRET": String(repeating: "b", count: 32),
                             "ACCESS_TOKEN_SESSION_CHECK": value]).accessTokenSessionCheck
        }
        #expect(try check("TRUE") && check("1") && check("on") && !check("false") && !check("no") && !check(""))
        #expect(throws: ConfigError.self) { try check("maybe") }
    }
}
