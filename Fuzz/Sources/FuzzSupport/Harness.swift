public import AuthCore
import AuthCrypto
import Logging

/// The fixed world of every fuzz target: keys from fixed secrets and a clock that never
/// moves, so that the seed tokens in Fuzz/Corpus stay valid.
public enum Harness {
    public static let now: Int64 = 1_800_000_000
    public static let issuer = "authd-fuzz"
    static let accessSecret = "fuzz-access-secret-0123456789abcdef"
    static let previousAccessSecret = "fuzz-access-previous-0123456789abcd"
    static let refreshSecret = "fuzz-refresh-secret-0123456789abcde"
    static let edSecret = "fuzz-eddsa-secret-0123456789abcdefg"

    static func key(_ algorithm: JWTAlgorithm, _ secret: String, _ kind: TokenKind) -> any SigningKey {
        try! KeyFactory.makeKey(algorithm: algorithm, secret: Array(secret.utf8), for: kind)
    }

    /// HS256 access keys: one signs, a retired one still verifies.
    public static let accessKeys = KeyRing(
        signing: key(.hs256, accessSecret, .access), alsoVerifying: [key(.hs256, previousAccessSecret, .access)])
    public static let refreshKeys = KeyRing(signing: key(.hs256, refreshSecret, .refresh))
    public static let edDSAKeys = KeyRing(signing: key(.edDSA, edSecret, .access))

    public static let access = TokenCodec(kind: .access, keys: accessKeys, issuer: issuer, leeway: 0)
    public static let refresh = TokenCodec(kind: .refresh, keys: refreshKeys, issuer: issuer, leeway: 0)
    public static let edDSAAccess = TokenCodec(kind: .access, keys: edDSAKeys, issuer: issuer, leeway: 0)

    /// The service as authd wires it (HS256, same keys), with a store that is always down
    /// and a hasher that does no work.
    public static let service: AuthService = {
        let config = try! Config(env: [
            "ACCESS_TOKEN_SECRET": accessSecret, "REFRESH_TOKEN_SECRET": refreshSecret,
            "ACCESS_TOKEN_PREVIOUS_SECRETS": previousAccessSecret, "JWT_ISSUER": issuer, "WORKERS": "4",
        ])
        return AuthService(config: config, access: accessKeys, refresh: refreshKeys, clock: FixedClock(),
                           hasher: PlainHasher(), decoyHash: "plain:", logger: Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() })
    }()
}

/// Stops the fuzzer with a message: libFuzzer saves the input as a crash artifact.
public func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant violated: \(message())") }
}

struct FixedClock: Clock {
    func now() -> Int64 { Harness.now }
}

struct PlainHasher: PasswordHasher {
    func hash(_ password: String) throws -> String { "plain:" + password }
    func verify(_ password: String, against hash: String) throws -> Bool { hash == "plain:" + password }
}

/// Redis is down: every call throws, as RedisStore does when it cannot connect.
public struct DownStore: AuthStore {
    public init() {}
    private func down() -> StoreUnavailable { StoreUnavailable("down (fuzz stub)") }
    public func reserveUsername(_ username: String, for id: UserID, ttl: Int64) throws -> Bool { throw down() }
    public func createUser(_ user: UserRecord) throws -> Bool { throw down() }
    public func releaseUsername(_ username: String, for id: UserID) throws { throw down() }
    public func user(named username: String) throws -> UserRecord? { throw down() }
    public func user(id: UserID) throws -> UserRecord? { throw down() }
    public func createSession(_ session: SessionID, of user: UserID, token: RefreshTokenState, ttl: Int64,
                              meta: SessionMeta, now: Int64, passwordHash: String, cap: Int) throws -> SessionStart { throw down() }
    public func rotate(_ session: SessionID, of user: UserID, presented jti: String, next: RefreshTokenState,
                       ttl: Int64, grace: Int64, meta: SessionMeta, now: Int64) throws -> RotationOutcome { throw down() }
    public func endSession(_ session: SessionID, of user: UserID) throws -> Bool { throw down() }
    public func endAllSessions(of user: UserID) throws { throw down() }
    public func sessions(of user: UserID, after: SessionPosition?, limit: Int) throws -> SessionPage { throw down() }
    public func sessionExists(_ session: SessionID, of user: UserID) throws -> Bool { throw down() }
    public func changePassword(of user: UserID, from old: String, to new: String, keeping kept: SessionID) throws -> Bool { throw down() }
    public func deleteUser(_ user: UserRecord) throws -> Bool { throw down() }
    public func takeAttempt(_ key: ThrottleKey, limit: Int, window: Int64) throws -> Int64? { throw down() }
    public func returnAttempt(_ key: ThrottleKey) throws { throw down() }
    public func clearAttempts(_ key: ThrottleKey) throws { throw down() }
    public func ping() throws { throw down() }
}
