import Foundation

/// Runs `body(0..<count)` on `count` threads that start together (a gate opens once
/// every thread is ready), and returns the results in index order. Real threads rather
/// than concurrentPerform, whose width is the number of cores.
func concurrently<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) -> T) -> [T] {
    let state = ParallelState<T>(count: count)
    for index in 0..<count {
        let thread = Thread {
            state.arriveAndWait()
            state.store(body(index), at: index)
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    return state.waitForAll()
}

private final class ParallelState<T: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private let count: Int
    private var ready = 0
    private var done = 0
    private var results: [T?]

    init(count: Int) {
        self.count = count
        results = Array(repeating: nil, count: count)
    }

    func arriveAndWait() {
        condition.lock()
        ready += 1
        if ready == count { condition.broadcast() }
        while ready < count { condition.wait() }
        condition.unlock()
    }

    func store(_ value: T, at index: Int) {
        condition.lock()
        results[index] = value
        done += 1
        condition.broadcast()
        condition.unlock()
    }

    func waitForAll() -> [T] {
        condition.lock()
        while done < count { condition.wait() }
        condition.unlock()
        return results.map { $0! }
    }
}

/// The HTTP status of a request, or -1 when the request itself failed.
func statusOf(_ request: () throws -> HTTPResponse) -> Int {
    (try? request().status) ?? -1
}
