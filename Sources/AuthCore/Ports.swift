// The small protocols the handlers need. C-backed implementations live in AuthCrypto
// (signing, bcrypt) and AuthRedis (users, sessions); AuthCore itself imports no C.

/// A JWS algorithm this service can sign with. The key fixes the algorithm: a token whose
/// header names another one is rejected before anything else is looked at.
public enum JWTAlgorithm: String, Sendable, CaseIterable {
    case hs256 = "HS256"
    case edDSA = "EdDSA"
}

/// One signing/verification key. Implementations are immutable and safe to share
/// between worker threads.
public protocol SigningKey: Sendable {
    var algorithm: JWTAlgorithm { get }
    /// The `kid` header value of tokens signed with this key.
    var kid: String { get }
    /// The public JWK (RFC 7517) members for the JWKS document, or nil for a symmetric key.
    var publicJWK: [(String, String)]? { get }
    /// Signs the JWS signing input (`base64url(header) "." base64url(payload)`).
    func sign(_ input: UnsafeRawBufferPointer) throws -> [UInt8]
    /// Checks a signature in constant time (with respect to the signature bytes).
    func verify(_ signature: [UInt8], for input: UnsafeRawBufferPointer) -> Bool
}

/// Hashes and checks passwords for every worker. Implementations bound how many run at
/// once and how many may wait, throwing `HashingBusy` rather than queueing without limit.
public protocol PasswordHasher: Sendable {
    /// A fresh salted hash, e.g. `$2b$12$...`.
    func hash(_ password: String) throws -> String
    /// True when `password` matches `hash`; false for any malformed hash.
    func verify(_ password: String, against hash: String) throws -> Bool
}

/// The password lane is full or its queue too slow: the client should retry shortly.
public struct HashingBusy: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "password hashing lane is full" }
}

/// A user id: random, URL-safe, stable for the life of the account.
public struct UserID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
}

/// A session id: one per login/registration (one per device).
public struct SessionID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
}

/// A stored user.
public struct UserRecord: Equatable, Sendable {
    public var id: UserID
    public var username: String
    public var passwordHash: String
    /// Unix seconds.
    public var createdAt: Int64

    public init(id: UserID, username: String, passwordHash: String, createdAt: Int64) {
        self.id = id
        self.username = username
        self.passwordHash = passwordHash
        self.createdAt = createdAt
    }
}

/// What a session remembers of its current refresh token: enough to recognise it and to
/// re-issue it byte for byte (signatures are deterministic for HS256 and Ed25519).
public struct RefreshTokenState: Equatable, Sendable {
    public var jti: String
    public var issuedAt: Int64
    public var expiresAt: Int64

    public init(jti: String, issuedAt: Int64, expiresAt: Int64) {
        self.jti = jti
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }
}

/// Client details kept with a session.
public struct SessionMeta: Equatable, Sendable {
    public var userAgent: String
    public var address: String

    public init(userAgent: String = "", address: String = "") {
        self.userAgent = userAgent
        self.address = address
    }
}

/// A live session as `GET /auth/sessions` lists it.
public struct SessionInfo: Equatable, Sendable {
    public var id: SessionID
    /// Unix seconds: the login or registration that started it.
    public var createdAt: Int64
    /// Unix seconds: its latest login or refresh.
    public var lastUsedAt: Int64
    public var meta: SessionMeta

    public init(id: SessionID, createdAt: Int64, lastUsedAt: Int64, meta: SessionMeta) {
        self.id = id
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.meta = meta
    }
}

/// A place in the session list's order: most recently used first (`lastUsedAt`
/// descending), then the newest (`createdAt` descending), then by ascending `id` (its
/// UTF-8 bytes). `<` means "listed before".
public struct SessionPosition: Comparable, Hashable, Sendable {
    /// Unix seconds.
    public var lastUsedAt: Int64
    /// Unix seconds.
    public var createdAt: Int64
    public var id: SessionID

    public init(lastUsedAt: Int64, createdAt: Int64, id: SessionID) {
        self.lastUsedAt = lastUsedAt
        self.createdAt = createdAt
        self.id = id
    }

    public static func < (a: SessionPosition, b: SessionPosition) -> Bool {
        if a.lastUsedAt != b.lastUsedAt { return a.lastUsedAt > b.lastUsedAt }
        if a.createdAt != b.createdAt { return a.createdAt > b.createdAt }
        return a.id.rawValue.utf8.lexicographicallyPrecedes(b.id.rawValue.utf8)
    }
}

extension SessionInfo {
    /// Where the session stands in the list.
    public var position: SessionPosition { SessionPosition(lastUsedAt: lastUsedAt, createdAt: createdAt, id: id) }
}

/// One page of a user's session list.
public struct SessionPage: Equatable, Sendable {
    /// Live sessions in the list's order.
    public var sessions: [SessionInfo]
    /// Where the next page starts (just after this position); nil when none follows.
    public var next: SessionPosition?

    public init(sessions: [SessionInfo], next: SessionPosition?) {
        self.sessions = sessions
        self.next = next
    }
}

