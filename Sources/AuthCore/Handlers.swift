// The endpoints of docs/API.md, one function each, in the order the contract lists them.

extension AuthService {
    /// POST /auth/register: 201 with a token pair, 409 when the name is taken, 422 on bad fields,
    /// 429 when the client's address is over its failed-attempt limit.
    func register(_ request: Request, _ worker: Worker) throws -> Response {
        let (username, password) = try Validation.credentials(request)
        // A 409 tells that the name exists: it is a failed attempt of the client's address,
        // as a failed login is. Checked before the name is looked at, so a throttled address
        // gets the same 429 for a taken and a free name; any other outcome uncounts it.
        let throttle = try LoginThrottle.registration(config, address: request.remoteAddress, store: worker.store)
        let id = UserID(randomID())
        return try throttle.judge(failure: Self.usernameTaken) {
            // The name is reserved before the (slow) hash, so concurrent duplicates get 409 at
            // once, however busy the service is; a reservation left by a crash expires by itself.
            guard try worker.store.reserveUsername(username, for: id, ttl: Self.reservationTTL) else { throw Self.usernameTaken }
            do {
                try admitPasswordWork()
                let user = UserRecord(id: id, username: username, passwordHash: try timed(worker) { try hasher.hash(password) },
                                      createdAt: clock.now())
                guard try worker.store.createUser(user) else { throw Self.usernameTaken }
                let response = try startSession(for: user, request, worker, status: 201)
                logger.info("user registered", metadata: ["user": "\(user.id)", "request_id": "\(request.requestID)"])
                return response
            } catch {
                // A registration that fails leaves nothing (a no-op once the name is not ours): a
                // retry must not find the name taken, nor a user that no token was issued for.
                try? worker.store.releaseUsername(username, for: id)
                throw error
            }
        }
    }

    /// POST /auth/login: 200 with a pair for a new session; 401 with one message for an
    /// unknown user and a wrong password, each costing one bcrypt.
    func login(_ request: Request, _ worker: Worker) throws -> Response {
        let username: String, password: String
        do {
            (username, password) = try Validation.credentials(request)
        } catch {
            throw error.code == .validationFailed ? APIError(.invalidCredentialsFormat, "Invalid username/password") : error
        }
        // Busy first: a login refused for load must not touch the failure counters.
        try admitPasswordWork()
        let throttle = try LoginThrottle(config, username: username, address: request.remoteAddress, store: worker.store)
        return try throttle.judge(failure: Self.badCredentials) {
            let user = try worker.store.user(named: username)
            let hash = user?.passwordHash ?? decoyHash
            let matches = try timed(worker) { try hasher.verify(password, against: hash) }
            guard let user, matches else { throw Self.badCredentials }
            return try startSession(for: user, request, worker, status: 200)
        }
    }

    static let badCredentials = APIError(.invalidCredentials, "Username/password not valid")

    /// POST /auth/refresh-token: trades the session's current refresh token for a new pair.
    /// A superseded token is a replay and ends its session (docs/API.md, Sessions). The
    /// store's side, on Redis: `Scripts.Rotate` in AuthRedis/RedisStore+Refresh.swift.
    func refreshToken(_ request: Request, _ worker: Worker) throws -> Response {
        let claims = try verifiedRefreshToken(request)
        let now = clock.now()
        let next = RefreshTokenState(jti: randomID(), issuedAt: now, expiresAt: now + config.refreshTTL)
        let outcome = try worker.store.rotate(
            claims.session, of: claims.subject, presented: claims.id, next: next,
            ttl: sessionTTL(next, now: now), grace: config.reuseGrace,
            meta: sessionMeta(request), now: now)
        switch outcome {
        case .rotated(let username):
            return try tokenPair(user: claims.subject, username: username, session: claims.session, refresh: next, status: 200)
        case .retry(let current, let username):
            return try tokenPair(user: claims.subject, username: username, session: claims.session, refresh: current, status: 200)
        case .replayed:
            revoked(claims.session)
            worker.metrics.count(.refreshReplays)
            logger.warning("refresh token replayed; session ended",
                           metadata: ["user": "\(claims.subject)", "session": "\(claims.session)", "request_id": "\(request.requestID)"])
            throw APIError(.refreshTokenReused, "Refresh token has already been used; the session has been ended")
        case .unknownSession:
            throw APIError(.refreshTokenRevoked, "Refresh token has been revoked")
        }
    }

    /// DELETE /auth/logout: ends the session of the presented refresh token; idempotent.
    func logout(_ request: Request, _ worker: Worker) throws -> Response {
        let claims = try verifiedRefreshToken(request)
        try worker.store.endSession(claims.session, of: claims.subject)
        revoked(claims.session)
        return .noContent
    }

