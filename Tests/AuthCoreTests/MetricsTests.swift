import Testing
@testable import AuthCore

/// GET /metrics: the counters of every registered worker, summed, in Prometheus text.
extension HandlerTests {
    func scrape(_ service: AuthService, _ worker: Worker) -> [String: Double] {
        let r = service.handle(Request(method: "GET", path: "/metrics"), worker: worker)
        #expect(r.status == 200 && r.contentType.description == "text/plain; version=0.0.4; charset=utf-8")
        var samples: [String: Double] = [:]
        for line in String(decoding: r.body, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = Double(parts[1]) { samples[String(parts[0])] = value }
        }
        return samples
    }

    @Test func metricsCountRoutesStatusesAndEvents() throws {
        let service = try Self.makeService(clock: clock, ["LOGIN_USER_MAX_FAILURES": "1", "LOGIN_ADDRESS_MAX_FAILURES": "0"])
        let a = Worker(store: store, metrics: service.metrics.newWorker())
        let b = Worker(store: store, metrics: service.metrics.newWorker())
        func post(_ path: String, _ json: String, on worker: Worker) -> Response {
            service.handle(Request(method: "POST", path: path, contentType: "application/json", body: Array(json.utf8)), worker: worker)
        }
        let registered = post("/auth/register", #"{"username":"metric","password":"password1"}"#, on: a)
        #expect(registered.status == 201)
        let refresh = string(registered, "refreshToken") ?? ""
        #expect(post("/auth/refresh-token", #"{"refreshToken":"\#(refresh)"}"#, on: b).status == 200)
        #expect(post("/auth/refresh-token", #"{"refreshToken":"\#(refresh)"}"#, on: a).status == 403)  // replay
        #expect(post("/auth/login", #"{"username":"metric","password":"wrong-one"}"#, on: b).status == 401)
        #expect(post("/auth/login", #"{"username":"metric","password":"wrong-one"}"#, on: b).status == 429)
        store.down = true
        #expect(post("/auth/login", #"{"username":"other","password":"password1"}"#, on: a).status == 503)
        store.down = false
        #expect(service.handle(Request(method: "GET", path: "/nope"), worker: a).status == 404)

        let m = scrape(service, a)
        #expect(m[#"authd_requests_total{route="/auth/register",status="201"}"#] == 1)
        #expect(m[#"authd_requests_total{route="/auth/refresh-token",status="200"}"#] == 1)
        #expect(m[#"authd_requests_total{route="/auth/refresh-token",status="403"}"#] == 1)
        #expect(m[#"authd_requests_total{route="/auth/login",status="429"}"#] == 1)
        #expect(m[#"authd_requests_total{route="unmatched",status="404"}"#] == 1)
        #expect(m["authd_token_pairs_issued_total"] == 2)
        #expect(m["authd_refresh_replays_total"] == 1)
        #expect(m["authd_logins_throttled_total"] == 1)
        #expect(m["authd_redis_errors_total"] == 1)
        // Histograms: cumulative buckets end in +Inf == count.
        #expect(m[#"authd_request_duration_seconds_count{route="/auth/login"}"#] == 3)
        #expect(m[#"authd_request_duration_seconds_bucket{route="/auth/login",le="+Inf"}"#] == 3)
        #expect(m[#"authd_request_duration_seconds_bucket{route="/auth/login",le="10"}"#] == 3)
        #expect(m["authd_bcrypt_seconds_count"] == 2)  // the registration's hash, the 401's check
        #expect(m["authd_workers"] == 4)
        // The scrape itself is counted after it answered.
        #expect(scrape(service, b)[#"authd_requests_total{route="/metrics",status="200"}"#] == 1)
    }
}
