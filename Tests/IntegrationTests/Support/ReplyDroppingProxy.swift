import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A unix-socket relay between authd and the real redis-server that can drop Redis's
/// answers while still passing every command on: Redis applies a write, and authd never
/// hears of it (it answers 503 after REDIS_TIMEOUT). That is what a Redis frozen between
/// running a script and sending its reply, or a connection broken at that moment, does;
/// the relay makes it happen on demand. Only answers to scripts are dropped (and all that
/// follows them on that connection): a fresh connection's set-up still succeeds, so the
/// script is sent and runs.
final class ReplyDroppingProxy: @unchecked Sendable {
    let path: String
    /// The redis-server socket: set once the stack it belongs to has started.
    let upstream = Guarded<String>("")
    private let listener: Int32
    private let dropping = Atomic<Bool>(false)
    private let closed = Atomic<Bool>(false)

    init(path: String) throws {
        self.path = path
        unlink(path)
        listener = try unixSocket(path, listen: true)
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// From now on, answers from Redis to scripts are read and thrown away.
    func dropReplies(_ on: Bool) { dropping.store(on, ordering: .sequentiallyConsistent) }

    func close() {
        closed.store(true, ordering: .sequentiallyConsistent)
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
    }

    private func acceptLoop() {
        while !closed.load(ordering: .relaxed) {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { if errno == EINTR { continue } else { return } }
            guard let server = try? unixSocket(upstream.withLock { $0 }) else { Glibc.close(client); continue }
            let link = Link(client, server)
            Thread.detachNewThread { [self] in pump(from: client, to: server, link: link, replies: false); link.finish() }
            Thread.detachNewThread { [self] in pump(from: server, to: client, link: link, replies: true); link.finish() }
        }
    }

    /// One relayed connection: the first direction to end shuts both down, the second closes them.
    private final class Link: Sendable {
        let fds: (Int32, Int32)
        let ended = Atomic<Int>(0)
        /// A script was sent while answers are being dropped.
        let scriptSent = Atomic<Bool>(false)
        init(_ a: Int32, _ b: Int32) { fds = (a, b) }
        func finish() {
            shutdown(fds.0, Int32(SHUT_RDWR))
            shutdown(fds.1, Int32(SHUT_RDWR))
            if ended.add(1, ordering: .acquiringAndReleasing).newValue == 2 {
                Glibc.close(fds.0)
                Glibc.close(fds.1)
            }
        }
    }

    private static let evalsha = Array("EVALSHA".utf8)

    private func pump(from source: Int32, to target: Int32, link: Link, replies: Bool) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return }
            let drop = dropping.load(ordering: .sequentiallyConsistent)
            if !drop { link.scriptSent.store(false, ordering: .sequentiallyConsistent) }
            if replies {
                if drop, link.scriptSent.load(ordering: .sequentiallyConsistent) { continue }
            } else if drop, buffer[..<n].firstRange(of: Self.evalsha) != nil {
                link.scriptSent.store(true, ordering: .sequentiallyConsistent)
            }
            var sent = 0
            while sent < n {
                let w = buffer.withUnsafeBytes { write(target, $0.baseAddress! + sent, n - sent) }
                if w < 0, errno == EINTR { continue }
                guard w > 0 else { return }
                sent += w
            }
        }
    }
}
