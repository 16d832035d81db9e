public import AuthCore
import Glibc
import Logging
import Synchronization

/// Brings every session ended anywhere into this authd's `Revocations`: a thread of its
/// own SUBSCRIBEs to `auth:revocations` (the scripts that end sessions publish each there),
/// then reads the log of the same name (ended sessions whose access tokens may still be
/// presented), so that whatever was published while it was not subscribed (at start, or
/// during a Redis outage) is caught up; a message that comes both ways is applied twice,
/// harmlessly. It reconnects on its own when Redis goes away, and drops expired entries.
public final class RevocationFeed: @unchecked Sendable {
    private let endpoint: RedisEndpoint
    private let timeout: Double
    private let revocations: Revocations
    private let clock: any Clock
    private let logger: Logger
    private let stopped = Atomic<Bool>(false)
    private var thread: pthread_t?
    /// Times the subscription was (re)made and the log read: for tests and the log.
    public let rounds = Atomic<Int>(0)

    public init(endpoint: RedisEndpoint, timeoutSeconds: Double, revocations: Revocations, clock: any Clock, logger: Logger) {
        self.endpoint = endpoint
        self.timeout = timeoutSeconds
        self.revocations = revocations
        self.clock = clock
        self.logger = logger
    }

    public func start() throws {
        let box = Unmanaged.passRetained(self)
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            let feed = Unmanaged<RevocationFeed>.fromOpaque(arg!).takeRetainedValue()
            feed.run()
            return nil
        }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            throw StoreUnavailable("pthread_create (revocation feed): errno \(rc)")
        }
        thread = tid
    }

    /// Waits until the feed has subscribed and read the log once, at most `seconds`.
    /// False when it has not (Redis down): then it goes on trying by itself.
    public func waitUntilCaughtUp(seconds: Double) -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while rounds.load(ordering: .acquiring) == 0 {
            guard ContinuousClock.now < deadline else { return false }
            var pause = timespec(tv_sec: 0, tv_nsec: 5_000_000)
            nanosleep(&pause, nil)
        }
        return true
    }

    /// Stops the thread (within about `pollMillis`) and waits for it.
    public func stop() {
        stopped.store(true, ordering: .releasing)
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    static let pollMillis: Int32 = 200

    /// Whether the last attempt failed, and how long to wait before the next (the feed
    /// thread's alone): a streak of failures is logged once, retried at 50 ms doubling to 1 s.
    private var failing = false
    private var backoffMillis = 50

    private func run() {
        while !stopped.load(ordering: .acquiring) {
            do {
                try follow()
            } catch {
                if !failing, !stopped.load(ordering: .acquiring) {
                    logger.warning("revocation feed: lost Redis, retrying until it answers", metadata: ["cause": "\(error)"])
                }
                failing = true
                var pause = timespec(tv_sec: backoffMillis / 1000, tv_nsec: (backoffMillis % 1000) * 1_000_000)
                nanosleep(&pause, nil)
                backoffMillis = min(1000, backoffMillis * 2)
            }
        }
    }

    /// One subscription, until it breaks or the feed stops.
    private func follow() throws(StoreUnavailable) {
        let subscription = RedisConnection(endpoint: endpoint, timeoutSeconds: timeout)
        let channel = RedisKey.revocations.rawValue
        try subscription.subscribe(channel)
        try catchUp()
        rounds.add(1, ordering: .releasing)
        if failing { logger.info("revocation feed: subscribed again and caught up") }
        failing = false
        backoffMillis = 50
        var lastPrune = clock.now()
        while !stopped.load(ordering: .acquiring) {
            var batch: [(session: String, until: Int64)] = []
            var wait = Self.pollMillis
            while let message = try subscription.nextMessage(waitMillis: wait) {
                // ["message", channel, "<sid> <until>"]
                if case .array(let parts) = message, parts.count == 3, parts[0].text == "message",
                   let entry = Self.entry(parts[2].text) {
                    batch.append(entry)
                }
                wait = 0  // then whatever else has arrived, applied together
            }
            revocations.revoke(batch)
            let now = clock.now()
            if now != lastPrune {
                revocations.prune(now: now)
                lastPrune = now
            }
        }
    }

    /// The log's entries that still matter, from a command connection of its own.
    private func catchUp() throws(StoreUnavailable) {
        let reader = RedisConnection(endpoint: endpoint, timeoutSeconds: timeout)
        let reply = try reader.command(["ZRANGEBYSCORE", RedisKey.revocations.rawValue, "(\(clock.now())", "+inf", "WITHSCORES"])
        guard case .array(let flat) = reply, flat.count % 2 == 0 else {
            throw StoreUnavailable("redis ZRANGEBYSCORE \(RedisKey.revocations): unexpected reply \(reply)")
        }
        let entries = stride(from: 0, to: flat.count, by: 2).compactMap { i -> (session: String, until: Int64)? in
            guard let sid = flat[i].text, let until = flat[i + 1].text.flatMap({ Double($0) }) else { return nil }
            return (sid, Int64(until))
        }
        revocations.revoke(entries)
    }

    /// `"<sid> <until>"`, as `revoke` in the scripts publishes it.
    static func entry(_ text: String?) -> (session: String, until: Int64)? {
        guard let parts = text?.split(separator: " "), parts.count == 2, let until = Int64(parts[1]) else { return nil }
        return (String(parts[0]), until)
    }
}
