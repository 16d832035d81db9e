import Foundation

/// A value behind an NSLock (a pthread mutex, which ThreadSanitizer models; it does not
/// model Synchronization.Mutex's futex, and `make tsan` reports the accesses under one
/// as races).
final class Guarded<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
