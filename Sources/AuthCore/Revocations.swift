import Synchronization

/// Sessions ended lately, so that their access tokens are refused at once on every
/// instance without a store read per request (docs/gateway.md, "Revocation").
///
/// Every store script that ends a session publishes its id, with the moment until which
/// an access token of it may still be presented (its end plus the access-token lifetime
/// and leeway); each authd's revocation feed (AuthRedis `RevocationFeed`) adds them here,
/// and replays the store's log of them whenever it (re)subscribes, so an outage loses
/// none. This instance's own handlers add the sessions they end directly, so that their
/// answer is never ahead of it. An entry is dropped once its `until` has passed: every
/// access token it can concern has expired by then.
public final class Revocations: Sendable {
    /// Session id to `until`, Unix seconds.
    private let sessions = Locked<[String: Int64]>([:])
    /// Moves after every change, so that a worker's `RevocationView` knows when to look again.
    fileprivate let generation = Atomic<Int>(0)

    public init() {}

    public func revoke(_ session: SessionID, until: Int64) { revoke([(session.rawValue, until)]) }

    public func revoke(_ entries: [(session: String, until: Int64)]) {
        guard !entries.isEmpty else { return }
        sessions.withLock { map in
            for (sid, until) in entries where until > map[sid] ?? .min { map[sid] = until }
        }
        generation.add(1, ordering: .releasing)
    }

    /// Drops the entries whose `until` is not after `now`.
    public func prune(now: Int64) {
        let dropped = sessions.withLock { map in
            let before = map.count
            map = map.filter { $0.value > now }
            return before - map.count
        }
        if dropped > 0 { generation.add(1, ordering: .releasing) }
    }

    public var count: Int { sessions.withLock { $0.count } }

    /// The set as it is now, with the generation it was read at (read under the lock:
    /// a change made after it moves the generation past this one).
    fileprivate func snapshot() -> (generation: Int, sessions: [String: Int64]) {
        sessions.withLock { (generation.load(ordering: .acquiring), $0) }
    }
}

/// One worker thread's copy of `Revocations` (not shared). A check is an atomic load and
/// a dictionary lookup; the set is taken again, under its lock, only when it has changed
/// since (the dictionary is copied on write, so taking it costs a reference, not a copy).
public final class RevocationView {
    private var generation = -1
    private var sessions: [String: Int64] = [:]

    public init() {}

    public func isRevoked(_ session: SessionID, now: Int64, in shared: Revocations) -> Bool {
        if shared.generation.load(ordering: .acquiring) != generation { (generation, sessions) = shared.snapshot() }
        guard let until = sessions[session.rawValue] else { return false }
        return until > now
    }
}
