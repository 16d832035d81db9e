import Foundation
import Testing

/// GET /metrics through nginx (allowed from loopback only): the named series after traffic.
@Suite("Metrics")
struct MetricsTests {
    /// One authd: a scrape shows the counters of the instance that answers it.
    private static let single = SharedStack(Stack.oneInstance)

    @Test func namedSeriesAfterTraffic() throws {
        let stack = try Self.single.get()
        let user = try stack.newUser("metrics")
        let next = try stack.rotate(user.tokens.refresh)
        #expect(try stack.home(next.access).status == 200)
        #expect(try stack.refresh(user.tokens.refresh).status == 403)  // a replay
        #expect(try stack.login(user.username, "not the password").status == 401)
        let response = try stack.get("/metrics")
        #expect(response.status == 200)
        #expect(response.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true, "\(response)")
        let text = String(decoding: response.body, as: UTF8.self)
        for series in [#"authd_requests_total{route="/auth/register",status="201"}"#,
                       #"authd_requests_total{route="/auth/refresh-token",status="403"}"#,
                       #"authd_request_duration_seconds_bucket{route="/",le="+Inf"}"#,
                       "authd_token_pairs_issued_total", "authd_refresh_replays_total", "authd_logins_throttled_total",
                       "authd_bcrypt_seconds_count", "authd_redis_errors_total", "authd_redis_connects_total", "authd_sessions_evicted_total",
                       "authd_requests_in_flight", "authd_workers 64"] {
            #expect(text.contains(series), "missing \(series)")
        }
        // The replay above ended a session: this instance refuses its tokens from memory.
        let revocations = text.split(separator: "\n").first { $0.hasPrefix("authd_revocations ") }
        #expect(revocations.flatMap { Int($0.split(separator: " ")[1]) }.map { $0 >= 1 } == true, "\(revocations ?? "none")")
        // From any other address (127.0.0.2 is loopback too, but not on the allow list):
        // nginx's JSON 403, and authd is never asked.
        let other = try runCommand("curl", ["-s", "--interface", "127.0.0.2", "-w", "\n%{http_code}", "http://127.0.0.1:\(stack.port)/metrics"],
                                   directory: stack.dir)
        #expect(other.output.hasSuffix("\n403") && other.output.contains(#""status":403"#), "\(other.output)")
        let replays = text.split(separator: "\n").first { $0.hasPrefix("authd_refresh_replays_total ") }
        #expect(replays.flatMap { Int($0.split(separator: " ")[1]) }.map { $0 >= 1 } == true, "\(replays ?? "none")")
    }

    /// The account routes are counted under their templates; a session id never becomes
    /// a label value (one series per session would grow without bound).
    @Test func accountRoutesAreLabelledByTemplate() throws {
        let stack = try Self.single.get()
        let user = try stack.newUser("metricsacct")
        let other = try stack.newSession(user)
        let sid = try sessionID(of: other.refresh)
        #expect(try stack.sessions(user.tokens.access).status == 200)
        #expect(try stack.endSession(sid, user.tokens.access).status == 204)
        #expect(try stack.endSession(sid, user.tokens.access).status == 404)
        try stack.expectPasswordChanged(user.tokens.access, current: user.password, new: "metrics new password")
        try stack.expectAccountDeleted(user.tokens.access, password: "metrics new password")
        let text = String(decoding: try stack.get("/metrics").body, as: UTF8.self)
        for series in [#"authd_requests_total{route="/auth/sessions",status="200"}"#,
                       #"authd_requests_total{route="/auth/sessions/{id}",status="204"}"#,
                       #"authd_requests_total{route="/auth/sessions/{id}",status="404"}"#,
                       #"authd_requests_total{route="/auth/password",status="204"}"#,
                       #"authd_requests_total{route="/auth/account",status="204"}"#,
                       #"authd_request_duration_seconds_bucket{route="/auth/sessions/{id}",le="+Inf"}"#] {
            #expect(text.contains(series), "missing \(series)")
        }
        #expect(!text.contains(sid), "a session id in the metrics")
    }
}
