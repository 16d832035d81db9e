import Foundation
import Testing

/// Failed-login throttling through nginx, with the counters in the real Redis.
@Suite("Login throttling")
struct ThrottleTests {
    private static let perUser = SharedStack(["LOGIN_USER_MAX_FAILURES": "5", "LOGIN_USER_WINDOW": "120",
                                              "LOGIN_ADDRESS_MAX_FAILURES": "0"])
    private static let perAddress = SharedStack(["LOGIN_USER_MAX_FAILURES": "0",
                                                 "LOGIN_ADDRESS_MAX_FAILURES": "4", "LOGIN_ADDRESS_WINDOW": "90"])

    private func redis(_ stack: Stack, _ arguments: String...) throws -> String {
        let result = try runCommand("redis-cli", ["-s", stack.redisSocket] + arguments, directory: stack.dir)
        try #require(result.termination == .exited(0), "redis-cli \(arguments): \(result.output)")
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func expectThrottled(_ response: HTTPResponse, atMost window: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        expectError(response, status: 429, sourceLocation: sourceLocation)
        let wait = response.header("Retry-After").flatMap { Int($0) }
        #expect(wait.map { (1...window).contains($0) } == true, "Retry-After: \(response)", sourceLocation: sourceLocation)
    }

    /// Guesses race each other to the counter: exactly the limit get to try the password.
    @Test func parallelGuessesGetExactlyTheLimit() throws {
        let stack = try Self.perUser.get()
        let user = try stack.newUser("brute")
        let statuses = concurrently(20) { _ in statusOf { try stack.login(user.username, "wrong password \(UInt8.random(in: 0...9))") } }
        #expect(statuses.filter { $0 == 401 }.count == 5, "\(statuses)")
        #expect(statuses.filter { $0 == 429 }.count == 15, "\(statuses)")
        // Locked now, even with the right password; the window is counted in Redis.
        expectThrottled(try stack.login(user.username, user.password), atMost: 120)
        let key = "auth:attempts:user:{\(user.username)}"
        #expect(try redis(stack, "GET", key) == "5")
        #expect((try Int(redis(stack, "TTL", key))).map { (1...120).contains($0) } == true)
    }

    @Test func successResetsTheUsernameCount() throws {
        let stack = try Self.perUser.get()
        let user = try stack.newUser("reset")
        for _ in 0..<4 { expectError(try stack.login(user.username, "not it at all"), status: 401) }
        _ = try stack.newSession(user)
        #expect(try redis(stack, "EXISTS", "auth:attempts:user:{\(user.username)}") == "0")
        for _ in 0..<5 { expectError(try stack.login(user.username, "not it at all"), status: 401) }
        expectThrottled(try stack.login(user.username, "not it at all"), atMost: 120)
    }

    /// One address guessing at many names is stopped too; its own good logins still count
    /// as nothing.
    @Test func oneAddressManyUsernames() throws {
        let stack = try Self.perAddress.get()
        let user = try stack.newUser("addr")
        _ = try stack.newSession(user)
        for _ in 0..<4 { expectError(try stack.login(uniqueName("guess"), "some password"), status: 401) }
        expectThrottled(try stack.login(user.username, user.password), atMost: 90)
        #expect(try redis(stack, "GET", "auth:attempts:addr:{127.0.0.1}") == "4")
    }

    /// A 409 tells that a name is registered: it counts as a failed attempt of the address,
    /// with nginx's limit_req off (as in `make run`). Every client here is 127.0.0.1, so
    /// this stack is this test's alone.
    private static let registrations = SharedStack(["LOGIN_USER_MAX_FAILURES": "0",
                                                    "LOGIN_ADDRESS_MAX_FAILURES": "5", "LOGIN_ADDRESS_WINDOW": "90"])

    @Test func takenNamesCountAgainstTheAddress() throws {
        let stack = try Self.registrations.get()
        let key = "auth:attempts:addr:{127.0.0.1}"
        // Successful registrations, more than the limit: they count nothing.
        let users = try (0..<7).map { _ in try stack.newUser("enum") }
        #expect(["", "0"].contains(try redis(stack, "GET", key)))
        for _ in 0..<5 { expectError(try stack.register(users[0].username, validPassword), status: 409) }
        #expect(try redis(stack, "GET", key) == "5")
        // Now every registration from this address is 429, whether the name is taken or not,
        // and the free name was not even reserved.
        let free = uniqueName("free")
        let answers = [try stack.register(free, validPassword), try stack.register(users[1].username, validPassword)]
        for answer in answers { expectThrottled(answer, atMost: 90) }
        #expect(answers[0].text == answers[1].text, "\(answers)")
        #expect(try redis(stack, "EXISTS", "auth:username:{\(free)}") == "0")
        // Logins share the address's budget.
        expectThrottled(try stack.login(users[2].username, users[2].password), atMost: 90)
        #expect(try redis(stack, "GET", key) == "5")
    }
}

/// deploy/nginx.conf's `limit_req` on the credential routes, applied by the local stack
/// only with NGINX_RATE_LIMIT=on.
@Suite("nginx rate limit")
struct NginxRateLimitTests {
    private static let limited = SharedStack(["NGINX_RATE_LIMIT": "on", "LOGIN_USER_MAX_FAILURES": "0"])

    @Test func credentialRoutesAreLimitedPerAddressInJSON() throws {
        let stack = try Self.limited.get()
        // burst=20 nodelay at 10 r/s: at least 21 pass (more when the machine is slow
        // enough for the bucket to refill meanwhile); the rest are nginx's 429.
        let statuses = concurrently(60) { _ in statusOf { try stack.login(uniqueName("rate"), "some password") } }
        let passed = statuses.filter { $0 == 401 || $0 == 503 }.count, limited = statuses.filter { $0 == 429 }.count
        #expect(passed + limited == 60 && passed >= 21, "\(statuses)")
        var refused: HTTPResponse?
        for _ in 0..<300 where refused == nil {
            let response = try stack.login(uniqueName("rate"), "some password")
            if response.status == 429 { refused = response }
        }
        let answer = try #require(refused, "300 logins in a row, none refused by nginx")
        expectError(answer, status: 429, message: "Too many requests")
        #expect(answer.header("Retry-After") == "1")
        // Token checks are not limited.
        let user = try stack.newUserEventually()
        #expect(concurrently(40) { _ in statusOf { try stack.home(user.tokens.access) } }.allSatisfy { $0 == 200 })
    }

    @Test func offByDefaultInTheLocalStack() throws {
        let stack = try Stacks.standard()
        let statuses = concurrently(60) { _ in statusOf { try stack.login(uniqueName("free"), "some password") } }
        // 503 is authd's password lane saying "busy"; 429 would be nginx.
        #expect(statuses.allSatisfy { $0 == 401 || $0 == 503 } && statuses.contains(401), "\(statuses)")
    }
}

extension Stack {
    /// Registers a user once the rate limit lets a registration through.
    func newUserEventually() throws -> User {
        for _ in 0..<50 {
            let username = uniqueName("late")
            let response = try register(username, validPassword)
            if response.status == 201 { return User(username: username, password: validPassword, tokens: try TokenPair(response)) }
            try #require(response.status == 429, "register: \(response)")
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw HarnessError("registration stayed rate-limited for 10 s")
    }
}
