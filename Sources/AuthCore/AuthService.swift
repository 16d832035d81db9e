import Logging
import Synchronization

/// What one worker thread owns: its store connection.
public struct Worker {
    public let store: any AuthStore
    /// This thread's counters (`AuthService.metrics.newWorker()`, to be scraped).
    public let metrics: WorkerMetrics
    /// This thread's copy of the service's `revocations`.
    let revoked = RevocationView()

    public init(store: any AuthStore, metrics: WorkerMetrics = WorkerMetrics()) {
        self.store = store
        self.metrics = metrics
    }
}

/// The service: immutable configuration, keys and routes, shared by every worker thread.
/// `handle` turns any request into a response; it never throws and never traps on input.
public final class AuthService: Sendable {
    public let config: Config
    let access: TokenCodec
    let refresh: TokenCodec
    let clock: any Clock
    /// Shared, bounded: a burst of logins waits here, not in every worker.
    let hasher: any PasswordHasher
    let logger: Logger
    /// A hash of a random password at the configured cost: unknown users are checked
    /// against it so that a login takes as long whether or not the user exists.
    let decoyHash: String
    let jwksBody: [UInt8]
    /// Requests inside `handle` right now, across all workers.
    let inFlight = Atomic<Int>(0)
    /// Above this many requests in flight a login or registration is refused (503) rather
    /// than parked on a worker for bcrypt: the rest of the workers stay free for token checks.
    let passwordAdmissionLimit: Int
    /// Every worker's counters, for GET /metrics.
    public let metrics = MetricsRegistry()
    /// Sessions ended lately, whose access tokens are refused without a store read.
    public let revocations = Revocations()
    /// How long after a session ends one of its access tokens may still be presented.
    public var revocationTTL: Int64 { config.accessTTL + config.leeway }

    public init(config: Config, access: KeyRing, refresh: KeyRing, clock: any Clock,
                hasher: any PasswordHasher, decoyHash: String, logger: Logger) {
        self.config = config
        self.access = TokenCodec(kind: .access, keys: access, issuer: config.issuer, leeway: config.leeway)
        self.refresh = TokenCodec(kind: .refresh, keys: refresh, issuer: config.issuer, leeway: config.leeway)
        self.clock = clock
        self.hasher = hasher
        passwordAdmissionLimit = max(1, config.workers - config.workers * 3 / 8)
        self.decoyHash = decoyHash
        self.logger = logger
        jwksBody = Response.json(200) { w in
            w.beginArray("keys")
            for key in access.all {
                guard let jwk = key.publicJWK else { continue }
                w.beginObject()
                for (name, value) in jwk { w.field(name, value) }
                w.endObject()
            }
            w.endArray()
        }.body
    }

    public func handle(_ request: Request, worker: Worker) -> Response {
        let started = ContinuousClock.now
        let response: Response, matched: Endpoint?
        switch Self.route(request.path, request.method) {
        case .found(let endpoint):
            matched = endpoint
            response = answer(endpoint, request, worker)
        case .unknownPath:
            matched = nil
            response = APIError.notFound.response
        case .wrongMethod(let allow):
            matched = nil
            response = APIError(.methodNotAllowed, "Method \(request.method) not allowed on \(request.path)", headers: [("Allow", allow)]).response
        }
        worker.metrics.request(matched, status: response.status, nanoseconds: started.duration(to: .now).nanoseconds)
        return response
    }

    private func answer(_ handler: Endpoint, _ request: Request, _ worker: Worker) -> Response {
        inFlight.add(1, ordering: .relaxed)
        defer { inFlight.subtract(1, ordering: .relaxed) }
        do {
            let response = try dispatch(handler, request, worker)
            if response.status < 300, handler == .register || handler == .login || handler == .refreshToken {
                worker.metrics.count(.tokenPairsIssued)
            }
            return response
        } catch let error as APIError {
            if error.code == .tooManyAttempts { worker.metrics.count(.loginsThrottled) }
            return error.response
        } catch is HashingBusy {
            logger.warning("password lane full", metadata: ["path": "\(request.path)", "request_id": "\(request.requestID)"])
            return APIError(.busy, "Too many password checks in progress, retry shortly", headers: [("Retry-After", "1")]).response
        } catch let error as StoreUnavailable {
            worker.metrics.count(.storeErrors)
            logger.error("store unavailable", metadata: ["path": "\(request.path)", "cause": "\(error)", "request_id": "\(request.requestID)"])
            return APIError.unavailable.response
        } catch {
            logger.error("internal error", metadata: ["path": "\(request.path)", "cause": "\(error)", "request_id": "\(request.requestID)"])
            return APIError.internalError.response
        }
    }

