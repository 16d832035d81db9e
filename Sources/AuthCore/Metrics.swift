import Synchronization

/// The counters of one worker thread. Only that thread adds to them (relaxed atomic adds
/// on memory no other thread writes: no lock, no shared cache line on the request path);
/// a scrape reads every worker's counters and adds them up. Prometheus text format.
public final class WorkerMetrics: @unchecked Sendable {
    // @unchecked: the slots are atomics, allocated once and never freed before exit.
    private let slots: UnsafeMutablePointer<Atomic<UInt64>>

    public init() {
        slots = .allocate(capacity: Slot.count)
        for i in 0..<Slot.count { (slots + i).initialize(to: Atomic(0)) }
    }

    deinit {
        slots.deinitialize(count: Slot.count)
        slots.deallocate()
    }

    func add(_ slot: Int, _ amount: UInt64 = 1) { slots[slot].add(amount, ordering: .relaxed) }
    func load(_ slot: Int) -> UInt64 { slots[slot].load(ordering: .relaxed) }

    /// One request answered: its endpoint (nil: a 404 or 405 of the router), status and
    /// time in authd.
    func request(_ endpoint: Endpoint?, status: Int, nanoseconds: UInt64) {
        let row = Slot.row(endpoint)
        add(Slot.requests + row * Slot.statusColumns + Slot.statusIndex(status))
        observe(Slot.latency + row * Slot.histogramSize, nanoseconds)
    }

    /// Time a password check or hash took, waiting for the lane included.
    public func bcrypt(nanoseconds: UInt64) { observe(Slot.bcrypt, nanoseconds) }
    /// The store (re)connected.
    public func storeConnected() { add(Slot.storeConnects) }

    func count(_ event: Event, _ amount: Int = 1) { add(event.rawValue, UInt64(amount)) }

    /// Histogram at `base`: one slot per bucket (not cumulative), then the sum in ns.
    private func observe(_ base: Int, _ nanoseconds: UInt64) {
        var bucket = 0
        while bucket < Slot.bucketsNs.count, nanoseconds > Slot.bucketsNs[bucket] { bucket += 1 }
        add(base + bucket)
        add(base + Slot.bucketsNs.count + 1, nanoseconds)
    }

    /// Events counted once each.
    enum Event: Int {
        case tokenPairsIssued, refreshReplays, loginsThrottled, storeErrors, sessionsEvicted
    }

    /// Where each counter lives in `slots`.
    enum Slot {
        static let statuses = [200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 503]
        /// Upper bounds of the latency buckets: 100 µs to 10 s.
        static let bucketsNs: [UInt64] = [100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000,
                                          50_000_000, 100_000_000, 250_000_000, 500_000_000, 1_000_000_000, 2_500_000_000,
                                          5_000_000_000, 10_000_000_000]
        /// Buckets, +Inf, sum.
        static let histogramSize = bucketsNs.count + 2
        static let requests = storeConnects + 1
        /// The statuses, then "other".
        static let statusColumns = statuses.count + 1
        static let latency = requests + rows * statusColumns
        static let bcrypt = latency + rows * histogramSize
        static let storeConnects = 5  // after the five events
        static let count = bcrypt + histogramSize

        /// One row of request counters per endpoint, then one for the router's 404s and 405s.
        static let rows = Endpoint.allCases.count + 1
        static func row(_ endpoint: Endpoint?) -> Int { endpoint?.rawValue ?? Endpoint.allCases.count }
        static func label(_ row: Int) -> String { row < Endpoint.allCases.count ? Endpoint.allCases[row].label : "unmatched" }

        /// The status's column; the last one is "other".
        static func statusIndex(_ status: Int) -> Int { statuses.firstIndex(of: status) ?? statuses.count }
    }
}

/// Every worker's counters, for the scrape.
public final class MetricsRegistry: Sendable {
    private let workers = Mutex<[WorkerMetrics]>([])

    public init() {}

    /// Counters for a new worker thread, included in every scrape from now on. Call it
    /// before the thread starts (ThreadSanitizer cannot see Mutex's futex: an append from
    /// another thread would be reported as racing with the scrape).
    public func newWorker() -> WorkerMetrics {
        let metrics = WorkerMetrics()
        workers.withLock { $0.append(metrics) }
        return metrics
    }

