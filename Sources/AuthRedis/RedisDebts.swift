import AuthCore
import Synchronization

/// Clean-ups that Redis could not be asked for when they were due, or whose need only
/// showed when a write's answer was lost: undoing a registration or a login that got 503,
/// a rotation whose new token nobody received, giving back a login attempt. Shared by
/// every worker's store. Each checks what it undoes, so running one late or twice is
/// harmless; what one undoes also expires by itself, so the bounded list may drop the oldest.
///
/// While any is owed, a store settles them before its own command, under one lock: no
/// command sent after a debt was recorded (a client's retry of the request that got 503)
/// overtakes it.
public final class RedisDebts: Sendable {
    enum Debt: Sendable {
        /// A registration that did not complete: its user (never given to anyone), then its name.
        case undoRegistration(username: String, id: UserID)
        /// A session whose creation may have applied without its tokens reaching anyone.
        case undoSession(SessionID, of: UserID)
        /// A rotation that may have applied without its new token reaching anyone.
        case undoRotation(SessionID, of: UserID, next: String)
        case returnAttempt(ThrottleKey)
        case clearAttempts(ThrottleKey)
    }

    private struct State {
        var owed: [Debt] = []
        /// When settling last met a Redis that did not answer.
        var failedAt: ContinuousClock.Instant?
    }

    private let state = Locked(State())
    /// Debts recorded and not yet taken over by a settler: behind a lock of their own, so
    /// that recording one never waits for a settler that is waiting for Redis.
    private let incoming = Locked<[Debt]>([])
    /// Debts recorded and not yet paid (or dropped), both lists together.
    private let count = Atomic<Int>(0)
    static let limit = 4096

    public init() {}

    var isEmpty: Bool { count.load(ordering: .acquiring) == 0 }

    func add(_ debt: Debt) {
        incoming.withLock { list in
            list.append(debt)
            count.add(1, ordering: .releasing)
        }
    }

    /// Runs `pay` on each debt in order, holding the lock. `pay` throws when Redis did not
    /// answer: that debt and the rest stay owed, and for `quiet` every caller is told so at
    /// once (503) rather than each waiting for Redis in turn.
    func settle(quiet: Duration, _ pay: (Debt) throws -> Void) throws {
        let asked = ContinuousClock.now
        try state.withLock { (s: inout State) throws -> Void in
            // Waiting this long for the lock means another store was waiting for Redis:
            // this request has spent its time, and is told so rather than try in turn.
            if let failed = s.failedAt, failed.duration(to: .now) < quiet || asked.duration(to: .now) >= quiet {
                throw StoreUnavailable("redis: clean-ups are owed and it did not answer them just now")
            }
            s.owed += incoming.withLock { list in defer { list = [] }; return list }
            if s.owed.count > Self.limit {
                let dropped = s.owed.count - Self.limit
                s.owed.removeFirst(dropped)
                count.subtract(dropped, ordering: .releasing)
            }
            while let debt = s.owed.first {
                let started = ContinuousClock.now
                do {
                    try pay(debt)
                } catch {
                    // Only a Redis slow to fail (a stall) is worth telling the others at
                    // once; a refused connection costs each of them nothing to meet.
                    if started.duration(to: .now) >= quiet { s.failedAt = .now }
                    throw error
                }
                s.owed.removeFirst()
                count.subtract(1, ordering: .releasing)
            }
            s.failedAt = nil
        }
    }
}
