import Testing
@testable import AuthCore

/// Failed-login throttling: the handler's decisions on the in-memory store (the Redis
/// scripts and the concurrent case are covered by the integration tests).
extension HandlerTests {
    func login(_ name: String, _ password: String, from address: String = "192.0.2.7", on service: AuthService) -> Response {
        let req = Request(method: "POST", path: "/auth/login", contentType: "application/json", remoteAddress: address,
                          body: Array(#"{"username":"\#(name)","password":"\#(password)"}"#.utf8))
        return service.handle(req, worker: worker)
    }

    func throttled(_ extra: [String: String]) throws -> AuthService {
        try Self.makeService(clock: clock, ["LOGIN_ADDRESS_MAX_FAILURES": "0"].merging(extra) { $1 })
    }

    @Test func usernameLockedAfterLimitEvenForTheRightPassword() throws {
        let service = try throttled(["LOGIN_USER_MAX_FAILURES": "3", "LOGIN_USER_WINDOW": "60"])
        _ = register("alice", "password1")
        for _ in 0..<3 { #expect(login("alice", "wrong-one", on: service).status == 401) }
        let locked = login("alice", "password1", on: service)
        #expect(locked.status == 429 && locked.header("Retry-After") == "60")
        #expect(errorMessage(locked) == "Too many failed logins; try again in 60 s")
        clock.advance(59)
        #expect(login("alice", "password1", on: service).header("Retry-After") == "1")
        clock.advance(1)
        #expect(login("alice", "password1", on: service).status == 200)
    }

    @Test func refusedAttemptsDoNotExtendTheWindow() throws {
        let service = try throttled(["LOGIN_USER_MAX_FAILURES": "1", "LOGIN_USER_WINDOW": "30"])
        _ = register("bob", "password1")
        #expect(login("bob", "nope-nope", on: service).status == 401)
        for _ in 0..<5 {
            clock.advance(5)
            #expect(login("bob", "nope-nope", on: service).status == 429)
        }
        clock.advance(5)
        #expect(login("bob", "password1", on: service).status == 200)
    }

    @Test func successResetsTheUsernameCount() throws {
        let service = try throttled(["LOGIN_USER_MAX_FAILURES": "3"])
        _ = register("carol", "password1")
        for _ in 0..<2 { #expect(login("carol", "wrong-one", on: service).status == 401) }
        #expect(login("carol", "password1", on: service).status == 200)
        for _ in 0..<3 { #expect(login("carol", "wrong-one", on: service).status == 401) }
        #expect(login("carol", "wrong-one", on: service).status == 429)
    }

    @Test func unknownUsernamesAreCountedLikeKnownOnes() throws {
        let service = try throttled(["LOGIN_USER_MAX_FAILURES": "2"])
        for _ in 0..<2 { #expect(login("nobody", "wrong-one", on: service).status == 401) }
        #expect(login("nobody", "wrong-one", on: service).status == 429)
    }

    @Test func addressLimitSpansUsernamesAndIPv6Networks() throws {
        let service = try Self.makeService(clock: clock, ["LOGIN_ADDRESS_MAX_FAILURES": "3", "LOGIN_USER_MAX_FAILURES": "0"])
        _ = register("dave", "password1")
        #expect(login("user1", "wrong-one", from: "2001:db8:1:2::1", on: service).status == 401)
        #expect(login("user2", "wrong-one", from: "2001:db8:1:2:ffff::9", on: service).status == 401)
        #expect(login("user3", "wrong-one", from: "2001:0db8:0001:0002:0:0:0:42", on: service).status == 401)
        // Same /64: refused, even for another user with the right password.
        #expect(login("dave", "password1", from: "2001:db8:1:2::77", on: service).status == 429)
        // Another /64 and an IPv4 client are untouched.
        #expect(login("dave", "password1", from: "2001:db8:1:3::1", on: service).status == 200)
        #expect(login("dave", "password1", from: "198.51.100.4", on: service).status == 200)
    }

    @Test func successGivesTheAddressItsAttemptBackButDoesNotResetIt() throws {
        let service = try Self.makeService(clock: clock, ["LOGIN_ADDRESS_MAX_FAILURES": "2", "LOGIN_USER_MAX_FAILURES": "0"])
        _ = register("erin", "password1")
        #expect(login("xavier", "wrong-one", on: service).status == 401)
        for _ in 0..<5 { #expect(login("erin", "password1", on: service).status == 200) }
        #expect(login("yvonne", "wrong-one", on: service).status == 401)
        #expect(login("erin", "password1", on: service).status == 429)
    }

    @Test func zeroTurnsTheLimitsOff() throws {
        let service = try Self.makeService(clock: clock, ["LOGIN_ADDRESS_MAX_FAILURES": "0", "LOGIN_USER_MAX_FAILURES": "0"])
        for _ in 0..<30 { #expect(login("frank", "wrong-one", on: service).status == 401) }
        #expect(store.attempts.isEmpty)
    }

    @Test func storeOutageIs503AndCountsNothing() throws {
        let service = try throttled(["LOGIN_USER_MAX_FAILURES": "1"])
        store.down = true
        #expect(login("gina", "wrong-one", on: service).status == 503)
        store.down = false
        #expect(login("gina", "wrong-one", on: service).status == 401)
    }

    @Test func busyServiceCountsNothing() throws {
        let service = try throttled(["LOGIN_USER_MAX_FAILURES": "1"])
        _ = register("hank", "password1")
        // Past the admission limit the login is refused before the counters: not a failure.
        service.inFlight.add(100, ordering: .relaxed)
        #expect(login("hank", "wrong-one", on: service).status == 503)
        service.inFlight.subtract(100, ordering: .relaxed)
        #expect((store.attempts[.username("hank")]?.count ?? 0) == 0)
        #expect(login("hank", "password1", on: service).status == 200)
    }

    // MARK: Registration (a 409 tells that a name exists: a failed attempt of the address)

    func registration(_ name: String, from address: String = "192.0.2.7", on service: AuthService) -> Response {
        let req = Request(method: "POST", path: "/auth/register", contentType: "application/json", remoteAddress: address,
                          body: Array(#"{"username":"\#(name)","password":"password1"}"#.utf8))
        return service.handle(req, worker: worker)
    }

    @Test func takenNamesCountAgainstTheAddressAndThenEveryNameIs429() throws {
        let service = try Self.makeService(clock: clock, ["LOGIN_ADDRESS_MAX_FAILURES": "3", "LOGIN_ADDRESS_WINDOW": "60",
                                                          "LOGIN_USER_MAX_FAILURES": "0"])
        #expect(registration("alice", on: service).status == 201)
        for _ in 0..<3 { #expect(registration("alice", on: service).status == 409) }
        // Refused before the name is looked at: a taken and a free name get the same answer.
        let taken = registration("alice", on: service), free = registration("newbie", on: service)
        #expect(taken.status == 429 && taken.header("Retry-After") == "60")
        #expect(errorMessage(taken) == "Too many failed attempts from this address; try again in 60 s")
        #expect(free == taken)
        #expect(store.reserved["newbie"] == nil && store.users["newbie"] == nil)
        #expect(login("alice", "password1", on: service).status == 429)
        // Another address is not concerned; the window ends by itself.
        #expect(registration("newbie", from: "198.51.100.4", on: service).status == 201)
        clock.advance(60)
        #expect(registration("carl", on: service).status == 201)
    }

    @Test func successfulRegistrationsDoNotCount() throws {
        let service = try Self.makeService(clock: clock, ["LOGIN_ADDRESS_MAX_FAILURES": "2", "LOGIN_USER_MAX_FAILURES": "0"])
        for i in 0..<5 { #expect(registration("user\(i)", on: service).status == 201) }
        #expect((store.attempts[.address("192.0.2.7")]?.count ?? 0) == 0)
        for _ in 0..<2 { #expect(registration("user0", on: service).status == 409) }
        #expect(registration("user9", on: service).status == 429)
    }

    @Test func failedLoginsAndTakenNamesShareTheAddressBudget() throws {
        let service = try Self.makeService(clock: clock, ["LOGIN_ADDRESS_MAX_FAILURES": "2", "LOGIN_USER_MAX_FAILURES": "0"])
        #expect(registration("ivan", on: service).status == 201)
        #expect(login("ivan", "wrong-one", on: service).status == 401)
        #expect(registration("ivan", on: service).status == 409)
        #expect(registration("judy", on: service).status == 429)
        #expect(login("ivan", "password1", on: service).status == 429)
    }

    /// Only the per-address limit applies: a username's count is for password guesses.
    @Test func registrationLeavesTheUsernameCountAlone() throws {
        let service = try throttled(["LOGIN_USER_MAX_FAILURES": "1"])
        #expect(registration("kate", on: service).status == 201)
        for _ in 0..<3 { #expect(registration("kate", on: service).status == 409) }
        #expect(store.attempts[.username("kate")] == nil)
        #expect(login("kate", "password1", on: service).status == 200)
    }

    @Test func invalidBusyOrUnstoredRegistrationsDoNotCount() throws {
        let service = try Self.makeService(clock: clock, ["LOGIN_ADDRESS_MAX_FAILURES": "1", "LOGIN_USER_MAX_FAILURES": "0"])
        for _ in 0..<3 { #expect(registration("x", on: service).status == 422) }
        service.inFlight.add(100, ordering: .relaxed)
        #expect(registration("leo", on: service).status == 503)
        service.inFlight.subtract(100, ordering: .relaxed)
        store.failCreateUser = true
        #expect(registration("leo", on: service).status == 503)
        store.failCreateUser = false
        store.down = true
        #expect(registration("leo", on: service).status == 503)
        store.down = false
        #expect((store.attempts[.address("192.0.2.7")]?.count ?? 0) == 0)
        #expect(registration("leo", on: service).status == 201)
        #expect(registration("leo", on: service).status == 409)
        #expect(registration("mia", on: service).status == 429)
    }

    @Test(arguments: [
        ("203.0.113.9", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("2001:DB8::1", "2001:db8:0:0::/64"),
        ("2001:db8:aa:bb:cc:dd:ee:ff", "2001:db8:aa:bb::/64"),
        ("fe80::1", "fe80:0:0:0::/64"),
        ("::1", "0:0:0:0::/64"),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8:9"),
        ("unix:", "unix:"),
    ])
    func addressNetworks(address: String, network: String) {
        #expect(LoginThrottle.network(of: address) == network)
    }

    @Test func noAddressNoAddressLimit() {
        #expect(LoginThrottle.network(of: "") == nil)
    }
}
