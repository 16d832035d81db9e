internal import CFastCGI
import Glibc
public import AuthCore
import AuthSystem
import Logging
import Synchronization

/// The FastCGI params authd reads, picked out in one pass over `envp` (each
/// `FCGX_GetParam` would scan all of nginx's params again). The first of a repeated
/// name wins, as with `FCGX_GetParam`. Public so that the fuzzer (Fuzz/) converts
/// params exactly as the server does.
public struct FastCGIParams {
    var method, documentURI, requestURI, queryString, contentLength, contentType: String?
    var authorization, userAgent, remoteAddress, requestID: String?
    var requireRole, requireSessionCheck: String?

    /// Reads a NULL-terminated array of `"NAME=value"` C strings (libfcgi's `envp`).
    public init(envp: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) {
        guard var entry = envp else { return }
        while let pair = entry.pointee {
            defer { entry += 1 }
            guard let eq = strchr(pair, 0x3D) else { continue }  // "NAME=value"
            let nameLength = pair.distance(to: eq)
            let value = { String(cString: eq + 1) }
            func named(_ name: StaticString) -> Bool {
                name.utf8CodeUnitCount == nameLength && memcmp(pair, name.utf8Start, nameLength) == 0
            }
            switch (nameLength, pair[0]) {
            case (14, 0x52) where named("REQUEST_METHOD"): method = method ?? value()
            case (12, 0x44) where named("DOCUMENT_URI"): documentURI = documentURI ?? value()
            case (11, 0x52) where named("REQUEST_URI"): requestURI = requestURI ?? value()
            case (12, 0x51) where named("QUERY_STRING"): queryString = queryString ?? value()
            case (14, 0x43) where named("CONTENT_LENGTH"): contentLength = contentLength ?? value()
            case (12, 0x43) where named("CONTENT_TYPE"): contentType = contentType ?? value()
            case (18, 0x48) where named("HTTP_AUTHORIZATION"): authorization = authorization ?? value()
            case (15, 0x48) where named("HTTP_USER_AGENT"): userAgent = userAgent ?? value()
            case (11, 0x52) where named("REMOTE_ADDR"): remoteAddress = remoteAddress ?? value()
            case (10, 0x52) where named("REQUEST_ID"): requestID = requestID ?? value()
            case (18, 0x41) where named("AUTHD_REQUIRE_ROLE"): requireRole = requireRole ?? value()
            case (27, 0x41) where named("AUTHD_REQUIRE_SESSION_CHECK"): requireSessionCheck = requireSessionCheck ?? value()
            default: break
            }
        }
    }

    /// `CONTENT_LENGTH` as declared; 0 when absent or not a number.
    public var declaredContentLength: Int { contentLength.flatMap { Int($0) } ?? 0 }

    /// The request the handlers see, with `body` as read from stdin.
    public func request(body: [UInt8]) -> Request {
        Request(
            method: method ?? "GET",
            path: documentURI ?? requestURI.map { String($0.prefix { $0 != "?" }) } ?? "/",
            query: queryString ?? requestURI.flatMap { uri in uri.firstIndex(of: "?").map { String(uri[uri.index(after: $0)...]) } } ?? "",
            contentType: contentType, authorization: authorization,
            gateway: GatewayParams(requireRole: requireRole, requireSessionCheck: requireSessionCheck), userAgent: userAgent ?? "",
            remoteAddress: remoteAddress ?? "", requestID: requestID ?? "", body: body)
    }
}

/// A worker thread's entry point, boxed to cross `pthread_create`'s `void *`.
private final class WorkerJob {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// A listen address that names no host the resolver knows.
public struct ListenAddressError: Error, CustomStringConvertible {
    public let description: String
}

/// The libfcgi responder: `workers` OS threads, each with its own `FCGX_Request` and its
/// own `Worker` (its store connection). The blocking C calls stay off Swift's cooperative
/// pool.
///
/// A worker accepts connections itself and owns one at a time. Before libfcgi reads a
/// request, the worker waits, within `ioTimeoutSeconds` in all, until the whole request
/// is queued on the socket and well framed (`FastCGIFraming`): a slow or silent peer is
/// dropped at that bound, and libfcgi's reads never block. Between requests on a
/// kept-alive connection the worker parks, for at most `idleTimeout`, in a blocking peek
/// that the next request's first bytes end; at most `parkLimit` workers park at once, and
/// a worker that would exceed it shuts the longest-idle kept connection first, so idle
/// peers can never take every worker.
public final class FastCGIServer: @unchecked Sendable {
    /// Bodies above this are refused with 413 (docs/API.md; nginx enforces it too).
    public static let maxBody = 16 * 1024
    /// The longest a request may take to arrive, from its first byte (or the connection's
    /// accept) to its last, and the write timeout of every connection. nginx sends a
    /// request whole (it buffers the body first) and reads the answer at once, so a peer
    /// that is slower is broken or hostile.
    public static let ioTimeoutSeconds = 5

