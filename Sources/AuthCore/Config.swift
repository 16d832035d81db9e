/// A configuration problem found at start-up. The message names the variable.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    public let variable: String
    public let problem: String
    public init(_ variable: String, _ problem: String) {
        self.variable = variable
        self.problem = problem
    }
    public var description: String { "\(variable): \(problem)" }
}

/// Where Redis is.
public enum RedisEndpoint: Equatable, Sendable {
    case tcp(host: String, port: Int, database: Int, password: String?)
    case unix(path: String, database: Int, password: String?)
    /// The primary that these Redis Sentinels name `master`; found again after a failover.
    case sentinel([SentinelAddress], master: String, database: Int, password: String?)
}

public struct SentinelAddress: Equatable, Sendable {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// Where the FastCGI responder listens.
public enum ListenAddress: Equatable, Sendable {
    /// The socket inherited on fd 0 (spawn-fcgi, systemd `StandardInput=socket`).
    case inherited
    case unix(path: String)
    case tcp(host: String, port: Int)
}

/// The service's settings, read once at start-up and immutable afterwards.
public struct Config: Sendable {
    public var accessSecret: [UInt8]
    public var refreshSecret: [UInt8]
    /// Retired secrets whose tokens still verify (key rotation); they never sign.
    public var previousAccessSecrets: [[UInt8]]
    public var previousRefreshSecrets: [[UInt8]]
    public var accessTTL: Int64
    public var refreshTTL: Int64
    public var issuer: String
    public var algorithm: JWTAlgorithm
    public var leeway: Int64
    public var bcryptCost: Int
    /// How many bcrypt computations may run at once (the hashing lane).
    public var hashConcurrency: Int
    public var redis: RedisEndpoint
    /// Connect and command timeout for Redis, in seconds.
    public var redisTimeout: Double
    public var listen: ListenAddress
    public var workers: Int
    /// FCGI_IDLE_TIMEOUT: seconds a kept-alive FastCGI connection may sit idle between
    /// requests before authd closes it; longer than nginx's upstream `keepalive_timeout`
    /// (60 s by default), so that nginx, which knows when it will reuse one, closes first.
    public var fcgiIdleTimeout: Int
    public var reuseGrace: Int64
    /// 0 = off.
    public var idleTTL: Int64
    public var logLevel: String
    /// `json` (one object per line) or `text` (swift-log's plain lines).
    public var logFormat: String
    /// Failed logins per username (0 = off) within a window of that many seconds.
    public var loginUserMaxFailures: Int
    public var loginUserWindow: Int64
    /// Failed logins per client address (IPv6: per /64; 0 = off) within a window.
    public var loginAddressMaxFailures: Int
    public var loginAddressWindow: Int64
    /// Protected routes also check that the access token's session still exists (one
    /// store read), so that ending a session takes effect at once. Off: `GET /` needs no store.
    public var accessTokenSessionCheck: Bool
    /// The most sessions one user keeps: a login beyond it ends the user's least recently
    /// used session, so that what one user's sessions cost (the list, every login) is bounded.
    public var maxSessionsPerUser: Int

    /// Every variable the service reads, for the environment/.env readers.
    public static let variables = [
        "ACCESS_TOKEN_SECRET", "REFRESH_TOKEN_SECRET", "ACCESS_TOKEN_PREVIOUS_SECRETS",
        "REFRESH_TOKEN_PREVIOUS_SECRETS", "ACCESS_TOKEN_TTL", "REFRESH_TOKEN_TTL",
        "JWT_ISSUER", "JWT_ALG", "JWT_LEEWAY", "BCRYPT_COST", "BCRYPT_CONCURRENCY", "REDIS_URL",
        "REDIS_TIMEOUT", "REDIS_SENTINELS", "REDIS_SENTINEL_MASTER", "FCGI_LISTEN", "WORKERS", "FCGI_IDLE_TIMEOUT", "REFRESH_REUSE_GRACE", "REFRESH_IDLE_TTL", "LOG_LEVEL", "LOG_FORMAT",
        "LOGIN_USER_MAX_FAILURES", "LOGIN_USER_WINDOW", "LOGIN_ADDRESS_MAX_FAILURES", "LOGIN_ADDRESS_WINDOW",
        "ACCESS_TOKEN_SESSION_CHECK", "MAX_SESSIONS_PER_USER",
    ]

