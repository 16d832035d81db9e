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

    init(endpoint: RedisEndpoint, timeoutSeconds: Double, onConnect: @escaping () -> Void = {}) {
        self.endpoint = endpoint
        self.onConnect = onConnect
        let whole = Int(timeoutSeconds)
        timeout = timeval(tv_sec: whole, tv_usec: Int((timeoutSeconds - Double(whole)) * 1_000_000))
    }

    deinit { disconnect() }

    /// Sends one command and returns its reply; a Redis error reply is returned, not thrown.
    /// Throws `StoreUnavailable` when Redis cannot be reached or the connection breaks.
    func command(_ args: [String]) throws(StoreUnavailable) -> RedisReply {
        let ctx = try connected()
        let reply = Self.send(ctx, args)
        guard let reply else {
            let cause = Self.errorText(ctx)
            disconnect()
            throw StoreUnavailable("redis \(args.first ?? ""): \(cause)")
        }
        defer { freeReplyObject(reply) }
        return Self.copy(reply.assumingMemoryBound(to: redisReply.self))
    }

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
        let ctx: UnsafeMutablePointer<redisContext>?
        let password: String?, database: Int
        switch endpoint {
        case .tcp(let host, let port, let db, let pw):
            ctx = redisConnectWithTimeout(host, Int32(port), timeout)
            (password, database) = (pw, db)
        case .unix(let path, let db, let pw):
            ctx = redisConnectUnixWithTimeout(path, timeout)
            (password, database) = (pw, db)
        }
        guard let ctx else { throw StoreUnavailable("redis connect: out of memory") }
        if ctx.pointee.err != 0 {
            let cause = Self.errorText(ctx)
            redisFree(ctx)
            throw StoreUnavailable("redis connect: \(cause)")
        }
        _ = redisSetTimeout(ctx, timeout)
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
        return ctx
    }

    /// True when the server has hung up on an idle connection (a zero-timeout poll).
    private static func peerClosed(_ fd: Int32) -> Bool {
        // 0x2000 is POLLRDHUP, which Glibc only declares under _GNU_SOURCE.
        var p = pollfd(fd: fd, events: Int16(POLLIN) | 0x2000, revents: 0)
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
