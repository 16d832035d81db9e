import AuthCore
import Glibc
import Dispatch
import Synchronization
import Testing
@testable import AuthCrypto

@Suite struct BcryptLaneTests {
    @Test func hashesAndVerifiesOnItsThreads() throws {
        let lane = try BcryptLane(cost: 4, threads: 2, maxQueued: 8)
        let hash = try lane.hash("correct horse")
        #expect(hash.hasPrefix("$2b$04$"))
        #expect(try lane.verify("correct horse", against: hash))
        #expect(try !lane.verify("wrong horse", against: hash))
    }

    @Test func laneThreadsRunBelowTheWorkers() throws {
        let lane = try BcryptLane(cost: 4, threads: 1, maxQueued: 1)
        let niceness = try lane.run { _ in BcryptLane.currentThreadNiceness() }
        #expect(niceness == BcryptLane.currentThreadNiceness() + BcryptLane.niceness
                || niceness == 19, "lane thread niceness \(niceness)")
        let sched_idle: Int32 = 5
        #expect(try lane.run { _ in BcryptLane.currentThreadPolicy() } == sched_idle)
        #expect(BcryptLane.currentThreadPolicy() != sched_idle, "the caller keeps its policy")
    }

    @Test func parallelRequestsAllComplete() throws {
        let lane = try BcryptLane(cost: 4, threads: 2, maxQueued: 64)
        let hash = try lane.hash("pw-0123456")
        let correct = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 32) { i in
            if (try? lane.verify(i % 2 == 0 ? "pw-0123456" : "nope", against: hash)) == (i % 2 == 0) {
                correct.add(1, ordering: .relaxed)
            }
        }
        #expect(correct.load(ordering: .relaxed) == 32)
    }

    /// A full queue refuses at once instead of parking another worker.
    @Test func fullQueueIsRefused() throws {
        let lane = try BcryptLane(cost: 4, threads: 1, maxQueued: 1)
        let started = DispatchSemaphore(value: 0), gate = DispatchSemaphore(value: 0), finished = DispatchGroup()
        DispatchQueue.global().async(group: finished) {
            _ = try? lane.run { _ in started.signal(); gate.wait() }  // occupies the only thread
        }
        started.wait()
        DispatchQueue.global().async(group: finished) { _ = try? lane.hash("queued-one") }  // fills the queue
        while lane.queuedCount < 1 { sched_yield() }
        #expect(throws: HashingBusy.self) { try lane.hash("one-too-many") }
        gate.signal()
        finished.wait()
    }
}

extension BcryptLaneTests {
    /// A request that gave up waiting leaves the queue, so it does not count against
    /// later ones (a storm of timed-out logins must not refuse every login after it).
    @Test func withdrawnRequestsFreeTheirPlace() throws {
        let lane = try BcryptLane(cost: 4, threads: 1, maxQueued: 1)
        let started = DispatchSemaphore(value: 0), gate = DispatchSemaphore(value: 0), finished = DispatchGroup()
        DispatchQueue.global().async(group: finished) {
            _ = try? lane.run { _ in started.signal(); gate.wait() }
        }
        started.wait()
        // Queued behind the blocked thread for BcryptLane.maxWait (5 s), then withdrawn.
        #expect(throws: HashingBusy.self) { try lane.hash("gives-up") }
        #expect(lane.queuedCount == 0)
        gate.signal()
        finished.wait()
        #expect(try lane.verify("pw-123456", against: try lane.hash("pw-123456")))
    }
}
