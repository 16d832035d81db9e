internal import CHiredis
import Glibc
import AuthCore

/// A Redis reply, copied out of hiredis's reply tree.
enum RedisReply: Equatable {
    case string([UInt8])
    case status(String)
    case integer(Int64)
    case null
    case array([RedisReply])
    case error(String)

    var text: String? {
        switch self {
        case .string(let b): String(decoding: b, as: UTF8.self)
        case .status(let s): s
        case .integer(let n): String(n)
        default: nil
        }
    }
}

/// One blocking hiredis connection, owned by one worker thread. A context is dead after
/// any error, so it is dropped then, and the next command connects afresh: Redis coming
/// back needs no restart of the service.
final class RedisConnection {
    private let endpoint: RedisEndpoint
    private let timeout: timeval
    private var context: UnsafeMutablePointer<redisContext>?
    /// Called after each successful connect (for the connects counter).
    private let onConnect: () -> Void
    /// Redis's clock (`TIME`, microseconds) at `syncedAt` on ours, measured at connect:
    /// write deadlines are stated on Redis's clock, so the two hosts' clocks need not agree.
    private var redisClockAtSync: Int64 = 0
    private var syncedAt = ContinuousClock.now
    /// How long after sending a script it may still start: the reply timeout less a tenth,
    /// which is left for the answer of a script that started just in time (see `evalsha`).
    private let scriptBudgetMicros: Int64

    init(endpoint: RedisEndpoint, timeoutSeconds: Double, onConnect: @escaping () -> Void = {}) {
        self.endpoint = endpoint
        self.onConnect = onConnect
        let whole = Int(timeoutSeconds)
        timeout = timeval(tv_sec: whole, tv_usec: Int((timeoutSeconds - Double(whole)) * 1_000_000))
        scriptBudgetMicros = Int64(timeoutSeconds * 900_000)
    }

    deinit { disconnect() }

    /// Sends one command and returns its reply; a Redis error reply is returned, not thrown.
    /// Throws `StoreUnavailable` when Redis cannot be reached or the connection breaks.
    func command(_ args: [String]) throws(StoreUnavailable) -> RedisReply {
        try exchange(args, on: connected())
    }

    /// EVALSHA of a script that begins with `Script.deadlineGuard`: the first ARGV is
    /// the latest moment, on Redis's clock, at which the script may still start, and past
    /// which it changes nothing and answers an error. Redis runs a command whose client has
    /// given up (it queued while Redis was stalled): the guard turns that late run into a
    /// no-op, so our 503 (`REDIS_TIMEOUT` passed) means "not applied". The budget is nine
    /// tenths of the timeout; the last tenth is for the reply of a script that started just
    /// in time. (Should that reply be later still, the store undoes the write: `RedisDebts`.)
    func evalsha(_ sha: String, keys: [String], args: [String]) throws(StoreUnavailable) -> RedisReply {
        let ctx = try connected()  // first: a new connection reads Redis's clock
        let deadline = redisClockAtSync + Int64(syncedAt.duration(to: .now).microseconds) + scriptBudgetMicros
        return try exchange(["EVALSHA", sha, String(keys.count)] + keys + [String(deadline)] + args, on: ctx)
    }

    private func exchange(_ args: [String], on ctx: UnsafeMutablePointer<redisContext>) throws(StoreUnavailable) -> RedisReply {
        let reply = Self.send(ctx, args)
        guard let reply else {
            let cause = Self.errorText(ctx)
            disconnect()
            throw StoreUnavailable("redis \(args.first ?? ""): \(cause)")
        }
        defer { freeReplyObject(reply) }
        let copied = Self.copy(reply.assumingMemoryBound(to: redisReply.self))
        // A primary that became a replica (a failover): connect afresh next time, which
        // with sentinels finds the new primary. A script refused as late: Redis stalled,
        // or our deadline erred; the next connection measures the clock again.
        if case .error(let e) = copied, e.hasPrefix("READONLY") || e.hasPrefix("LATE") { disconnect() }
        return copied
    }

