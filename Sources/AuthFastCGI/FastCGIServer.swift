internal import CFastCGI
import Glibc
public import AuthCore
import Logging
import Synchronization

/// The FastCGI params authd reads, picked out in one pass over `envp` (each
/// `FCGX_GetParam` would scan all of nginx's params again). The first of a repeated
/// name wins, as with `FCGX_GetParam`. Public so that the fuzzer (Fuzz/) converts
/// params exactly as the server does.
public struct FastCGIParams {
    var method, documentURI, requestURI, queryString, contentLength, contentType: String?
    var authorization, userAgent, remoteAddress, requestID: String?

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
            contentType: contentType, authorization: authorization, userAgent: userAgent ?? "",
            remoteAddress: remoteAddress ?? "", requestID: requestID ?? "", body: body)
    }
}

/// A worker thread's entry point, boxed to cross `pthread_create`'s `void *`.
private final class WorkerJob {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// A failure of the FastCGI edge, with the call that failed and errno.
public struct FastCGIError: Error, CustomStringConvertible {
    public let call: String
    public let code: Int32
    public var description: String { "\(call) failed: \(String(cString: strerror(code))) (errno \(code))" }
}

/// The libfcgi responder: `workers` OS threads, each blocking in `FCGX_Accept_r` with its
/// own `FCGX_Request` and its own `Worker` (its store connection). The blocking C calls
/// stay off Swift's cooperative pool.
public final class FastCGIServer: @unchecked Sendable {
    /// Bodies above this are refused with 413 (API.md; nginx enforces it too).
    public static let maxBody = 16 * 1024
    /// Read and write timeout of every FastCGI connection. nginx sends a request whole
    /// (it buffers the body first) and reads the answer at once, so a peer that stalls
    /// this long in the middle of a request is broken or hostile. Without it, one such
    /// connection holds a worker forever, and SIGTERM waits for that worker forever.
    public static let ioTimeoutSeconds = 5

    private let listenFD: Int32
    private let service: AuthService
    private let logger: Logger
    private var threads: [pthread_t] = []
    private let workerCount: Int
    /// Set once by `stop()`; workers look at it before every wait for a request.
    private let stopping = Atomic<Bool>(false)
    /// Readable once `stop()` has run (a byte is written and never read), so that every
    /// worker waiting on a kept-alive connection wakes up.
    private let stopPipe: (read: Int32, write: Int32)
    /// One worker at a time waits for a connection, so that a new one wakes one thread.
    private let acceptLock = Mutex<Void>(())

    /// Opens (or adopts) the listening socket.
    public init(listen: ListenAddress, service: AuthService, workers: Int, logger: Logger) throws {
        FCGX_Init()
        switch listen {
        case .inherited:
            listenFD = 0
        case .unix(let path):
            unlink(path)  // a socket file left by a killed predecessor would make bind fail
            let fd = FCGX_OpenSocket(path, 1024)
            guard fd >= 0 else { throw FastCGIError(call: "FCGX_OpenSocket(\(path))", code: errno) }
            // nginx's workers connect as another user of the same group.
            chmod(path, 0o660)
            listenFD = fd
        case .tcp(let host, let port):
            let fd = FCGX_OpenSocket("\(host):\(port)", 1024)
            guard fd >= 0 else { throw FastCGIError(call: "FCGX_OpenSocket(\(host):\(port))", code: errno) }
            listenFD = fd
        }
        // Workers accept connections themselves (acceptConnection). Non-blocking, so that
        // libfcgi's own accept, which it falls back to after a connection fails, returns
        // EAGAIN at once instead of handing over a connection without timeouts.
        _ = fcntl(listenFD, F_SETFL, fcntl(listenFD, F_GETFL) | O_NONBLOCK)
        self.service = service
        self.workerCount = workers
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw FastCGIError(call: "pipe", code: errno) }
        stopPipe = (fds[0], fds[1])
        self.logger = logger
    }