/// What `createSession` did.
public enum SessionStart: Equatable, Sendable {
    /// Nothing was written: the user's stored hash is no longer the one checked (the
    /// password changed or the account is gone).
    case refused
    /// The session started; to stay within the cap, this many of the user's least
    /// recently used sessions were ended.
    case started(evicted: Int)
}

/// The result of presenting a refresh token for rotation. The two that answer with tokens
/// carry the user's name, read in the same step, for the new access token.
public enum RotationOutcome: Equatable, Sendable {
    /// The token was the session's current one and has been replaced.
    case rotated(username: String)
    /// The token is the immediate parent of the current one, presented again within the
    /// retry grace window: answer with the current token (re-issued).
    case retry(current: RefreshTokenState, username: String)
    /// A superseded token was presented: the session has been ended.
    case replayed
    /// The session does not exist (logged out, expired, or ended by a replay).
    case unknownSession
}

/// What failed logins are counted against (brute-force throttling).
public enum ThrottleKey: Hashable, Sendable {
    case username(String)
    /// A client address; an IPv6 address stands for its /64 network (see `LoginThrottle`).
    case address(String)
}

/// The store is unreachable or answered nonsense. Routes that need it answer 503.
public struct StoreUnavailable: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Users and sessions. One instance per worker thread (it owns a connection), so it
/// need not be Sendable. Every method throws `StoreUnavailable` when the store cannot
/// be reached.
public protocol AuthStore {
    /// Reserves `username` for the new user `id` for `ttl` seconds. Atomic: of N
    /// concurrent reservations of one name exactly one succeeds. False when taken (by a
    /// user that exists or a registration in progress).
    func reserveUsername(_ username: String, for id: UserID, ttl: Int64) throws -> Bool
    /// Stores the user and makes its reservation permanent. False when the reservation
    /// was lost meanwhile (it expired and another user took the name).
    func createUser(_ user: UserRecord) throws -> Bool
    /// Undoes a registration that failed at any step, even after `createUser`: the user `id`
    /// (no token of it was issued) and the name while `id` still holds it.
    func releaseUsername(_ username: String, for id: UserID) throws
    func user(named username: String) throws -> UserRecord?
    func user(id: UserID) throws -> UserRecord?

    /// Starts a session whose current refresh token is `token`; the session expires
    /// after `ttl` seconds unless rotated. Atomic with password changes and account
    /// deletion: `.refused` (and no session) when the user's stored hash is no longer
    /// `passwordHash`, the one the caller just checked or set. The user keeps at most
    /// `cap` sessions: beyond it the least recently used ones (the last in the list's
    /// order, never the new one) end in the same step. Costs O(log n) in the user's
    /// sessions, plus the sessions it ends.
    func createSession(_ session: SessionID, of user: UserID, token: RefreshTokenState, ttl: Int64,
                       meta: SessionMeta, now: Int64, passwordHash: String, cap: Int) throws -> SessionStart
    /// Atomic compare-and-swap of the session's current token. `ttl` is the new
    /// session lifetime; `grace` the retry window in seconds (0 = off).
    func rotate(_ session: SessionID, of user: UserID, presented jti: String,
                next: RefreshTokenState, ttl: Int64, grace: Int64,
                meta: SessionMeta, now: Int64) throws -> RotationOutcome
    /// Ends one session of `user`; false when it did not exist (or belongs to another user).
    @discardableResult
    func endSession(_ session: SessionID, of user: UserID) throws -> Bool
    func endAllSessions(of user: UserID) throws
    /// Up to `limit` of the user's live sessions, in the list's order (`SessionPosition`),
    /// starting just after `after` (from the first when nil). `next` is set when more may
    /// follow: the page can hold fewer than `limit` sessions and still not be the last
    /// (the store may stop early on ended sessions, so that a call stays O(log n + limit)).
    func sessions(of user: UserID, after: SessionPosition?, limit: Int) throws -> SessionPage
    /// One read: whether the session is still live.
    func sessionExists(_ session: SessionID, of user: UserID) throws -> Bool
    /// Atomically: replaces the password hash `old` by `new` and ends every session of the
    /// user except `kept` (O(n) in the user's sessions, n at most the cap). False (nothing
    /// changed) when the stored hash is no longer `old`.
    func changePassword(of user: UserID, from old: String, to new: String, keeping kept: SessionID) throws -> Bool
    /// Deletes the user and all its sessions (atomically, when its hash is still the one the
    /// caller checked; false otherwise, nothing deleted), then frees its username.
    func deleteUser(_ user: UserRecord) throws -> Bool
    /// Counts one password attempt against `key`. The first attempt opens a window of
    /// `window` seconds; once `limit` attempts are counted in it, further ones are refused
    /// (not counted) and the answer is the seconds until the window closes. Nil: admitted.
    func takeAttempt(_ key: ThrottleKey, limit: Int, window: Int64) throws -> Int64?
    /// Uncounts one attempt that turned out not to be a failure.
    func returnAttempt(_ key: ThrottleKey) throws
    /// Forgets the window (a successful login resets its username's count).
    func clearAttempts(_ key: ThrottleKey) throws

    /// Round trip to the store, for readiness checks.
    func ping() throws
}

/// Wall-clock time in Unix seconds; injected so that tests control expiry.
public protocol Clock: Sendable {
    func now() -> Int64
}
