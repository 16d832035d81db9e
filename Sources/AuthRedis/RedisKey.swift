import AuthCore

/// A Redis key name. Every key of one user carries the hash tag `{<user id>}`, so a user's
/// keys share one Redis Cluster slot and one script may touch them together; the username
/// index and the attempt counters are keyed by name or address (slots of their own).
struct RedisKey: Hashable, Sendable, CustomStringConvertible {
    let rawValue: String
    private init(_ rawValue: String) { self.rawValue = rawValue }
    var description: String { rawValue }

    static let prefix = "auth:"

    /// The username index: the user id a name belongs to (with a TTL while only reserved).
    static func username(_ name: String) -> RedisKey { RedisKey("\(prefix)username:{\(name)}") }
    /// A user's hash: username, hash, createdAt, and `pending` until its registration completes.
    static func user(_ id: UserID) -> RedisKey { RedisKey("\(prefix)user:{\(id.rawValue)}") }
    /// A user's session index, a sorted set (`SessionIndex`).
    static func sessions(_ id: UserID) -> RedisKey { RedisKey("\(prefix)sessions:{\(id.rawValue)}") }
    /// One session's hash: the current refresh token (jti, iat, exp), the one it replaced, times, agent, address.
    static func session(_ sid: SessionID, of id: UserID) -> RedisKey { RedisKey(sessionPrefix(id) + sid.rawValue) }
    /// The log of ended sessions, a sorted set of session ids scored by the moment until
    /// which an access token of theirs may still be presented; also the pub/sub channel
    /// on which each is announced (`RevocationFeed`).
    static let revocations = RedisKey("\(prefix)revocations")
    /// A failed-attempt counter of the login throttle.
    static func attempts(_ key: ThrottleKey) -> RedisKey {
        switch key {
        case .username(let name): RedisKey("\(prefix)attempts:user:{\(name)}")
        case .address(let address): RedisKey("\(prefix)attempts:addr:{\(address)}")
        }
    }

    /// What a user's session keys begin with: the scripts that walk a session index build
    /// the session keys from it (same hash tag, so the same Cluster slot). An argument, not a key.
    static func sessionPrefix(_ id: UserID) -> String { "\(prefix)session:{\(id.rawValue)}:" }
}
