import Foundation
import Testing

@Suite("Redis outage (own stack)")
struct RedisOutageTests {
    @Test func routesNeedingRedisAnswer503AndRecoverWhenRedisReturns() async throws {
        let stack = try Stack.start()
        defer { stack.shutdown() }
        let user = try stack.newUser("outage")
        let second = try stack.newSession(user)

        stack.stopRedis()

        let duringOutage: [(String, HTTPResponse)] = [
            ("refresh", try stack.refresh(user.tokens.refresh)),
            ("register", try stack.register(uniqueName("outage"), validPassword)),
            ("login", try stack.login(user.username, user.password)),
            ("login unknown user", try stack.login(uniqueName("ghost"), validPassword)),
            ("readyz", try stack.call("GET", "/readyz")),
            ("me", try stack.me(user.tokens.access)),
            ("logout", try stack.logout(second.refresh)),
            ("logout-all", try stack.logoutAll(user.tokens.access)),
        ]
        for (name, response) in duringOutage {
            #expect(response.status == 503, "\(name) during the outage: \(response)")
            expectError(response)
        }

        // No Redis needed: the access token is checked by signature alone.
        let home = try stack.home(user.tokens.access)
        #expect(home.status == 200, "GET / during the outage: \(home)")
        #expect(try stack.call("GET", "/healthz").status == 200)
        // Still no fail-open: a bad token is refused without Redis.
        expectInvalidToken(try stack.home(try BadAccessToken.tamperedSignature.make(from: user.tokens)))

        try stack.startRedis()  // same socket, empty data set

        let ready = try await eventually(timeout: 5) { try stack.call("GET", "/readyz").status == 200 }
        #expect(ready, "readyz did not recover")
        // Every worker's connection must have recovered, not only the one readyz met.
        let statuses = (0..<40).map { _ in statusOf { try stack.call("GET", "/readyz") } }
        #expect(statuses.allSatisfy { $0 == 200 }, "readyz after recovery: \(statuses)")

        let again = uniqueName("back")
        let registered = try await eventually(timeout: 5) { try stack.register(again, validPassword).status == 201 }
        #expect(registered, "register did not recover")
        #expect(try stack.login(again, validPassword).status == 200)
        // The old session lived only in the lost data set: refused, not an error.
        expectError(try stack.refresh(user.tokens.refresh), status: 403)
    }
}
