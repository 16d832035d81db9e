import Testing
@testable import AuthCore

/// MAX_SESSIONS_PER_USER through `AuthService.handle`, on the in-memory store.
extension HandlerTests {
    func ids(_ list: [[String: JSONValue]]) -> [String] {
        list.compactMap { if case .string(let id)? = $0["id"] { id } else { nil } }
    }
    /// The session id of an access token.
    func sid(_ token: String) -> String { (try? service.access.verify(token, now: clock.now()).session.rawValue) ?? "" }

    @Test func loginBeyondTheCapEndsTheLeastRecentlyUsedSession() throws {
        let capped = try Self.makeService(clock: clock, ["MAX_SESSIONS_PER_USER": "3"])
        let a = register("alice", "password1", on: capped)
        clock.advance(1)
        let b = login("alice", "password1", userAgent: "", on: capped)
        clock.advance(1)
        let c = login("alice", "password1", userAgent: "", on: capped)
        clock.advance(1)
        // A refresh makes a the most recently used: b is now the least.
        let a2 = refresh(a.refresh, on: capped)
        #expect(a2.status == 200)
        #expect(ids(sessionList(a.access, on: capped)) == [sid(a.access), sid(c.access), sid(b.access)])
        clock.advance(1)
        let d = login("alice", "password1", userAgent: "", on: capped)
        #expect(ids(sessionList(a.access, on: capped)) == [sid(d.access), sid(a.access), sid(c.access)])
        let refused = refresh(b.refresh, on: capped)
        #expect(refused.status == 403 && errorMessage(refused) == "Refresh token has been revoked")
        #expect(refresh(c.refresh, on: capped).status == 200)
        #expect(refresh(d.refresh, on: capped).status == 200)
    }

    @Test func theNewSessionIsNeverTheOneEnded() throws {
        // A cap of one: each login ends the previous session, whatever its timestamps.
        let capped = try Self.makeService(clock: clock, ["MAX_SESSIONS_PER_USER": "1"])
        let a = register("alice", "password1", on: capped)
        clock.advance(5)
        #expect(refresh(a.refresh, on: capped).status == 200)
        clock.advance(-10)  // a login stamped before a's last use (clock skew between instances)
        let b = login("alice", "password1", userAgent: "", on: capped)
        #expect(ids(sessionList(b.access, on: capped)) == [sid(b.access)])
        #expect(refresh(b.refresh, on: capped).status == 200)
    }

    @Test func capDefaultsTo100AndIsABoundedWholeNumber() throws {
        let config = try Config(env: ["ACCESS_TOKEN_SECRET": String(repeating: "a", count: 32),
                                      "REFRESH_TOKEN_SECRET": String(repeating: "b", count: 32)])
        #expect(config.maxSessionsPerUser == 100)
        for good in ["1", "10000", " 7 "] {
            #expect(throws: Never.self) { try Self.makeService(clock: clock, ["MAX_SESSIONS_PER_USER": good]) }
        }
        for bad in ["0", "-1", "10001", "many", "1.5", "1e3"] {
            #expect(throws: ConfigError.self, "\(bad)") { try Self.makeService(clock: clock, ["MAX_SESSIONS_PER_USER": bad]) }
            do { _ = try Self.makeService(clock: clock, ["MAX_SESSIONS_PER_USER": bad]) } catch let error as ConfigError {
                #expect(error.variable == "MAX_SESSIONS_PER_USER" && error.problem.contains("1 to 10000"), "\(error)")
            }
        }
    }

    @Test func evictedSessionsAreCounted() throws {
        let capped = try Self.makeService(clock: clock, ["MAX_SESSIONS_PER_USER": "2"])
        let metrics = capped.metrics.newWorker()
        let counted = Worker(store: store, metrics: metrics)
        _ = register("alice", "password1", on: capped)
        // Five sessions, two kept: the logins end three.
        for _ in 0..<4 {
            _ = capped.handle(request("POST", "/auth/login", json: #"{"username":"alice","password":"password1"}"#), worker: counted)
        }
        let text = capped.metrics.exposition(inFlight: 0, workerCount: 1)
        #expect(text.contains("authd_sessions_evicted_total 3\n"), "\(text)")
    }
}