    private let listenFD: Int32
    /// A socket that listens on nothing, given to libfcgi as its listener: libfcgi accepts
    /// by itself after a connection fails, and would hand over a connection without the
    /// bounds above; on this one its accept fails at once.
    private let unservedFD: Int32
    private let service: AuthService
    private let logger: Logger
    private var threads: [pthread_t] = []
    private let workerCount: Int
    private let idleTimeout: Int
    /// Set once by `stop()`; workers look at it before every wait for a request.
    private let stopping = Atomic<Bool>(false)
    /// Per worker: whether it is waiting in accept (for `stop()` to wake), and whether it
    /// has finished.
    private final class AcceptWait: Sendable {
        let inAccept = Atomic<Bool>(false)
        let exited = Atomic<Bool>(false)
    }
    private let waits: [AcceptWait]
    /// Sent by `stop()` to a worker waiting in accept: its handler does nothing and has
    /// no SA_RESTART, so the accept fails with EINTR and the worker sees `stopping`.
    static let wakeSignal = SIGUSR2
    /// Per worker: since when it has been parked and on which connection (nil: not
    /// parked), and whether another worker shut that connection to take its slot; how many
    /// are parked. A parked worker's connection is shut only under this lock, while its
    /// slot is set: it cannot have been closed (and its number reused) meanwhile.
    private struct Parked {
        var slots: [(since: ContinuousClock.Instant, fd: Int32)?]
        var evicted: [Bool]
        var count = 0
    }
    private let parked: Locked<Parked>
    /// How long one blocking read of a connection may wait (its SO_RCVTIMEO): a parked
    /// worker looks at the idle deadline after each, so the idle timeout is a whole
    /// number of them and at most `ioTimeoutSeconds` each.
    let receiveTimeout: Duration
    /// At most this many workers park at once; the rest stay for new connections.
    let parkLimit: Int

    /// Gives an accepted connection its timeouts before it is served; a connection it
    /// throws for is closed unserved.
    typealias ConnectionSetup = @Sendable (Int32) throws(SystemError) -> Void
    private let setUpConnection: ConnectionSetup

    /// Opens (or adopts) the listening socket.
    public convenience init(listen: ListenAddress, service: AuthService, workers: Int, idleTimeout: Int = 75, logger: Logger) throws {
        let wait = Self.receiveTimeout(idleTimeout: idleTimeout)
        try self.init(listen: listen, service: service, workers: workers, idleTimeout: idleTimeout, logger: logger,
                      setUpConnection: { fd throws(SystemError) in try Self.setUpConnection(fd, receiveTimeout: wait) })
    }