    /// Starts the worker threads. `makeWorker(i)` runs once on thread i (0..<workers).
    public func start(makeWorker: @escaping @Sendable (Int) -> Worker) throws {
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
            let job = Unmanaged.passRetained(WorkerJob { [self] in serve(worker: makeWorker(index)) })
            var thread = pthread_t()
            let rc = pthread_create(&thread, &attributes, { raw in
                let job = Unmanaged<WorkerJob>.fromOpaque(raw!).takeRetainedValue()
                job.body()
                return nil
            }, job.toOpaque())
            guard rc == 0 else {
                job.release()
                throw FastCGIError(call: "pthread_create", code: rc)
            }
            threads.append(thread)
        }
    }

    /// Stops accepting: workers finish the request in hand, then exit. Returns when all did.
    public func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        FCGX_ShutdownPending()
        // Workers waiting for a connection, or on a kept-alive one for nginx's next
        // request, wake up.
        var byte: UInt8 = 1
        _ = Glibc.write(stopPipe.write, &byte, 1)
        for thread in threads { pthread_join(thread, nil) }
    }

    private func serve(worker: Worker) {
        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        defer { request.deallocate() }
        guard FCGX_InitRequest(request, listenFD, 0) == 0 else {
            logger.critical("FCGX_InitRequest failed")
            return
        }
        defer { FCGX_Free(request, 1) }
        // One body buffer per thread, reused: requests copy out only the bytes they got.
        let scratch = UnsafeMutableBufferPointer<CChar>.allocate(capacity: Self.maxBody + 1)
        defer { scratch.deallocate() }
        while true {
            if stopping.load(ordering: .sequentiallyConsistent) { return }
            // With fastcgi_keep_conn, FCGX_Accept_r would block reading nginx's next request
            // on the same connection, where stop() cannot reach it: wait for that request
            // or for stop(), whichever comes first. (A closed connection also reads as
            // ready: libfcgi then closes it, and its own accept() returns EAGAIN.)
            if request.pointee.ipcFd >= 0 {
                if !waitForNextRequest(on: request.pointee.ipcFd) { return }
            } else {
                // Accepted here rather than in libfcgi, so that the connection has its
                // timeouts before libfcgi reads the request's params from it.
                guard let fd = acceptConnection() else { return }
                request.pointee.ipcFd = fd
                // FCGX_Accept_r first finishes the previous request, closing a connection
                // not marked as kept; the BEGIN_REQUEST record then sets the real flag.
                request.pointee.keepConnection = 1
            }
            let rc = FCGX_Accept_r(request)
            if rc < 0 {
                if stopping.load(ordering: .acquiring) { return }
                // The connection failed (EOF, garbage, a timeout) and libfcgi closed it; its
                // own accept then met the non-blocking listener. Back to ours.
                if rc == -EAGAIN || rc == -EWOULDBLOCK { continue }
                logger.error("FCGX_Accept_r failed", metadata: ["rc": "\(rc)"])
                usleep(10_000)  // e.g. EMFILE: back off instead of spinning
                continue
            }
            let response = respond(request.pointee, worker, scratch)
            write(response, to: request.pointee.out)
            // The request's input failed (a timeout or EOF): close without libfcgi's
            // lingering close, which reads until the peer has been quiet for 2 s.
            if FCGX_GetError(request.pointee.in) != 0 { _ = FCGX_Detach(request) }
            FCGX_Finish_r(request)
        }
    }

    /// The next connection, with its read and write timeouts; nil when stop() came first.
    private func acceptConnection() -> Int32? {
        acceptLock.withLock { _ -> Int32? in
            while true {
                var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: stopPipe.read, events: Int16(POLLIN), revents: 0)]
                while poll(&fds, 2, -1) < 0, errno == EINTR {}
                if fds[1].revents != 0 { return nil }
                let fd = accept(listenFD, nil, nil)  // accept4 is not imported (_GNU_SOURCE)
                if fd < 0 {
                    if errno == EMFILE || errno == ENFILE { usleep(10_000) }  // back off, do not spin
                    continue  // EAGAIN (the peer gave up), ECONNABORTED, EINTR
                }
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                var tv = timeval(tv_sec: Self.ioTimeoutSeconds, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                return fd
            }
        }
    }

    /// False when stop() came first.
    private func waitForNextRequest(on fd: Int32) -> Bool {
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: stopPipe.read, events: Int16(POLLIN), revents: 0)]
        while poll(&fds, 2, -1) < 0, errno == EINTR {}
        return fds[1].revents == 0
    }

    private func respond(_ r: FCGX_Request, _ worker: Worker, _ scratch: UnsafeMutableBufferPointer<CChar>) -> Response {
        let p = FastCGIParams(envp: r.envp)
        // The params already ended in an error (the peer stalled or hung up): reading
        // stdin would only wait for the timeout again.
        if FCGX_GetError(r.in) != 0 { return APIError(400, "Incomplete FastCGI request").response }
        guard p.declaredContentLength <= Self.maxBody else {
            drain(r.in)
            return APIError.bodyTooLarge.response
        }
        var count = 0
        while count < scratch.count {
            let n = FCGX_GetStr(scratch.baseAddress! + count, Int32(scratch.count - count), r.in)
            if n <= 0 { break }
            count += Int(n)
        }
        guard count <= Self.maxBody else {
            drain(r.in)
            return APIError.bodyTooLarge.response
        }
        // stdin ended before CONTENT_LENGTH bytes: the peer hung up or stalled past the timeout.
        if FCGX_GetError(r.in) != 0 || count < p.declaredContentLength {
            return APIError(400, "Request body shorter than its Content-Length").response
        }
        let body = Array(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(scratch)[..<count]))
        return service.handle(p.request(body: body), worker: worker)
    }

    /// Reads and discards the rest of stdin (bounded), so that a kept-alive connection
    /// stays in step with the protocol.
    private func drain(_ stream: UnsafeMutablePointer<FCGX_Stream>?) {
        var scratch = [CChar](repeating: 0, count: 4096)
        var total = 0
        while total < 1 << 20 {
            let n = FCGX_GetStr(&scratch, Int32(scratch.count), stream)
            if n <= 0 { return }
            total += Int(n)
        }
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

