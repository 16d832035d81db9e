import Foundation
import Synchronization
import Testing

/// Redis frozen (SIGSTOP) for longer than REDIS_TIMEOUT, then resumed: Redis runs every
/// command that queued up meanwhile, long after authd answered 503 for it. The rule these
/// tests hold authd to: a 503 means nothing was applied, so a client that retries the
/// same request after a 503 is never punished for it, and nothing is left behind.
@Suite("Redis stall (own stacks)", .serialized)
struct RedisStallTests {
    static let timeout = 1.0
    static func stack(_ overrides: [String: String] = [:]) throws -> Stack {
        try Stack.start(["REDIS_TIMEOUT": String(timeout)].merging(Stack.oneInstance) { $1 }.merging(overrides) { $1 })
    }

    @Test("Refresh loops that retry through a stall keep their sessions")
    func refreshRetriesSurviveAStall() throws {
        let stack = try Self.stack()
        defer { stack.shutdown() }
        let users = try (0..<3).map { _ in try stack.newUser("stall") }
        let stop = Atomic<Bool>(false)
        let outcomes = Guarded<[Int: [Int]]>([:])
        let lastTokens = Guarded<[Int: String]>([:])
        let done = DispatchGroup()
        for (index, user) in users.enumerated() {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                var token = user.tokens.refresh
                var statuses: [Int] = []
                while !stop.load(ordering: .relaxed) {
                    let response = try? stack.refresh(token)
                    let status = response?.status ?? 0
                    statuses.append(status)
                    if status == 200, let response, let pair = TokenPair.parse(response) {
                        token = pair.refresh
                    } else if status != 503 {
                        break  // a 403 ends the session: the loop has lost it
                    }
                    Thread.sleep(forTimeInterval: 0.02)
                }
                outcomes.withLock { $0[index] = statuses }
                lastTokens.withLock { $0[index] = token }
            }
        }
        Thread.sleep(forTimeInterval: 0.5)
        stack.pauseRedis()
        Thread.sleep(forTimeInterval: 3 * Self.timeout + 0.5)
        stack.resumeRedis()
        Thread.sleep(forTimeInterval: 1.5)
        stop.store(true, ordering: .relaxed)
        done.wait()

        let all = outcomes.withLock { $0 }
        for index in users.indices {
            let statuses = all[index] ?? []
            #expect(statuses.contains(503), "loop \(index) never met the stall: \(statuses)")
            #expect(statuses.allSatisfy { $0 == 200 || $0 == 503 }, "loop \(index) lost its session: \(statuses)")
            let afterStall = statuses.drop { $0 != 503 }.drop { $0 == 503 }
            #expect(afterStall.contains(200), "loop \(index) did not rotate after the stall: \(statuses)")
        }
        // Each session still rotates with the last token its loop was given.
        for (index, token) in lastTokens.withLock({ $0 }) {
            #expect(try stack.refresh(token).status == 200, "loop \(index)'s session after the stall")
        }
    }

    @Test("A login and a registration that got 503 leave no debris once Redis resumes")
    func stalledWritesLeaveNothingBehind() throws {
        let stack = try Self.stack([
            "LOGIN_ADDRESS_MAX_FAILURES": "50", "LOGIN_USER_MAX_FAILURES": "50",
        ])
        defer { stack.shutdown() }
        let user = try stack.newUser("debris")
        let loginsBefore = try sessionCount(stack, user)
        let name = uniqueName("stalled")

        stack.pauseRedis()
        let register = try stack.register(name, validPassword)
        let login = try stack.login(user.username, user.password)
        stack.resumeRedis()
        #expect(register.status == 503, "register during the stall: \(register)")
        #expect(login.status == 503, "login during the stall: \(login)")
        expectError(register, status: 503)
        Thread.sleep(forTimeInterval: 0.3)  // Redis runs what queued up

        // The address and the username were not counted as failures.
        // (A login that succeeded before leaves the address's counter at 0.)
        for key in ["auth:attempts:addr:{127.0.0.1}", "auth:attempts:user:{\(user.username)}"] {
            let count = try stack.redisCLI("GET", key)
            #expect(Int(count) ?? 0 == 0, "\(key) after the stall: \(count)")
        }
        // The 503'd login did not start a session that lives on.
        #expect(try sessionCount(stack, user) == loginsBefore, "sessions after a 503'd login")
        // The 503'd registration did not keep the name, nor leave a user behind.
        #expect(try stack.redisCLI("EXISTS", "auth:username:{\(name)}") == "0", "name index after a 503'd registration")
        let again = try stack.register(name, validPassword)
        #expect(again.status == 201, "registering the name again: \(again)")
    }

    @Test("A registration whose user write stalls leaves no user, and its name is free")
    func registrationStalledAfterReservation() throws {
        // Cost 12 (about 0.2 s here): Redis is frozen after the name is reserved and
        // before the hash is written.
        let stack = try Self.stack(["BCRYPT_COST": "12"])
        defer { stack.shutdown() }
        let name = uniqueName("halfway")
        let answer = Guarded<HTTPResponse?>(nil)
        let finished = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let response = try? stack.register(name, validPassword)
            answer.withLock { $0 = response }
            finished.signal()
        }
        Thread.sleep(forTimeInterval: 0.06)
        stack.pauseRedis()
        Thread.sleep(forTimeInterval: 2 * Self.timeout)
        stack.resumeRedis()
        finished.wait()
        let register = try #require(answer.withLock { $0 })
        try #require(register.status == 503, "the stall did not hit the registration: \(register)")
        Thread.sleep(forTimeInterval: 0.3)

        // Nothing of it works or lingers: no login on it, no user hash, a free name.
        #expect(try stack.login(name, validPassword).status == 401, "login on a 503'd registration")
        let users = try stack.redisCLI("--scan", "--pattern", "auth:user:*")
        #expect(users.isEmpty, "user hashes after a 503'd registration: \(users)")
        #expect(try stack.register(name, validPassword).status == 201, "registering the name again")
    }

    private func sessionCount(_ stack: Stack, _ user: User) throws -> Int {
        let fresh = try stack.login(user.username, user.password)
        let pair = try TokenPair(fresh)
        let list = try stack.call("GET", "/auth/sessions", bearer: pair.access)
        let sessions = try #require(list.object?["sessions"] as? [Any], "\(list)")
        _ = try stack.logout(pair.refresh)
        return sessions.count - 1
    }
}