    /// The variables whose values are never printed or logged (swift-configuration
    /// redacts them; `check-config` shows only that they are set).
    public static let secretVariables = [
        "ACCESS_TOKEN_SECRET", "REFRESH_TOKEN_SECRET", "ACCESS_TOKEN_PREVIOUS_SECRETS", "REFRESH_TOKEN_PREVIOUS_SECRETS",
        "REDIS_URL",
    ]

    public static let minimumSecretBytes = 32

    /// Validates `env` (variable name to value). `cores` sizes the defaults.
    public init(env: [String: String], cores: Int = 2) throws(ConfigError) {
        func value(_ name: String) -> String? {
            guard let v = env[name]?.trimmingSpaces, !v.isEmpty else { return nil }
            return v
        }
        func secret(_ name: String) throws(ConfigError) -> [UInt8] {
            guard let v = env[name], !v.isEmpty else {
                throw ConfigError(name, "is not set. Generate one with `authd keygen` (or `openssl rand -base64 32`) and put it in the environment or .env")
            }
            guard v.utf8.count >= Self.minimumSecretBytes else {
                throw ConfigError(name, "must be at least \(Self.minimumSecretBytes) bytes long (got \(v.utf8.count)). Generate one with `authd keygen`")
            }
            return Array(v.utf8)
        }
        func integer(_ name: String, default d: Int, in range: ClosedRange<Int>) throws(ConfigError) -> Int {
            guard let v = value(name) else { return d }
            guard let n = Int(v), range.contains(n) else {
                throw ConfigError(name, "must be a whole number from \(range.lowerBound) to \(range.upperBound) (got \"\(v)\")")
            }
            return n
        }
        func flag(_ name: String, default d: Bool) throws(ConfigError) -> Bool {
            guard let v = value(name) else { return d }
            switch v.lowercased() {
            case "true", "1", "yes", "on": return true
            case "false", "0", "no", "off": return false
            default: throw ConfigError(name, "must be true or false (got \"\(v)\")")
            }
        }
        func duration(_ name: String, default d: Int64, allowZero: Bool) throws(ConfigError) -> Int64 {
            guard let v = value(name) else { return d }
            guard let n = Self.parseDuration(v), n >= (allowZero ? 0 : 1) else {
                throw ConfigError(name, "must be a duration in seconds or with a unit, like 3600, 15m, 1h, 365d\(allowZero ? " (0 = off)" : "") (got \"\(v)\")")
            }
            return n
        }

        accessSecret = try secret("ACCESS_TOKEN_SECRET")
        refreshSecret = try secret("REFRESH_TOKEN_SECRET")
        guard accessSecret != refreshSecret else {
            throw ConfigError("REFRESH_TOKEN_SECRET", "must differ from ACCESS_TOKEN_SECRET, so that neither kind of token verifies as the other")
        }
        func previous(_ name: String) throws(ConfigError) -> [[UInt8]] {
            guard let list = value(name) else { return [] }
            var secrets: [[UInt8]] = []
            for item in list.split(separator: ",") {
                let s = Array(String(item).trimmingSpaces.utf8)
                guard s.count >= Self.minimumSecretBytes else {
                    throw ConfigError(name, "each comma-separated secret must be at least \(Self.minimumSecretBytes) bytes long")
                }
                secrets.append(s)
            }
            return secrets
        }
        previousAccessSecrets = try previous("ACCESS_TOKEN_PREVIOUS_SECRETS")
        previousRefreshSecrets = try previous("REFRESH_TOKEN_PREVIOUS_SECRETS")
        let allAccess = [accessSecret] + previousAccessSecrets, allRefresh = [refreshSecret] + previousRefreshSecrets
        guard !allAccess.contains(where: { allRefresh.contains($0) }) else {
            throw ConfigError("REFRESH_TOKEN_PREVIOUS_SECRETS", "no refresh secret may also be an access secret")
        }
        accessTTL = try duration("ACCESS_TOKEN_TTL", default: 3600, allowZero: false)
        refreshTTL = try duration("REFRESH_TOKEN_TTL", default: 365 * 86400, allowZero: false)
        issuer = value("JWT_ISSUER") ?? "authd"
        if let alg = value("JWT_ALG") {
            guard let a = JWTAlgorithm(rawValue: alg) else {
                throw ConfigError("JWT_ALG", "must be one of \(JWTAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")) (got \"\(alg)\")")
            }
            algorithm = a
        } else {
            algorithm = .hs256
        }
        leeway = try duration("JWT_LEEWAY", default: 0, allowZero: true)
        bcryptCost = try integer("BCRYPT_COST", default: 12, in: 4...31)
        hashConcurrency = try integer("BCRYPT_CONCURRENCY", default: max(1, cores), in: 1...1024)
        redis = try Self.parseRedisURL(value("REDIS_URL") ?? "redis://127.0.0.1:6379/0")
        if let list = value("REDIS_SENTINELS") {
            var sentinels: [SentinelAddress] = []
            for item in list.split(separator: ",") {
                guard let (host, port) = Self.parseHostPort(Substring(String(item).trimmingSpaces), defaultPort: 26379) else {
                    throw ConfigError("REDIS_SENTINELS", "must be a comma-separated list of host:port (got \"\(list)\")")
                }
                sentinels.append(SentinelAddress(host: host, port: port))
            }
            guard case .tcp(_, _, let db, let password) = redis else {
                throw ConfigError("REDIS_SENTINELS", "needs REDIS_URL to be redis://... (its password and database apply to the primary), not a unix socket")
            }
            redis = .sentinel(sentinels, master: value("REDIS_SENTINEL_MASTER") ?? "mymaster", database: db, password: password)
        }
        let timeout = value("REDIS_TIMEOUT") ?? "2"
        guard let t = Double(timeout), t > 0, t <= 60 else {
            throw ConfigError("REDIS_TIMEOUT", "must be a number of seconds greater than 0 and at most 60 (got \"\(timeout)\")")
        }
        redisTimeout = t
        listen = try Self.parseListen(value("FCGI_LISTEN"))
        workers = try integer("WORKERS", default: 128, in: 1...4096)
        fcgiIdleTimeout = try integer("FCGI_IDLE_TIMEOUT", default: 75, in: 1...86400)
        reuseGrace = try duration("REFRESH_REUSE_GRACE", default: 0, allowZero: true)
        idleTTL = try duration("REFRESH_IDLE_TTL", default: 0, allowZero: true)
        let level = value("LOG_LEVEL")?.lowercased() ?? "info"
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) else {
            throw ConfigError("LOG_LEVEL", "must be one of trace, debug, info, notice, warning, error, critical (got \"\(level)\")")
        }
        logLevel = level
        let format = value("LOG_FORMAT")?.lowercased() ?? "json"
        guard format == "json" || format == "text" else {
            throw ConfigError("LOG_FORMAT", "must be json or text (got \"\(format)\")")
        }
        logFormat = format
        loginUserMaxFailures = try integer("LOGIN_USER_MAX_FAILURES", default: 10, in: 0...1_000_000)
        loginUserWindow = try duration("LOGIN_USER_WINDOW", default: 900, allowZero: false)
        loginAddressMaxFailures = try integer("LOGIN_ADDRESS_MAX_FAILURES", default: 100, in: 0...1_000_000)
        loginAddressWindow = try duration("LOGIN_ADDRESS_WINDOW", default: 900, allowZero: false)
        accessTokenSessionCheck = try flag("ACCESS_TOKEN_SESSION_CHECK", default: false)
        maxSessionsPerUser = try integer("MAX_SESSIONS_PER_USER", default: 100, in: 1...10_000)
    }

    /// `90`, `90s`, `15m`, `1h`, `365d`, `1w` to seconds; nil when malformed.
    public static func parseDuration(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800]
        var digits = Substring(text)
        var unit: Int64 = 1
        if let last = text.last, let u = units[last] {
            unit = u
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit), let n = Int64(digits) else { return nil }
        let (product, overflow) = n.multipliedReportingOverflow(by: unit)
        // Beyond ~100 years a TTL is a typo, and Redis EXPIRE arithmetic stays far from overflow.
        return overflow || product > 100 * 366 * 86400 ? nil : product
    }

    /// `redis://[:password@]host[:port][/db]` or `unix:///path[?db=N]`.
    public static func parseRedisURL(_ url: String) throws(ConfigError) -> RedisEndpoint {
        let bad = ConfigError("REDIS_URL", "must look like redis://host:6379/0 or unix:///path/to/redis.sock (got \"\(url)\")")
        if url.hasPrefix("unix://") {
            var rest = Substring(url.dropFirst("unix://".count))
            var db = 0
            if let q = rest.firstIndex(of: "?") {
                let query = rest[rest.index(after: q)...]
                rest = rest[..<q]
                guard query.hasPrefix("db="), let n = Int(query.dropFirst(3)), n >= 0 else { throw bad }
                db = n
            }
            guard rest.hasPrefix("/"), rest.count > 1 else { throw bad }
            return .unix(path: String(rest), database: db, password: nil)
        }
        guard url.hasPrefix("redis://") else { throw bad }
        var rest = Substring(url.dropFirst("redis://".count))
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            password = userinfo.hasPrefix(":") ? String(userinfo.dropFirst()) : String(userinfo)
        }
        var db = 0
        if let slash = rest.firstIndex(of: "/") {
            let dbText = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !dbText.isEmpty {
                guard let n = Int(dbText), n >= 0 else { throw bad }
                db = n
            }
        }
        guard let (host, port) = parseHostPort(rest, defaultPort: 6379) else { throw bad }
        return .tcp(host: host, port: port, database: db, password: password)
    }

    static func parseListen(_ text: String?) throws(ConfigError) -> ListenAddress {
        guard let text else { return .inherited }
        if text.hasPrefix("/") || text.hasPrefix("./") { return .unix(path: text) }
        if text.hasPrefix("unix:") { return .unix(path: String(text.dropFirst(5))) }
        guard let (host, port) = parseHostPort(Substring(text), defaultPort: nil) else {
            throw ConfigError("FCGI_LISTEN", "must be a unix socket path (/run/authd/authd.sock) or host:port (127.0.0.1:9000) (got \"\(text)\")")
        }
        return .tcp(host: host, port: port)
    }

    /// `host`, `host:port`, `[v6]:port`.
    static func parseHostPort(_ text: Substring, defaultPort: Int?) -> (String, Int)? {
        var host = text
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portText = after.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, !host.contains(where: { $0 == "/" || $0 == " " }) else { return nil }
        let port: Int
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else { return nil }
            port = p
        } else {
            guard let defaultPort else { return nil }
            port = defaultPort
        }
        return (String(host), port)
    }
}

extension Character {
    var isASCIIDigit: Bool { asciiValue.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
}

extension String {
    /// Drops ASCII white space at both ends (Foundation-free).
    var trimmingSpaces: String {
        trimmingCharacters(where: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
    }

    /// Drops the characters matching `predicate` at both ends.
    func trimmingCharacters(where predicate: (Character) -> Bool) -> String {
        guard let first = firstIndex(where: { !predicate($0) }), let last = lastIndex(where: { !predicate($0) }) else { return "" }
        return String(self[first...last])
    }
}
