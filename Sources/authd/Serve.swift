import AuthCore
import AuthCrypto
import AuthFastCGI
import AuthRedis
import AuthSystem
import Glibc
import Logging

/// Wires the parts together and runs until SIGTERM or SIGINT. Free functions in this file
/// (not closures in main.swift) so that nothing the worker threads call is main-actor bound.
enum Server {
    /// The active key and the retired ones (which only verify) for each kind of token.
    static func keys(_ config: Config) throws -> (access: KeyRing, refresh: KeyRing) {
        func ring(_ secret: [UInt8], _ previous: [[UInt8]], _ kind: TokenKind) throws -> KeyRing {
            let make = { (s: [UInt8]) in try KeyFactory.makeKey(algorithm: config.algorithm, secret: s, for: kind) }
            return KeyRing(signing: try make(secret), alsoVerifying: try previous.map(make))
        }
        return (try ring(config.accessSecret, config.previousAccessSecrets, .access),
                try ring(config.refreshSecret, config.previousRefreshSecrets, .refresh))
    }

    static func run(_ config: Config, logger: Logger) throws {
        // A write to a connection nginx has closed must return EPIPE, not kill the process.
        signal(SIGPIPE, SIG_IGN)

        let (access, refresh) = try keys(config)
        // At most a quarter of the workers are kept from waiting on the lane, so token
        // checks always find a thread during a login storm.
        let lane = try BcryptLane(cost: config.bcryptCost, threads: config.hashConcurrency,
                                  maxQueued: max(1, config.workers - config.workers / 4))
        let decoy = try lane.hash(Secrets.generate())
        let service = AuthService(config: config, access: access, refresh: refresh, clock: SystemClock(),
                                  hasher: lane, decoyHash: decoy, logger: logger)
        let server = try FastCGIServer(listen: config.listen, service: service, workers: config.workers,
                                       idleTimeout: config.fcgiIdleTimeout, logger: logger)
        // After FCGX_Init (in the server's init), whose own SIGTERM/SIGUSR1 handlers would
        // only make accept fail: ours replace them.
        let stopSignal = try StopSignal()
        let redis = config.redis, timeout = config.redisTimeout
        // Registered here, before the threads exist, so that their creation orders the
        // registry's writes before any scrape.
        let metrics = (0..<config.workers).map { _ in service.metrics.newWorker() }
        let debts = RedisDebts()
        let revocationTTL = service.revocationTTL
        // Sessions ended on any instance, before the first request: their access tokens
        // are refused from the start (the feed retries on its own while Redis is down).
        let feed = RevocationFeed(endpoint: redis, timeoutSeconds: timeout, revocations: service.revocations,
                                  clock: SystemClock(), logger: logger)
        try feed.start()
        defer { feed.stop() }
        if !feed.waitUntilCaughtUp(seconds: timeout) {
            logger.warning("revocation feed: Redis did not answer; serving, and catching up once it does")
        }
        try server.start { index in
            Worker(store: RedisStore(endpoint: redis, timeoutSeconds: timeout, revocationTTL: revocationTTL,
                                     metrics: metrics[index], debts: debts),
                   metrics: metrics[index])
        }
        logger.info("authd serving", metadata: [
            "listen": "\(config.listen)", "workers": "\(config.workers)", "alg": "\(config.algorithm.rawValue)",
            "bcrypt_cost": "\(config.bcryptCost)", "access_kid": "\(access.signing.kid)",
        ])

        let received = stopSignal.wait()
        logger.info("shutting down: finishing requests in flight", metadata: ["signal": "\(received)"])
        server.stop()
        logger.info("stopped")
    }
}

/// Waits for SIGTERM, SIGINT or SIGUSR1 (libfcgi's graceful-stop signal). The handler only writes the signal number to a pipe (the
/// async-signal-safe part); the waiting is a plain read. Masking signals and `sigwait`
/// would need every thread of the process, including the runtime's own, to block them
/// first, which an async `main` does not guarantee.
struct StopSignal {
    private let readFD: Int32

    init() throws {
        var fds: [Int32] = [-1, -1]
        try Syscall.retryingEINTR("pipe") { pipe(&fds) }
        for fd in fds { try Syscall.retryingEINTR("fcntl(F_SETFD, FD_CLOEXEC)") { fcntl(fd, F_SETFD, FD_CLOEXEC) } }
        readFD = fds[0]
        stopSignalFD = fds[1]
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signo in
            var byte = UInt8(truncatingIfNeeded: signo)
            _ = write(stopSignalFD, &byte, 1)
        }
        // SA_RESTART: the workers' blocking calls carry on when the signal lands on their thread.
        action.sa_flags = SA_RESTART
        sigemptyset(&action.sa_mask)
        for signo in [SIGTERM, SIGINT, SIGUSR1] {
            try Syscall.retryingEINTR("sigaction(\(signo))") { sigaction(signo, &action, nil) }
        }
    }

    /// Blocks until a stop signal arrives; returns its number. Should the pipe ever fail
    /// (anything but EINTR) or close, no signal could reach us again: that is taken as
    /// SIGTERM, a graceful stop, rather than a loop that spins.
    func wait() -> Int32 {
        var byte: UInt8 = 0
        let n = try? Syscall.retryingEINTR("read(stop signal pipe)") { read(readFD, &byte, 1) }
        return n == 1 ? Int32(byte) : SIGTERM
    }
}

/// Written once before the handlers are installed; read only by the signal handler.
nonisolated(unsafe) private var stopSignalFD: Int32 = -1
