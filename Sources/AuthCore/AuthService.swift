import Logging
import Synchronization

/// What one worker thread owns: its store connection.
public struct Worker {
    public let store: any AuthStore
    /// This thread's counters (`AuthService.metrics.newWorker()`, to be scraped).
    public let metrics: WorkerMetrics

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
            response = APIError(405, "Method \(request.method) not allowed on \(request.path)", headers: [("Allow", allow)]).response
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
            if error.status == 429 { worker.metrics.count(.loginsThrottled) }
            return error.response
        } catch is HashingBusy {
            logger.warning("password lane full", metadata: ["path": "\(request.path)", "request_id": "\(request.requestID)"])
            return APIError(503, "Too many password checks in progress, retry shortly", headers: [("Retry-After", "1")]).response
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

    /// The whole routing table: 404 for an unknown path, 405 with `Allow` for a known
    /// path and another method. HEAD is GET without the body (nginx drops the body of a
    /// HEAD response). A switch, not a dictionary: no hashing on the hot path.
    static func route(_ path: String, _ method: String) -> Routing {
        func only(_ allowed: String, _ endpoint: Endpoint) -> Routing {
            method == allowed || (allowed == "GET" && method == "HEAD")
                ? .found(endpoint) : .wrongMethod(allow: allowed == "GET" ? "GET, HEAD" : allowed)
        }
        switch path {
        case "/": return only("GET", .home)
        case "/auth/register": return only("POST", .register)
        case "/auth/login": return only("POST", .login)
        case "/auth/refresh-token": return only("POST", .refreshToken)
        case "/auth/logout": return only("DELETE", .logout)
        case "/auth/logout-all": return only("POST", .logoutAll)
        case "/auth/me": return only("GET", .me)
        case "/healthz": return only("GET", .healthz)
        case "/readyz": return only("GET", .readyz)
        case "/.well-known/jwks.json": return only("GET", .jwks)
        case "/metrics": return only("GET", .metrics)
        case "/auth/sessions": return only("GET", .sessions)
        case "/auth/password": return only("POST", .changePassword)
        case "/auth/account": return only("DELETE", .deleteAccount)
        default:
            // The one route with a parameter: /auth/sessions/{id}, the id not empty.
            guard path.utf8.count > sessionPathPrefix.utf8.count, path.hasPrefix(sessionPathPrefix) else { return .unknownPath }
            return only("DELETE", .endSession)
        }
    }

    static let sessionPathPrefix = "/auth/sessions/"

    private func dispatch(_ endpoint: Endpoint, _ request: Request, _ worker: Worker) throws -> Response {
        switch endpoint {
        case .register: try register(request, worker)
        case .login: try login(request, worker)
        case .refreshToken: try refreshToken(request, worker)
        case .logout: try logout(request, worker)
        case .logoutAll: try logoutAll(request, worker)
        case .me: try me(request, worker)
        case .sessions: try sessions(request, worker)
        case .endSession: try endSession(request, worker)
        case .changePassword: try changePassword(request, worker)
        case .deleteAccount: try deleteAccount(request, worker)
        case .home: try home(request, worker)
        case .healthz: Response.json(200) { $0.field("status", "ok") }
        case .readyz: try readyz(worker)
        case .jwks: Response(status: 200, body: jwksBody)
        case .metrics:
            Response(status: 200, headers: [("Cache-Control", "no-store")],
                     body: Array(metrics.exposition(inFlight: inFlight.load(ordering: .relaxed), workerCount: config.workers).utf8),
                     contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
    }
}

/// What a request is routed to; also the row its metrics are counted in.
enum Endpoint: Int, CaseIterable, Sendable {
    case register, login, refreshToken, logout, logoutAll, me, sessions, endSession, changePassword, deleteAccount
    case home, healthz, readyz, jwks, metrics

    /// The `route` label of its metrics.
    var label: String {
        switch self {
        case .register: "/auth/register"
        case .login: "/auth/login"
        case .refreshToken: "/auth/refresh-token"
        case .logout: "/auth/logout"
        case .logoutAll: "/auth/logout-all"
        case .me: "/auth/me"
        case .sessions: "/auth/sessions"
        case .endSession: "/auth/sessions/{id}"
        case .changePassword: "/auth/password"
        case .deleteAccount: "/auth/account"
        case .home: "/"
        case .healthz: "/healthz"
        case .readyz: "/readyz"
        case .jwks: "/.well-known/jwks.json"
        case .metrics: "/metrics"
        }
    }
}