    /// POST /auth/logout-all: ends every session of the access token's user.
    func logoutAll(_ request: Request, _ worker: Worker) throws -> Response {
        let claims = try authenticate(request, worker)
        try worker.store.endAllSessions(of: claims.subject)
        return .noContent
    }

    /// GET /auth/me: the account of the access token's user.
    func me(_ request: Request, _ worker: Worker) throws -> Response {
        let claims = try authenticate(request, worker)
        guard let user = try worker.store.user(id: claims.subject) else { throw Self.userGone }
        return .json(200) { w in
            w.field("id", user.id.rawValue)
            w.field("username", user.username)
            w.field("createdAt", ISO8601.format(user.createdAt))
        }
    }

    /// GET /: a protected route that needs no store, so it keeps working when Redis is down
    /// (unless ACCESS_TOKEN_SESSION_CHECK is on).
    func home(_ request: Request, _ worker: Worker) throws -> Response {
        let claims = try authenticate(request, worker)
        return .json(200) { w in
            w.field("message", "Hello from a protected route")
            w.field("userId", claims.subject.rawValue)
        }
    }

    /// GET /readyz: 200 when the store answers; 503 (through `handle`) when it does not.
    func readyz(_ worker: Worker) throws -> Response {
        try worker.store.ping()
        return .json(200) { $0.field("status", "ok") }
    }
}

// MARK: - Shared steps

extension AuthService {
    static let usernameTaken = APIError(.usernameTaken, "Username is already registered")

    /// A bcrypt keeps a worker thread waiting; when most workers are already busy, the
    /// login is refused at once (503) instead, so a login storm cannot starve token checks.
    func admitPasswordWork() throws {
        guard inFlight.load(ordering: .relaxed) <= passwordAdmissionLimit else { throw HashingBusy() }
    }
    /// Runs a bcrypt job and counts its time (the wait for the lane included).
    func timed<T>(_ worker: Worker, _ job: () throws -> T) rethrows -> T {
        let started = ContinuousClock.now
        defer { worker.metrics.bcrypt(nanoseconds: started.duration(to: .now).nanoseconds) }
        return try job()
    }

    /// How long a registration may take between reserving the name and storing the user.
    public static let reservationTTL: Int64 = 60

    /// A new session for `user` with a fresh token pair. 401 when the password was changed
    /// (or the account deleted) since `user` was read: a login that checked the old
    /// password must not leave a session behind the change.
    func startSession(for user: UserRecord, _ request: Request, _ worker: Worker, status: Int) throws -> Response {
        let now = clock.now()
        let session = SessionID(randomID())
        let token = RefreshTokenState(jti: randomID(), issuedAt: now, expiresAt: now + config.refreshTTL)
        let started = try worker.store.createSession(session, of: user.id, token: token, ttl: sessionTTL(token, now: now),
                                                     meta: sessionMeta(request), now: now, passwordHash: user.passwordHash,
                                                     cap: config.maxSessionsPerUser)
        switch started {
        case .refused:
            throw Self.badCredentials
        case .started(let evicted) where evicted > 0:
            // A device that finds itself logged out is a support question: say why.
            worker.metrics.count(.sessionsEvicted, evicted)
            logger.info("least recently used sessions ended by the session cap", metadata: [
                "user": "\(user.id)", "ended": "\(evicted)", "cap": "\(config.maxSessionsPerUser)", "request_id": "\(request.requestID)",
            ])
        case .started:
            break
        }
        return try tokenPair(user: user.id, username: user.username, session: session, refresh: token, status: status)
    }

    /// What a session keeps of its client. The User-Agent is cut to at most 256 bytes,
    /// between two Unicode scalars: it is shown back in session lists, not kept as evidence.
    func sessionMeta(_ request: Request) -> SessionMeta {
        var agent = request.userAgent
        if agent.utf8.count > Self.userAgentBytes {
            var bytes = 0
            let scalars = agent.unicodeScalars
            let end = scalars.firstIndex { bytes += UTF8.width($0); return bytes > Self.userAgentBytes } ?? scalars.endIndex
            agent = String(scalars[..<end])
        }
        return SessionMeta(userAgent: agent, address: request.remoteAddress)
    }

    static let userAgentBytes = 256

    /// How long the session lives in the store: the token's remaining life, or the idle
    /// limit when that is shorter.
    func sessionTTL(_ token: RefreshTokenState, now: Int64) -> Int64 {
        let remaining = max(1, token.expiresAt - now)
        return config.idleTTL > 0 ? min(remaining, config.idleTTL) : remaining
    }

