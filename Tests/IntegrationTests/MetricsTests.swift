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
        #expect(try stack.refresh(user.tokens.refresh).status == 403)  // a replay
        #expect(try stack.home(next.access).status == 200)
        #expect(try stack.login(user.username, "not the password").status == 401)
        let response = try stack.get("/metrics")
        #expect(response.status == 200)
        #expect(response.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true, "\(response)")
        let text = String(decoding: response.body, as: UTF8.self)
        for series in [#"authd_requests_total{route="/auth/register",status="201"}"#,
                       #"authd_requests_total{route="/auth/refresh-token",status="403"}"#,
                       #"authd_request_duration_seconds_bucket{route="/",le="+Inf"}"#,
                       "authd_token_pairs_issued_total", "authd_refresh_replays_total", "authd_logins_throttled_total",
                       "authd_bcrypt_seconds_count", "authd_redis_errors_total", "authd_redis_connects_total",
                       "authd_requests_in_flight", "authd_workers 64"] {
            #expect(text.contains(series), "missing \(series)")
        }
        // From any other address (127.0.0.2 is loopback too, but not on the allow list):
        // nginx's JSON 403, and authd is never asked.
        let other = try runCommand("curl", ["-s", "--interface", "127.0.0.2", "-w", "\n%{http_code}", "http://127.0.0.1:\(stack.port)/metrics"],
                                   directory: stack.dir)
        #expect(other.output.hasSuffix("\n403") && other.output.contains(#""status":403"#), "\(other.output)")
        let replays = text.split(separator: "\n").first { $0.hasPrefix("authd_refresh_replays_total ") }
        #expect(replays.flatMap { Int($0.split(separator: " ")[1]) }.map { $0 >= 1 } == true, "\(replays ?? "none")")
    }
}