    enum Routing: Equatable {
        case found(Endpoint)
        case unknownPath
        case wrongMethod(allow: String)
    }

    /// 404 for an unknown path, 405 with `Allow` for a known path and another method, from
    /// `Endpoint.route`. HEAD is GET without the body (nginx drops the body of a HEAD response).
    static func route(_ path: String, _ method: String) -> Routing {
        var allow: [String] = []
        for endpoint in Endpoint.allCases where endpoint.matches(path) {
            let allowed = endpoint.route.method
            if method == allowed || allowed == "ANY" || (allowed == "GET" && method == "HEAD") { return .found(endpoint) }
            allow.append(allowed == "GET" ? "GET, HEAD" : allowed)
        }
        return allow.isEmpty ? .unknownPath : .wrongMethod(allow: allow.joined(separator: ", "))
    }

    static let sessionPathPrefix = "/auth/sessions/"

    private func dispatch(_ endpoint: Endpoint, _ request: Request, _ worker: Worker) throws -> Response {
        try endpoint.route.handler(self, request, worker)
    }

    /// GET /metrics in Prometheus text.
    func metricsPage() -> Response {
        Response(status: 200, headers: [("Cache-Control", "no-store")],
                 body: Array(metrics.exposition(inFlight: inFlight.load(ordering: .relaxed), workerCount: config.workers,
                                                      revocations: revocations.count).utf8),
                 contentType: "text/plain; version=0.0.4; charset=utf-8")
    }
}

/// What a request is routed to; also the row its metrics are counted in.
enum Endpoint: Int, CaseIterable, Sendable {
    case home, register, login, refreshToken, logout, logoutAll, me, sessions, endSession, changePassword, deleteAccount
    case verify, healthz, readyz, jwks, metrics

    typealias Handler = (AuthService, Request, Worker) throws -> Response

    /// The route table, one row per endpoint: its method (`ANY`: every method), its path
    /// (also the `route` label of its metrics; `{id}` stands for one non-empty path
    /// segment), its handler.
    /// Routing, `Allow` headers, 404/405 and the metrics all read it.
    var route: (method: String, path: String, handler: Handler) {
        switch self {
        case .home: ("GET", "/", { try $0.home($1, $2) })
        case .register: ("POST", "/auth/register", { try $0.register($1, $2) })
        case .login: ("POST", "/auth/login", { try $0.login($1, $2) })
        case .refreshToken: ("POST", "/auth/refresh-token", { try $0.refreshToken($1, $2) })
        case .logout: ("DELETE", "/auth/logout", { try $0.logout($1, $2) })
        case .logoutAll: ("POST", "/auth/logout-all", { try $0.logoutAll($1, $2) })
        case .me: ("GET", "/auth/me", { try $0.me($1, $2) })
        case .sessions: ("GET", "/auth/sessions", { try $0.sessions($1, $2) })
        case .endSession: ("DELETE", "/auth/sessions/{id}", { try $0.endSession($1, $2) })
        case .changePassword: ("POST", "/auth/password", { try $0.changePassword($1, $2) })
        case .deleteAccount: ("DELETE", "/auth/account", { try $0.deleteAccount($1, $2) })
        case .verify: ("ANY", "/auth/verify", { try $0.verify($1, $2) })
        case .healthz: ("GET", "/healthz", { _, _, _ in Response.json(200) { $0.field("status", "ok") } })
        case .readyz: ("GET", "/readyz", { service, _, worker in try service.readyz(worker) })
        case .jwks: ("GET", "/.well-known/jwks.json", { service, _, _ in Response(status: 200, body: service.jwksBody) })
        case .metrics: ("GET", "/metrics", { service, _, _ in service.metricsPage() })
        }
    }

    /// The `route` label of its metrics.
    var label: String { route.path }

    /// Whether `path` is this endpoint's: equal to it, or for a `{id}` path, the prefix
    /// before it followed by anything not empty (the handler checks the id's shape).
    func matches(_ path: String) -> Bool {
        let template = route.path
        guard template.hasSuffix("/{id}") else { return path == template }
        let prefix = template.dropLast(4)
        return path.utf8.count > prefix.utf8.count && path.hasPrefix(prefix)
    }
}