    /// `{"accessToken","refreshToken"}` with `Cache-Control: no-store`. The refresh token is
    /// rebuilt from its stored state, so a retry re-issues the same bytes.
    func tokenPair(user: UserID, username: String, session: SessionID, refresh token: RefreshTokenState, status: Int) throws -> Response {
        let now = clock.now()
        let accessToken = try access.sign(Claims(
            issuer: config.issuer, subject: user, audience: user.rawValue, issuedAt: now,
            expiresAt: now + config.accessTTL, id: randomID(), session: session, username: username))
        let refreshToken = try refresh.sign(Claims(
            issuer: config.issuer, subject: user, audience: user.rawValue, issuedAt: token.issuedAt,
            expiresAt: token.expiresAt, id: token.jti, session: session))
        return .json(status, headers: [("Cache-Control", "no-store"), ("Pragma", "no-cache")]) { w in
            w.field("accessToken", accessToken)
            w.field("refreshToken", refreshToken)
        }
    }

    /// The claims of the body's `refreshToken`: 400 when absent or not a string, 403 when
    /// it does not verify as a refresh token.
    func verifiedRefreshToken(_ request: Request) throws -> Claims {
        let body = try Validation.jsonObject(request)
        let token = try Validation.string(body, "refreshToken")
        do {
            return try refresh.verify(token, now: clock.now())
        } catch .expired {
            throw APIError(.refreshTokenExpired, "Refresh token expired")
        } catch {
            throw APIError(.refreshTokenInvalid, "Invalid refresh token")
        }
    }

    /// The claims of a valid `Authorization: Bearer` access token whose session has not
    /// ended (`revocations`; with ACCESS_TOKEN_SESSION_CHECK on, also asked of the store);
    /// 401 otherwise.
    func authenticate(_ request: Request, _ worker: Worker) throws -> Claims {
        let claims = try verifiedAccessToken(request)
        try checkSession(claims, worker, askStore: config.accessTokenSessionCheck)
        return claims
    }

    static let sessionEnded = unauthorized(.sessionEnded, description: "The session has ended")

    /// 401 when the token's session is known to have ended: from `revocations` (no store
    /// read), and when `askStore`, from the store itself.
    func checkSession(_ claims: Claims, _ worker: Worker, askStore: Bool) throws {
        if worker.revoked.isRevoked(claims.session, now: clock.now(), in: revocations) { throw Self.sessionEnded }
        if askStore, try !worker.store.sessionExists(claims.session, of: claims.subject) { throw Self.sessionEnded }
    }

    /// Records a session this instance ended, at once (the feed brings it to the others).
    func revoked(_ session: SessionID) {
        revocations.revoke(session, until: clock.now() + revocationTTL)
    }

    /// The claims of a valid `Authorization: Bearer` access token, or 401 with RFC 6750's
    /// `WWW-Authenticate`.
    func verifiedAccessToken(_ request: Request) throws(APIError) -> Claims {
        guard let header = request.authorization, let token = Self.bearerToken(header) else {
            throw APIError(.tokenMissing, "Unauthorized", headers: [("WWW-Authenticate", "Bearer")])
        }
        do {
            return try access.verify(token, now: clock.now())
        } catch .expired {
            throw APIError(.tokenExpired, "jwt expired", headers: [
                ("WWW-Authenticate", #"Bearer error="invalid_token", error_description="The access token expired""#),
            ])
        } catch {
            throw Self.unauthorized(.tokenInvalid, description: "The access token is invalid")
        }
    }

    static let userGone = unauthorized(.userGone, description: "The user no longer exists")

    static func unauthorized(_ code: ErrorCode, description: String) -> APIError {
        APIError(code, "Unauthorized", headers: [
            ("WWW-Authenticate", #"Bearer error="invalid_token", error_description="\#(description)""#),
        ])
    }

    /// The credentials of `Bearer <token>`, scheme matched case-insensitively; nil for
    /// another scheme or an empty token. A slice of the header: nothing is copied.
    static func bearerToken(_ header: String) -> Substring? {
        let utf8 = header.utf8
        guard utf8.count > 7 else { return nil }
        let scheme = utf8.prefix(6).lazy.map { $0 | 0x20 }
        guard scheme.elementsEqual("bearer".utf8), utf8.dropFirst(6).first == UInt8(ascii: " ") else { return nil }
        let isSpace = { (b: UInt8) in b == 0x20 || b == 0x09 }
        let rest = utf8.dropFirst(7)
        guard let first = rest.firstIndex(where: { !isSpace($0) }), let last = rest.lastIndex(where: { !isSpace($0) }) else {
            return nil
        }
        return header[first...last]
    }
}

/// 128 random bits from the system CSPRNG (getrandom on Linux), base64url: 22 characters.
func randomID() -> String {
    var rng = SystemRandomNumberGenerator()
    let a = rng.next() as UInt64, b = rng.next() as UInt64
    let bytes = withUnsafeBytes(of: (a, b)) { Array($0) }
    return Base64URL.encode(bytes)
}