    /// SUBSCRIBE: from then on the connection only receives what is published on
    /// `channel` (`nextMessage`). Throws when Redis cannot be reached or refuses.
    func subscribe(_ channel: String) throws(StoreUnavailable) {
        let reply = try exchange(["SUBSCRIBE", channel], on: connected())
        guard case .array(let r) = reply, r.first?.text == "subscribe" else {
            disconnect()
            throw StoreUnavailable("redis SUBSCRIBE \(channel): unexpected reply \(reply)")
        }
    }

    /// The next message pushed to a subscribed connection, or nil when none came within
    /// `waitMillis`. Throws (and disconnects) when the connection broke.
    func nextMessage(waitMillis: Int32) throws(StoreUnavailable) -> RedisReply? {
        guard let ctx = context else { throw StoreUnavailable("redis: not subscribed") }
        var raw: UnsafeMutableRawPointer?
        // One already read into hiredis's buffer (several can come in one read) first.
        if redisGetReplyFromReader(ctx, &raw) != REDIS_OK { return try broken(ctx) }
        if raw == nil {
            var p = pollfd(fd: ctx.pointee.fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, waitMillis)
            if ready == 0 || (ready < 0 && errno == EINTR) { return nil }
            if redisGetReply(ctx, &raw) != REDIS_OK || raw == nil { return try broken(ctx) }
        }
        defer { freeReplyObject(raw) }
        return Self.copy(raw!.assumingMemoryBound(to: redisReply.self))
    }

    private func broken(_ ctx: UnsafeMutablePointer<redisContext>) throws(StoreUnavailable) -> RedisReply? {
        let cause = Self.errorText(ctx)
        disconnect()
        throw StoreUnavailable("redis subscription: \(cause)")
    }

    /// False after a timeout or a broken connection (until the next command reconnects).
    var isConnected: Bool { context != nil }

    func disconnect() {
        if let context { redisFree(context) }
        context = nil
    }

    /// The live context, connecting (and selecting the database) when there is none.
    /// A kept connection the server has closed meanwhile (Redis restarted) is noticed
    /// here, before a command is written to it, so the command is never lost on it.
    private func connected() throws(StoreUnavailable) -> UnsafeMutablePointer<redisContext> {
        if let context {
            if Self.peerClosed(context.pointee.fd) { disconnect() } else { return context }
        }
        let ctx: UnsafeMutablePointer<redisContext>
        let password: String?, database: Int
        var viaSentinel = false
        switch endpoint {
        case .tcp(let host, let port, let db, let pw):
            ctx = try open(redisConnectWithTimeout(host, Int32(port), timeout), "redis connect")
            (password, database) = (pw, db)
        case .unix(let path, let db, let pw):
            ctx = try open(redisConnectUnixWithTimeout(path, timeout), "redis connect")
            (password, database) = (pw, db)
        case .sentinel(let sentinels, let master, let db, let pw):
            ctx = try primary(from: sentinels, named: master)
            (password, database, viaSentinel) = (pw, db, true)
        }
        context = ctx
        onConnect()
        if let password {
            if case .error(let e) = try command(["AUTH", password]) {
                disconnect()
                throw StoreUnavailable("redis AUTH: \(e)")
            }
        }
        if database != 0 {
            if case .error(let e) = try command(["SELECT", String(database)]) {
                disconnect()
                throw StoreUnavailable("redis SELECT: \(e)")
            }
        }
        // The sentinels' answer can be stale for a moment during a failover.
        if viaSentinel, case .array(let role) = try command(["ROLE"]), role.first?.text != "master" {
            disconnect()
            throw StoreUnavailable("redis via sentinel: the announced primary is a \(role.first?.text ?? "?") (failover under way)")
        }
        try syncClock()
        return ctx
    }

    /// Reads Redis's clock, taking the end of the round trip as the moment it was read: so
    /// deadlines err early, if at all (by as much as Redis took to answer after reading it).
    /// A Redis that stalled before the read answers it at once when it thaws, so the
    /// estimate stays close; a script refused as late makes the next command sync afresh.
    private func syncClock() throws(StoreUnavailable) {
        let reply = try command(["TIME"])
        guard case .array(let t) = reply, t.count == 2, let seconds = t[0].text.flatMap({ Int64($0) }),
              let micros = t[1].text.flatMap({ Int64($0) }) else {
            disconnect()
            throw StoreUnavailable("redis TIME: unexpected reply \(reply)")
        }
        let received = ContinuousClock.now
        syncedAt = received
        redisClockAtSync = seconds * 1_000_000 + micros
    }