    /// `setUpConnection` is a seam for the tests of what happens when it fails.
    init(listen: ListenAddress, service: AuthService, workers: Int, idleTimeout: Int = 75, logger: Logger,
         setUpConnection: @escaping ConnectionSetup) throws {
        FCGX_Init()
        let listenFD = try Self.openListener(listen)
        // Blocking: every idle worker waits in accept itself, and the kernel wakes one of
        // them for each connection (an inherited socket may come non-blocking).
        let flags = try Syscall.retryingEINTR("fcntl(F_GETFL)") { fcntl(listenFD, F_GETFL) }
        try Syscall.retryingEINTR("fcntl(F_SETFL)") { fcntl(listenFD, F_SETFL, flags & ~O_NONBLOCK) }
        self.listenFD = listenFD
        waits = (0..<workers).map { _ in AcceptWait() }
        unservedFD = try Syscall.retryingEINTR("socket(AF_UNIX)") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0) }
        self.service = service
        self.workerCount = workers
        self.idleTimeout = idleTimeout
        parkLimit = max(1, workers - max(1, workers / 8))
        parked = Locked(Parked(slots: Array(repeating: nil, count: workers), evicted: Array(repeating: false, count: workers)))
        receiveTimeout = Self.receiveTimeout(idleTimeout: idleTimeout)
        self.logger = logger
        self.setUpConnection = setUpConnection
    }

    /// The listening socket for `address` (fd 0 when inherited), opened here rather than
    /// by `FCGX_OpenSocket`: libfcgi exits the process (status errno) when bind or listen
    /// fails, leaves a too-long unix path unchecked, and takes `::1:9000` for a file name.
    static func openListener(_ address: ListenAddress, backlog: Int32 = 1024) throws -> Int32 {
        switch address {
        case .inherited:
            return 0
        case .unix(let path):
            let fd = try Syscall.retryingEINTR("socket(AF_UNIX)") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0) }
            do {
                unlink(path)  // a socket file left by a killed predecessor would make bind fail
                try withUnixAddress(path, call: "bind") { address, length throws(SystemError) in
                    try Syscall.retryingEINTR("bind(\(path))") { bind(fd, address, length) }
                }
                try Syscall.retryingEINTR("listen(\(path))") { listen(fd, backlog) }
                // nginx's workers connect as another user of the same group.
                try Syscall.retryingEINTR("chmod(\(path))") { chmod(path, 0o660) }
            } catch {
                close(fd)
                throw error
            }
            return fd
        case .tcp(let host, let port):
            var hints = addrinfo()
            hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
            hints.ai_family = AF_UNSPEC
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var found: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(host == "*" ? nil : host, String(port), &hints, &found)
            guard rc == 0, let info = found?.pointee else {
                throw ListenAddressError(description: "getaddrinfo(\(host)) failed: \(String(cString: gai_strerror(rc)))")
            }
            defer { freeaddrinfo(found) }
            let named = "\(host):\(port)"
            let fd = try Syscall.retryingEINTR("socket(\(named))") { socket(info.ai_family, info.ai_socktype, info.ai_protocol) }
            do {
                // A restarted authd binds again at once, past its predecessor's TIME_WAIT connections.
                var on: Int32 = 1
                try Syscall.retryingEINTR("setsockopt(SO_REUSEADDR)") {
                    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
                }
                try Syscall.retryingEINTR("bind(\(named))") { bind(fd, info.ai_addr, info.ai_addrlen) }
                try Syscall.retryingEINTR("listen(\(named))") { listen(fd, backlog) }
            } catch {
                close(fd)
                throw error
            }
            return fd
        }
    }

    /// Starts the worker threads. `makeWorker(i)` runs once on thread i (0..<workers).
    public func start(makeWorker: @escaping @Sendable (Int) -> Worker) throws {
        var wake = sigaction()
        wake.__sigaction_handler.sa_handler = { _ in }
        wake.sa_flags = 0
        sigemptyset(&wake.sa_mask)
        try Syscall.retryingEINTR("sigaction(SIGUSR2)") { sigaction(Self.wakeSignal, &wake, nil) }
        // glibc gives each thread that allocates an arena of its own (up to 8 per core);
        // with a hundred mostly idle workers that is resident memory for nothing, and a
        // request allocates little. MALLOC_ARENA_MAX in the environment still wins.
        if getenv("MALLOC_ARENA_MAX") == nil { _ = mallopt(M_ARENA_MAX, 2) }
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        // Handlers need little stack; 128 threads at the default 8 MiB would reserve 1 GiB.
        pthread_attr_setstacksize(&attributes, 256 * 1024)
        for index in 0..<workerCount {
            let job = Unmanaged.passRetained(WorkerJob { [self] in
                // The creating thread may block signals (a test runner's does); the wake
                // must reach this one.
                var wakeOnly = sigset_t()
                sigemptyset(&wakeOnly)
                sigaddset(&wakeOnly, Self.wakeSignal)
                pthread_sigmask(SIG_UNBLOCK, &wakeOnly, nil)
                serve(worker: makeWorker(index), index: index)
                waits[index].exited.store(true, ordering: .sequentiallyConsistent)
            })
            var thread = pthread_t()
            let rc = pthread_create(&thread, &attributes, { raw in
                let job = Unmanaged<WorkerJob>.fromOpaque(raw!).takeRetainedValue()
                job.body()
                return nil
            }, job.toOpaque())
            guard rc == 0 else {
                job.release()
                throw SystemError(call: "pthread_create", errno: rc)  // returns its errno
            }
            threads.append(thread)
        }
    }

    /// Stops accepting: workers finish the request in hand, then exit. Returns when all did.
    public func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        FCGX_ShutdownPending()
        // Workers parked on a kept-alive connection wake up: its read side is shut (those
        // that park later see `stopping` first).
        parked.withLock { p in
            for slot in p.slots { if let slot { shutdown(slot.fd, Int32(SHUT_RD)) } }
        }
        // Workers waiting in accept are woken by a signal, again until all have finished:
        // one may be about to enter accept when the first reaches it. (Not by shutting the
        // listening socket down: an inherited one is systemd's, and keeps the connections
        // that arrive meanwhile for the next authd.) Workers serving a request finish it.
        while true {
            var running = false
            for (index, thread) in threads.enumerated() where !waits[index].exited.load(ordering: .sequentiallyConsistent) {
                running = true
                if waits[index].inAccept.load(ordering: .sequentiallyConsistent) { pthread_kill(thread, Self.wakeSignal) }
            }
            if !running { break }
            usleep(2_000)
        }
        for thread in threads { pthread_join(thread, nil) }
    }

    private func serve(worker: Worker, index: Int) {
        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        defer { request.deallocate() }
        guard FCGX_InitRequest(request, unservedFD, 0) == 0 else {
            logger.critical("FCGX_InitRequest failed")
            return
        }
        defer {
            if request.pointee.ipcFd >= 0 { close(request.pointee.ipcFd) }
            request.pointee.ipcFd = -1
            FCGX_Free(request, 0)
        }
        // One buffer per thread, reused: the peeked request, then the body read from it.
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.peekBytes, alignment: 16)
        defer { scratch.deallocate() }
        while !stopping.load(ordering: .sequentiallyConsistent) {
            let arrived: ContinuousClock.Instant
            var peeked: Int?
            if request.pointee.ipcFd >= 0 {
                switch park(index, on: request.pointee.ipcFd, into: scratch) {
                case .request(let n):
                    arrived = .now
                    peeked = n
                case .stop: return
                case .closed, .idle, .evicted:
                    hangUp(request)
                    continue
                }
            } else {
                // Accepted here rather than in libfcgi, so that the connection has its
                // timeouts before libfcgi reads anything from it.
                guard let fd = acceptConnection(index) else { return }
                arrived = .now
                request.pointee.ipcFd = fd
            }
            let scan = awaitRequest(on: request.pointee.ipcFd, since: arrived, into: scratch, peeked: peeked)
            var next: UInt16?
            switch scan {
            case .complete(_, let following): next = following
            case .bodyTooLarge: break
            case .unknownRole(let id):
                send(FastCGIFraming.endRequestRecord(requestID: id, protocolStatus: FastCGIFraming.unknownRole), on: request.pointee.ipcFd)
                hangUp(request)
                continue
            case .invalid, .incomplete:
                hangUp(request)
                continue
            }
            // FCGX_Accept_r first finishes the previous request, closing a connection not
            // marked as kept; the BEGIN_REQUEST record then sets the real flag.
            request.pointee.keepConnection = 1
            // The request is queued whole: none of libfcgi's reads waits.
            let rc = FCGX_Accept_r(request)
            if rc < 0 {
                // libfcgi refused what it read, closed the connection, and its own accept
                // met the listener that listens on nothing.
                request.pointee.ipcFd = -1
                continue
            }
            let response = scan == .bodyTooLarge ? APIError.bodyTooLarge.response : respond(request.pointee, worker, scratch)
            write(response, to: request.pointee.out)
            // Keep the connection only for a peer that asked, whose request was read whole
            // and alone: a body left unread or a request sent ahead (nginx does neither)
            // would leave libfcgi out of step with the stream.
            let keep = request.pointee.keepConnection != 0 && next == nil && scan != .bodyTooLarge
                && FCGX_GetError(request.pointee.in) == 0
            request.pointee.keepConnection = 1
            // libfcgi closes a connection whose input failed itself, lingering up to 2 s
            // for the peer's close unless the request is detached.
            if FCGX_GetError(request.pointee.in) != 0 { _ = FCGX_Detach(request) }
            FCGX_Finish_r(request)
            if request.pointee.ipcFd >= 0, !keep {
                if let next, next != 0 {
                    send(FastCGIFraming.endRequestRecord(requestID: next, protocolStatus: FastCGIFraming.cantMultiplex),
                         on: request.pointee.ipcFd)
                }
                hangUp(request)
            }
        }
    }

    /// Room for the largest request accepted: params, a body at the limit, record headers.
    static let peekBytes = FastCGIFraming.maxParamsBytes + maxBody + 4096

    /// Waits until the connection has queued a whole, well-framed request, or until
    /// `ioTimeoutSeconds` after `since`. The bytes stay queued for libfcgi. `peeked`: the
    /// bytes `park` has already peeked into `buffer`.
    private func awaitRequest(on fd: Int32, since: ContinuousClock.Instant, into buffer: UnsafeMutableRawBufferPointer,
                              peeked: Int? = nil) -> FastCGIFraming.Scan {
        let deadline = since + .seconds(Self.ioTimeoutSeconds)
        var pause = 100  // µs between looks at a request still arriving
        // The first look on a new connection waits for the first bytes (at most
        // SO_RCVTIMEO): a connection is often accepted before nginx has written to it, and
        // one blocking peek costs less than a failed one, a poll and another.
        var first = peeked
        var blocking = peeked == nil
        while true {
            let n: Int
            if let already = first {
                n = already
            } else {
                do throws(SystemError) {
                    n = try Self.peek(fd, into: buffer, blocking: blocking) ?? -1
                } catch {
                    return .invalid("\(error)")
                }
            }
            first = nil
            blocking = false
            if n == 0 { return .invalid("closed") }
            let scan = n > 0 ? FastCGIFraming.scan(UnsafeRawBufferPointer(rebasing: buffer[..<n]), maxBody: Self.maxBody) : .incomplete
            guard scan == .incomplete else { return scan }
            if n == buffer.count { return .invalid("request larger than \(buffer.count) bytes") }
            let left = ContinuousClock.now.duration(to: deadline)
            if left <= .zero { return .incomplete }
            // Peeked bytes keep the socket readable, so poll cannot wait for more of them:
            // look again a little later (nginx writes a request at once; this is for the rest).
            if n > 0 {
                if hungUp(fd) { return .invalid("closed mid-request") }
                usleep(UInt32(min(Int64(pause), left.microseconds)))
                pause = min(pause * 2, 20_000)
            } else {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                do throws(SystemError) {
                    try Syscall.retryingEINTR("poll") { poll(&p, 1, Int32(max(1, left.microseconds / 1000))) }
                } catch {
                    return .invalid("\(error)")
                }
            }
        }
    }

    /// True when the peer has shut its side (no more bytes will come).
    private func hungUp(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN) | Self.pollRDHUP, revents: 0)
        return (try? Syscall.retryingEINTR("poll") { poll(&p, 1, 0) }) == 1 && p.revents & (Self.pollRDHUP | Int16(POLLHUP) | Int16(POLLERR)) != 0
    }

    private static let pollRDHUP = authd_pollrdhup()

    /// Closes the worker's connection at once (no lingering close: a peer that is dropped
    /// gets no more of our time).
    private func hangUp(_ request: UnsafeMutablePointer<FCGX_Request>) {
        if request.pointee.ipcFd >= 0 { close(request.pointee.ipcFd) }
        request.pointee.ipcFd = -1
    }

    private func send(_ record: [UInt8], on fd: Int32) {
        // Best effort: the connection is hung up right after.
        _ = try? record.withUnsafeBytes { bytes throws(SystemError) in
            try Syscall.retryingEINTR("send") { Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
        }
    }

    /// The next connection, with its timeouts; nil when stop() came first. Every idle
    /// worker waits here, in accept itself: the kernel hands each connection to one of
    /// them, with no lock, poll or hand-off between workers in user space (nginx opens a
    /// connection for every auth_request subrequest, so this path is per request there).
    private func acceptConnection(_ index: Int) -> Int32? {
        let wait = waits[index]
        while true {
            wait.inAccept.store(true, ordering: .sequentiallyConsistent)
            if stopping.load(ordering: .sequentiallyConsistent) {
                wait.inAccept.store(false, ordering: .sequentiallyConsistent)
                return nil
            }
            let fd = authd_accept_cloexec(listenFD)
            let failure = errno
            wait.inAccept.store(false, ordering: .sequentiallyConsistent)
            guard fd >= 0 else {
                switch failure {
                case EINTR: continue  // stop()'s signal (then `stopping` is set), or another
                case EMFILE, ENFILE, ENOBUFS, ENOMEM: usleep(10_000)  // back off, do not spin
                case ECONNABORTED, EPROTO: break  // the peer gave up: the next one
                default:
                    logger.error("accept failed", metadata: ["cause": "\(SystemError(call: "accept4", errno: failure))"])
                    usleep(10_000)
                }
                continue
            }
            do throws(SystemError) {
                try setUpConnection(fd)
            } catch {
                // Served without its timeouts, a slow peer could hold this worker for good.
                logger.error("connection refused: its timeouts could not be set", metadata: ["cause": "\(error)"])
                close(fd)
                continue
            }
            return fd
        }
    }

    /// Calls `body` with the `sockaddr_un` of `path`; a path longer than it holds is
    /// `call`'s ENAMETOOLONG, before anything is bound or created under a cut name.
    @discardableResult
    static func withUnixAddress<R>(_ path: String, call: String,
                                   _ body: (UnsafePointer<sockaddr>, socklen_t) throws(SystemError) -> R) throws(SystemError) -> R {
        var name = sockaddr_un()
        name.sun_family = sa_family_t(AF_UNIX)
        guard path.utf8.count < MemoryLayout.size(ofValue: name.sun_path) else {
            throw SystemError(call: "\(call)(\(path))", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &name.sun_path) { $0.copyBytes(from: path.utf8) }  // zeroed: NUL-terminated
        return try withUnsafePointer(to: &name) { pointer throws(SystemError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(SystemError) in
                try body(address, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }

    /// The read and write timeouts of an accepted connection (close-on-exec it has from
    /// accept4). The write timeout bounds a peer that does not read its answer; the read
    /// timeout bounds each blocking peek (a new connection's first, a parked one's) and is
    /// a second guard for libfcgi's reads, which never wait (the request is queued whole
    /// first). A unix socket does not inherit them from the listener: two calls each time.
    static func setUpConnection(_ fd: Int32, receiveTimeout: Duration = .seconds(ioTimeoutSeconds)) throws(SystemError) {
        var rcv = timeval(tv_sec: Int(receiveTimeout.components.seconds), tv_usec: Int(receiveTimeout.microseconds % 1_000_000))
        var snd = timeval(tv_sec: ioTimeoutSeconds, tv_usec: 0)
        let size = socklen_t(MemoryLayout<timeval>.size)
        try Syscall.retryingEINTR("setsockopt(SO_RCVTIMEO)") { setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, size) }
        try Syscall.retryingEINTR("setsockopt(SO_SNDTIMEO)") { setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, size) }
    }

    /// The idle timeout cut into equal waits of at most `ioTimeoutSeconds` (75 s: 15 of 5 s;
    /// 2 s: one of 2 s).
    static func receiveTimeout(idleTimeout: Int) -> Duration {
        let idle = Int64(max(1, idleTimeout)) * 1_000_000
        let waits = (idle + Int64(ioTimeoutSeconds) * 1_000_000 - 1) / (Int64(ioTimeoutSeconds) * 1_000_000)
        return .microseconds(idle / waits)
    }

    /// Peeks what the connection has queued into `buffer`: its length, 0 at its end, nil
    /// when nothing is there yet (or, `blocking`, when SO_RCVTIMEO passed first).
    static func peek(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, blocking: Bool) throws(SystemError) -> Int? {
        try Syscall.retryingEINTRUnlessWouldBlock("recv(MSG_PEEK)") {
            recv(fd, buffer.baseAddress, buffer.count, Int32(blocking ? MSG_PEEK : MSG_PEEK | MSG_DONTWAIT))
        }
    }

    enum Wake: Equatable { case request(peeked: Int), closed, idle, evicted, stop }

    /// Parks the worker on its kept connection until nginx's next request (its first bytes
    /// are peeked into `buffer`), nginx's close, the idle timeout, another worker's
    /// eviction or stop(); those two shut the connection's read side, which ends the peek.
    /// At `parkLimit`, the longest-parked other worker is evicted first. One blocking
    /// system call per wait: no poll, no wake-up descriptors.
    private func park(_ index: Int, on fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Wake {
        let stop = parked.withLock { p in
            // Under the lock, so that stop() either sees this slot or is seen here.
            if stopping.load(ordering: .sequentiallyConsistent) { return true }
            if p.count >= parkLimit,
               let oldest = p.slots.indices.filter({ p.slots[$0] != nil }).min(by: { p.slots[$0]!.since < p.slots[$1]!.since }) {
                shutdown(p.slots[oldest]!.fd, Int32(SHUT_RD))
                p.slots[oldest] = nil
                p.evicted[oldest] = true
                p.count -= 1
            }
            p.slots[index] = (.now, fd)
            p.count += 1
            return false
        }
        if stop { return .stop }
        // Each wait ends at SO_RCVTIMEO (`receiveTimeout`); the idle timeout is a whole
        // number of them.
        var waitsLeft = max(1, Int((Duration.seconds(idleTimeout) / receiveTimeout).rounded()))
        var peeked: Int?
        var failed = false
        while true {
            do throws(SystemError) {
                peeked = try Self.peek(fd, into: buffer, blocking: true)
            } catch {
                failed = true  // closed as idle
                break
            }
            if peeked != nil { break }
            waitsLeft -= 1
            if waitsLeft == 0 || stopping.load(ordering: .sequentiallyConsistent) { break }
        }
        let evicted = parked.withLock { p in
            if p.slots[index] != nil {
                p.slots[index] = nil
                p.count -= 1
            }
            defer { p.evicted[index] = false }
            return p.evicted[index]
        }
        if stopping.load(ordering: .sequentiallyConsistent) { return .stop }
        // A request that came with the eviction is served: the slot is taken either way.
        if let peeked, peeked > 0 { return .request(peeked: peeked) }
        if evicted { return .evicted }
        return peeked == 0 && !failed ? .closed : .idle
    }

    private func respond(_ r: FCGX_Request, _ worker: Worker, _ scratch: UnsafeMutableRawBufferPointer) -> Response {
        let p = FastCGIParams(envp: r.envp)
        guard p.declaredContentLength <= Self.maxBody else { return APIError.bodyTooLarge.response }
        // The whole body is queued (`awaitRequest`) and at most maxBody.
        let base = scratch.baseAddress!.assumingMemoryBound(to: CChar.self)
        var count = 0
        while count < Self.maxBody {
            let n = FCGX_GetStr(base + count, Int32(Self.maxBody - count), r.in)
            if n <= 0 { break }
            count += Int(n)
        }
        if FCGX_GetError(r.in) != 0 || count < p.declaredContentLength {
            return APIError(.contentLengthMismatch, "Request body shorter than its Content-Length").response
        }
        if count > p.declaredContentLength {
            return APIError(.contentLengthMismatch, "Request body longer than its Content-Length").response
        }
        let body = Array(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(scratch)[..<count]))
        return service.handle(p.request(body: body), worker: worker)
    }

    private func write(_ response: Response, to stream: UnsafeMutablePointer<FCGX_Stream>?) {
        var out = [UInt8]()
        out.reserveCapacity(160 + response.body.count)
        let crlf: [UInt8] = [0x0D, 0x0A]
        out += "Status: ".utf8
        out += String(response.status).utf8
        out.append(0x20)
        out += Response.reason(response.status).utf8
        out += crlf
        if !response.body.isEmpty {
            out += "Content-Type: ".utf8
            out += UnsafeBufferPointer(start: response.contentType.utf8Start, count: response.contentType.utf8CodeUnitCount)
            out += "\r\nContent-Length: ".utf8
            out += String(response.body.count).utf8
            out += crlf
        }
        for (name, value) in response.headers {
            out += name.utf8
            out += ": ".utf8
            out += value.utf8
            out += crlf
        }
        out += crlf
        out += response.body
        out.withUnsafeBytes { buf in
            _ = FCGX_PutStr(buf.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(buf.count), stream)
        }
    }
}