/// Redis applies the write and its answer is lost (`ReplyDroppingProxy`): authd answers
/// 503, and what the write did is undone before any later command, so the client's retry
/// finds things as they were.
@Suite("Redis answers lost (own stacks)", .serialized)
struct LostAnswerTests {
    static func stack(_ overrides: [String: String] = [:]) throws -> (Stack, ReplyDroppingProxy) {
        let dir = try Stack.makeTempDir()
        let proxy = try ReplyDroppingProxy(path: dir + "/proxy.sock")
        let stack = try RedisStallTests.stack(["REDIS_URL": "unix://\(proxy.path)"].merging(overrides) { $1 })
        proxy.upstream.withLock { $0 = stack.redisSocket }
        return (stack, proxy)
    }

    @Test("Refreshes whose answers were lost are retried with the same token and keep their sessions")
    func lostRotationsAreUndone() throws {
        let (stack, proxy) = try Self.stack()
        defer { stack.shutdown(); proxy.close() }
        let users = try (0..<3).map { _ in try stack.newUser("lost") }
        var tokens = users.map(\.tokens.refresh)
        proxy.dropReplies(true)
        for token in tokens {
            let response = try stack.refresh(token)
            #expect(response.status == 503, "refresh with its answer lost: \(response)")
        }
        proxy.dropReplies(false)
        // The same tokens again, as a client retries a 503 (again on a 503): Redis had
        // rotated each session.
        for (index, token) in tokens.enumerated() {
            var response = try stack.refresh(token)
            for _ in 0..<20 where response.status == 503 {
                Thread.sleep(forTimeInterval: 0.1)
                response = try stack.refresh(token)
            }
            #expect(response.status == 200, "retry of session \(index): \(response)")
            if let pair = TokenPair.parse(response) { tokens[index] = pair.refresh }
        }
        for token in tokens { #expect(try stack.refresh(token).status == 200, "the session rotates on") }
    }

    @Test("A login and a registration whose answers were lost leave no session, user or name")
    func lostLoginAndRegistrationAreUndone() throws {
        // No login limits: the session's creation is then the login's first script, the
        // one whose answer is lost.
        let (stack, proxy) = try Self.stack(["LOGIN_USER_MAX_FAILURES": "0", "LOGIN_ADDRESS_MAX_FAILURES": "0"])
        defer { stack.shutdown(); proxy.close() }
        let user = try stack.newUser("lostlogin")
        let before = try stack.redisCLI("ZCARD", "auth:sessions:{\(try userID(stack, user))}")
        #expect(Int(before) == 1, "the registration's session in the index: \(before)")
        let name = uniqueName("lostreg")
        proxy.dropReplies(true)
        let login = try stack.login(user.username, user.password)
        let register = try stack.register(name, validPassword)
        proxy.dropReplies(false)
        #expect(login.status == 503, "login with its answers lost: \(login)")
        #expect(register.status == 503, "register with its answers lost: \(register)")
        // Any command settles what is owed first (for 100 ms after a clean-up met the
        // silent Redis, callers are told 503 at once: a client retries).
        var ready = try stack.call("GET", "/readyz")
        for _ in 0..<20 where ready.status == 503 {
            Thread.sleep(forTimeInterval: 0.05)
            ready = try stack.call("GET", "/readyz")
        }
        #expect(ready.status == 200, "readyz after the answers are back: \(ready)")
        #expect(try stack.redisCLI("ZCARD", "auth:sessions:{\(try userID(stack, user))}") == before, "sessions after a lost login")
        #expect(try stack.redisCLI("EXISTS", "auth:username:{\(name)}") == "0", "name after a lost registration")
        #expect(try stack.register(name, validPassword).status == 201, "registering the name again")
    }

    private func userID(_ stack: Stack, _ user: User) throws -> String {
        try #require(try stack.me(user.tokens.access).object?["id"] as? String)
    }
}