    /// A context that connected, with the timeout set; else the reason, thrown.
    private func open(_ ctx: UnsafeMutablePointer<redisContext>?, _ what: String) throws(StoreUnavailable) -> UnsafeMutablePointer<redisContext> {
        guard let ctx else { throw StoreUnavailable("\(what): out of memory") }
        if ctx.pointee.err != 0 {
            let cause = Self.errorText(ctx)
            redisFree(ctx)
            throw StoreUnavailable("\(what): \(cause)")
        }
        _ = redisSetTimeout(ctx, timeout)
        return ctx
    }

    /// Asks the sentinels in turn where the primary named `master` is, and connects to it.
    private func primary(from sentinels: [SentinelAddress], named master: String) throws(StoreUnavailable) -> UnsafeMutablePointer<redisContext> {
        var causes: [String] = []
        for sentinel in sentinels {
            let name = "sentinel \(sentinel.host):\(sentinel.port)"
            do throws(StoreUnavailable) {
                let sctx = try open(redisConnectWithTimeout(sentinel.host, Int32(sentinel.port), timeout), name)
                defer { redisFree(sctx) }
                guard let raw = Self.send(sctx, ["SENTINEL", "get-master-addr-by-name", master]) else {
                    throw StoreUnavailable("\(name): \(Self.errorText(sctx))")
                }
                let reply = Self.copy(raw.assumingMemoryBound(to: redisReply.self))
                freeReplyObject(raw)
                guard case .array(let address) = reply, address.count == 2, let host = address[0].text,
                      let port = address[1].text.flatMap({ Int32($0) }) else {
                    throw StoreUnavailable("\(name) knows no primary named \(master): \(reply)")
                }
                return try open(redisConnectWithTimeout(host, port, timeout), "redis primary \(host):\(port) (from \(name))")
            } catch {
                causes.append(error.description)
            }
        }
        throw StoreUnavailable(causes.isEmpty ? "no sentinels configured" : causes.joined(separator: "; "))
    }

    /// True when the server has hung up on an idle connection (a zero-timeout poll).
    private static func peerClosed(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN) | authd_pollrdhup(), revents: 0)
        guard poll(&p, 1, 0) == 1 else { return false }
        // An idle RESP connection has nothing to read: any event means EOF, reset or error.
        return true
    }

    private static func send(_ ctx: UnsafeMutablePointer<redisContext>, _ args: [String]) -> UnsafeMutableRawPointer? {
        var lengths = args.map { $0.utf8.count }
        var storage = [UInt8]()
        storage.reserveCapacity(lengths.reduce(0, +))
        for a in args { storage.append(contentsOf: a.utf8) }
        return storage.withUnsafeBufferPointer { buf -> UnsafeMutableRawPointer? in
            let base = UnsafeRawPointer(buf.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            var offset = 0
            var pointers = lengths.map { n -> UnsafePointer<CChar>? in
                defer { offset += n }
                return (base + offset).assumingMemoryBound(to: CChar.self)
            }
            return redisCommandArgv(ctx, Int32(args.count), &pointers, &lengths)
        }
    }

    private static func errorText(_ ctx: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: ctx.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return "\(String(decoding: bytes, as: UTF8.self)) (hiredis error \(ctx.pointee.err))"
        }
    }

    private static func copy(_ r: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let reply = r.pointee
        func bytes() -> [UInt8] {
            guard let str = reply.str else { return [] }
            return Array(UnsafeRawBufferPointer(start: str, count: reply.len))
        }
        switch reply.type {
        case REDIS_REPLY_STRING: return .string(bytes())
        case REDIS_REPLY_STATUS: return .status(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_ERROR: return .error(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_INTEGER: return .integer(Int64(reply.integer))
        case REDIS_REPLY_ARRAY:
            guard let elements = reply.element else { return .array([]) }
            return .array((0..<reply.elements).map { i in elements[i].map(copy) ?? .null })
        default: return .null
        }
    }
}