    /// The Prometheus text exposition (format 0.0.4) of the sums over all workers.
    func exposition(inFlight: Int, workerCount: Int, revocations: Int = 0) -> String {
        let all = workers.withLock { $0 }
        func total(_ slot: Int) -> UInt64 { all.reduce(0) { $0 + $1.load(slot) } }
        typealias Slot = WorkerMetrics.Slot
        var out = ""
        func header(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func histogram(_ name: String, labels: String, base: Int) {
            let sep = labels.isEmpty ? "" : ","
            var cumulative: UInt64 = 0
            for (i, bound) in Slot.bucketsNs.enumerated() {
                cumulative += total(base + i)
                out += "\(name)_bucket{\(labels)\(sep)le=\"\(seconds(bound))\"} \(cumulative)\n"
            }
            cumulative += total(base + Slot.bucketsNs.count)
            out += "\(name)_bucket{\(labels)\(sep)le=\"+Inf\"} \(cumulative)\n"
            let braces = labels.isEmpty ? "" : "{\(labels)}"
            out += "\(name)_sum\(braces) \(seconds(total(base + Slot.bucketsNs.count + 1)))\n"
            out += "\(name)_count\(braces) \(cumulative)\n"
        }

        header("authd_requests_total", "counter", "Requests answered by authd, by route and status.")
        for row in 0..<Slot.rows {
            for column in 0...Slot.statuses.count {
                let n = total(Slot.requests + row * Slot.statusColumns + column)
                guard n > 0 else { continue }
                let status = column < Slot.statuses.count ? String(Slot.statuses[column]) : "other"
                out += "authd_requests_total{route=\"\(Slot.label(row))\",status=\"\(status)\"} \(n)\n"
            }
        }
        header("authd_request_duration_seconds", "histogram", "Time from the parsed request to the answer, by route.")
        for row in 0..<Slot.rows {
            let base = Slot.latency + row * Slot.histogramSize
            guard (0...Slot.bucketsNs.count).contains(where: { total(base + $0) > 0 }) else { continue }
            histogram("authd_request_duration_seconds", labels: "route=\"\(Slot.label(row))\"", base: base)
        }
        header("authd_bcrypt_seconds", "histogram", "bcrypt hashes and checks, waiting for the hashing lane included.")
        histogram("authd_bcrypt_seconds", labels: "", base: Slot.bcrypt)
        let events: [(WorkerMetrics.Event, String, String)] = [
            (.tokenPairsIssued, "authd_token_pairs_issued_total", "Access/refresh pairs issued (register, login, refresh)."),
            (.refreshReplays, "authd_refresh_replays_total", "Superseded refresh tokens presented; each ended its session."),
            (.loginsThrottled, "authd_logins_throttled_total", "Logins and registrations refused with 429 by the failed-attempt limits."),
            (.storeErrors, "authd_redis_errors_total", "Requests answered 503 because Redis failed or timed out."),
            (.sessionsEvicted, "authd_sessions_evicted_total", "Sessions ended by a login of their user beyond MAX_SESSIONS_PER_USER (the least recently used)."),
        ]
        for (event, name, help) in events {
            header(name, "counter", help)
            out += "\(name) \(total(event.rawValue))\n"
        }
        header("authd_redis_connects_total", "counter", "Redis connections made (the first of each worker, then reconnects).")
        out += "authd_redis_connects_total \(total(Slot.storeConnects))\n"
        header("authd_requests_in_flight", "gauge", "Requests inside authd right now.")
        out += "authd_requests_in_flight \(inFlight)\n"
        header("authd_workers", "gauge", "FastCGI worker threads.")
        out += "authd_workers \(workerCount)\n"
        header("authd_revocations", "gauge", "Ended sessions whose access tokens this instance refuses from memory.")
        out += "authd_revocations \(revocations)\n"
        return out
    }

    private func seconds(_ nanoseconds: UInt64) -> String {
        let whole = nanoseconds / 1_000_000_000, frac = nanoseconds % 1_000_000_000
        guard frac > 0 else { return "\(whole)" }
        var digits = String(frac)
        digits = String(repeating: "0", count: 9 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }
}

extension Duration {
    /// Whole nanoseconds; 0 for a negative duration.
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        return UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }

    /// Whole microseconds (truncated toward zero; negative for a negative duration).
    public var microseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}
