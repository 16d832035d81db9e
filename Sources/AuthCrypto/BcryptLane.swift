public import AuthCore
internal import CThreads
internal import Dispatch
internal import Glibc

/// The password lane: a few dedicated bcrypt threads, at a lower scheduling priority than
/// the request workers, fed from a bounded queue.
///
/// A login storm then costs token checks little: the lane's threads are SCHED_IDLE
/// (nice 19 where that is refused), so they take only the CPU the workers leave, the workers only
/// wait on a semaphore, and when the queue is full a login is refused at once with
/// `HashingBusy` (503) instead of tying up another worker.
public final class BcryptLane: PasswordHasher, @unchecked Sendable {
    // @unchecked: the queue is behind a mutex, the semaphores are thread-safe, and each
    // Bcrypt buffer belongs to one lane thread.

    /// How long a request waits for its turn before it is told to retry.
    static let maxWait = DispatchTimeInterval.seconds(5)
    /// The niceness of the lane's threads (the workers stay at the process's): the
    /// lowest, so that bcrypt takes only the CPU that token checks leave over.
    public static let niceness: Int32 = 19

    private let jobs = Locked<[Job]>([])
    private let queued = DispatchSemaphore(value: 0)
    private let maxQueued: Int
    private let cost: Int

    /// - Parameters:
    ///   - cost: bcrypt cost of new hashes (4...31).
    ///   - threads: hashes that may run at once (at most one per core makes sense).
    ///   - maxQueued: requests that may wait for a thread before new ones get `HashingBusy`.
    public init(cost: Int, threads: Int, maxQueued: Int) throws {
        _ = try Bcrypt(cost: cost)  // validates the cost once, here
        self.cost = cost
        self.maxQueued = maxQueued
        for _ in 0..<max(1, threads) {
            let box = Unmanaged.passRetained(self)
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let lane = Unmanaged<BcryptLane>.fromOpaque(raw!).takeRetainedValue()
                lane.serve()
                return nil
            }, box.toOpaque())
            guard rc == 0 else {
                box.release()
                throw CryptoError.invalidArgument("pthread_create", "errno \(rc)")
            }
            pthread_detach(thread)
        }
    }

    public func hash(_ password: String) throws -> String {
        try run { try $0.hash(password) }
    }

    public func verify(_ password: String, against hash: String) throws -> Bool {
        try run { $0.verify(password, against: hash) }
    }

    /// Runs `work` on a lane thread and waits for it.
    func run<T>(_ work: @escaping (Bcrypt) throws -> T) throws -> T {
        var result: Result<T, any Error>?
        let job = Job { bcrypt in result = Result { try work(bcrypt) } }
        let accepted = jobs.withLock { q -> Bool in
            guard q.count < maxQueued else { return false }
            q.append(job)
            return true
        }
        guard accepted else { throw HashingBusy() }
        queued.signal()
        if job.done.wait(timeout: .now() + Self.maxWait) == .timedOut {
            // Still queued: withdraw it, so that the queue counts only real waiters.
            // Already taken by a lane thread: it ends within one hash.
            let withdrawn = jobs.withLock { q -> Bool in
                guard let i = q.firstIndex(where: { $0 === job }) else { return false }
                q.remove(at: i)
                return true
            }
            if withdrawn { throw HashingBusy() }
            job.done.wait()
        }
        // The lane thread wrote `result` before signalling `done`.
        return try result!.get()
    }

    /// A lane thread: lower priority, its own bcrypt buffer, jobs in arrival order.
    private func serve() {
        // SCHED_IDLE: bcrypt runs only on CPU nothing else wants; nice 19 covers kernels or
        // sandboxes that refuse the policy change.
        _ = authd_set_thread_niceness(Self.niceness)
        _ = authd_set_thread_idle_policy()
        guard let bcrypt = try? Bcrypt(cost: cost) else { return }
        while true {
            queued.wait()
            // Empty when the job this signal was for has been withdrawn.
            guard let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
            job.work(bcrypt)
            job.done.signal()
        }
    }

    /// Requests waiting for a lane thread, for tests.
    var queuedCount: Int { jobs.withLock { $0.count } }

    /// The scheduling policy of the calling thread (5 is SCHED_IDLE), for tests.
    static func currentThreadPolicy() -> Int32 { authd_thread_policy() }

    /// The niceness of the calling thread, for tests.
    static func currentThreadNiceness() -> Int32 { authd_thread_niceness() }

    private final class Job: @unchecked Sendable {
        // @unchecked: `work` runs on one lane thread; `done` orders it before the waiter reads.
        let work: (Bcrypt) -> Void
        let done = DispatchSemaphore(value: 0)

        init(_ work: @escaping (Bcrypt) -> Void) { self.work = work }
    }
}

/// A value behind a pthread mutex. Not Synchronization's Mutex: that one locks with raw
/// futex calls that ThreadSanitizer cannot see, so `make tsan` would report every access
/// it guards as a race.
private final class Locked<Value>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var value: Value

    init(_ value: Value) {
        self.value = value
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
