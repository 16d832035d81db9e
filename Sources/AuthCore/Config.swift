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

    /// The names of `variables`, for the environment and `.env` readers.
    public static let variableNames = variables.map(\.name)

    /// The variables whose values are never printed or logged (swift-configuration
    /// redacts them; `check-config` shows only that they are set, or a redacted form).
    public static let secretVariables = variables.filter(\.secret).map(\.name)

    public static let minimumSecretBytes = 32

    /// Validates `env` (variable name to value): each of `variables` in turn reads its
    /// value, or its default. `cores` sizes the defaults.
    public init(env: [String: String], cores: Int = 2) throws(ConfigError) {
        self.init(unread: ())
        let input = Input(env: env, cores: cores)
        for variable in Self.variables { try variable.read(&self, input) }
    }

    /// Every field at a zero value, to be set by its variable's `read`: the defaults are
    /// in `variables`, not here.
    private init(unread: Void) {
        accessSecret = []
        refreshSecret = []
        previousAccessSecrets = []
        previousRefreshSecrets = []
        accessTTL = 0
        refreshTTL = 0
        issuer = ""
        algorithm = .hs256
        leeway = 0
        bcryptCost = 0
        hashConcurrency = 0
        redis = .tcp(host: "", port: 0, database: 0, password: nil)
        redisTimeout = 0
        listen = .inherited
        workers = 0
        fcgiIdleTimeout = 0
        reuseGrace = 0
        idleTTL = 0
        logLevel = ""
        logFormat = ""
        loginUserMaxFailures = 0
        loginUserWindow = 0
        loginAddressMaxFailures = 0
        loginAddressWindow = 0
        accessTokenSessionCheck = false
        maxSessionsPerUser = 0
    }

    /// `NAME=value` for every variable, in the order of `variables`, with the values in
    /// effect (defaults included) and no secret: what `authd check-config` prints.
    public var summary: [String] { Self.variables.map { "\($0.name)=\($0.show(self))" } }

    /// The README's configuration table, generated from `variables` (`authd config-table`).
    public static var markdownTable: String {
        var table = "| Variable | Default | Meaning |\n|---|---|---|\n"
        for v in variables { table += "| `\(v.name)` | \(v.shownDefault) | \(v.doc) |\n" }
        return table
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

extension Config {
    /// One configuration variable, as `variables` declares it.
    public struct Variable: Sendable {
        public let name: String
        /// The README's Default column (markdown).
        public let shownDefault: String
        /// Never printed or logged (see `secretVariables`).
        public let secret: Bool
        /// The README's Meaning column (markdown).
        public let doc: String
        /// Sets the variable's field from its value, or from its default when unset.
        let read: @Sendable (inout Config, Input) throws(ConfigError) -> Void
        /// The value in effect, as check-config prints it: never a secret.
        let show: @Sendable (Config) -> String

        init(_ name: String, shownDefault: String, secret: Bool = false, doc: String,
             read: @escaping @Sendable (inout Config, Input) throws(ConfigError) -> Void,
             show: @escaping @Sendable (Config) -> String) {
            self.name = name
            self.shownDefault = shownDefault
            self.secret = secret
            self.doc = doc
            self.read = read
            self.show = show
        }
    }

    /// The values as given, before validation.
    struct Input: Sendable {
        let env: [String: String]
        let cores: Int

        /// The value without white space at either end; nil when unset or empty.
        func value(_ name: String) -> String? {
            guard let v = env[name]?.trimmingSpaces, !v.isEmpty else { return nil }
            return v
        }
    }
}

/// The kinds of variable, each a parser with its error message, and how it shows.
extension Config.Variable {
    /// A variable whose value, or `default` when unset, goes through `parse` into `field`;
    /// the README shows `default` unless `shownDefault` says otherwise.
    static func parsed<T>(_ name: String, _ field: WritableKeyPath<Config, T> & Sendable, default text: String,
                          shownDefault: String? = nil, secret: Bool = false, doc: String,
                          parse: @escaping @Sendable (String) throws(ConfigError) -> T,
                          show: @escaping @Sendable (T) -> String) -> Self {
        Self(name, shownDefault: shownDefault ?? "`\(text)`", secret: secret, doc: doc,
             read: { config, input throws(ConfigError) in config[keyPath: field] = try parse(input.value(name) ?? text) },
             show: { show($0[keyPath: field]) })
    }

    static func text(_ name: String, _ field: WritableKeyPath<Config, String> & Sendable, default text: String, doc: String) -> Self {
        parsed(name, field, default: text, doc: doc, parse: { $0 }, show: { $0 })
    }

    /// One of `options`, in any case.
    static func choice(_ name: String, _ field: WritableKeyPath<Config, String> & Sendable, default text: String,
                       of options: [String], doc: String) -> Self {
        let list = options.count == 2 ? "\(options[0]) or \(options[1])" : "one of \(options.joined(separator: ", "))"
        return parsed(name, field, default: text, doc: doc, parse: { value throws(ConfigError) in
            let v = value.lowercased()
            guard options.contains(v) else { throw ConfigError(name, "must be \(list) (got \"\(v)\")") }
            return v
        }, show: { $0 })
    }

    static func integer(_ name: String, _ field: WritableKeyPath<Config, Int> & Sendable, default n: Int,
                        in range: ClosedRange<Int>, doc: String) -> Self {
        parsed(name, field, default: String(n), doc: doc, parse: wholeNumber(name, in: range), show: { "\($0)" })
    }

    static func wholeNumber(_ name: String, in range: ClosedRange<Int>) -> @Sendable (String) throws(ConfigError) -> Int {
        { v throws(ConfigError) in
            guard let n = Int(v), range.contains(n) else {
                throw ConfigError(name, "must be a whole number from \(range.lowerBound) to \(range.upperBound) (got \"\(v)\")")
            }
            return n
        }
    }

    /// `allowZero`: 0 is off, and a default of 0 shows as "(off)".
    static func duration(_ name: String, _ field: WritableKeyPath<Config, Int64> & Sendable, default text: String,
                         allowZero: Bool = false, doc: String) -> Self {
        parsed(name, field, default: text, shownDefault: allowZero && text == "0" ? "`0` (off)" : nil, doc: doc, parse: { v throws(ConfigError) in
            guard let n = Config.parseDuration(v), n >= (allowZero ? 0 : 1) else {
                throw ConfigError(name, "must be a duration in seconds or with a unit, like 3600, 15m, 1h, 365d\(allowZero ? " (0 = off)" : "") (got \"\(v)\")")
            }
            return n
        }, show: { "\($0)s" })
    }

    static func flag(_ name: String, _ field: WritableKeyPath<Config, Bool> & Sendable, default on: Bool, doc: String) -> Self {
        parsed(name, field, default: String(on), doc: doc, parse: { v throws(ConfigError) in
            switch v.lowercased() {
            case "true", "1", "yes", "on": return true
            case "false", "0", "no", "off": return false
            default: throw ConfigError(name, "must be true or false (got \"\(v)\")")
            }
        }, show: { "\($0)" })
    }

    /// A required signing secret, taken as given (not trimmed); `check` runs once it is read.
    static func secret(_ name: String, _ field: WritableKeyPath<Config, [UInt8]> & Sendable, doc: String,
                       then check: @escaping @Sendable (Config) throws(ConfigError) -> Void = { _ in }) -> Self {
        Self(name, shownDefault: "(required)", secret: true, doc: doc, read: { config, input throws(ConfigError) in
            guard let v = input.env[name], !v.isEmpty else {
                throw ConfigError(name, "is not set. Generate one with `authd keygen` (or `openssl rand -base64 32`) and put it in the environment or .env")
            }
            guard v.utf8.count >= Config.minimumSecretBytes else {
                throw ConfigError(name, "must be at least \(Config.minimumSecretBytes) bytes long (got \(v.utf8.count)). Generate one with `authd keygen`")
            }
            config[keyPath: field] = Array(v.utf8)
            try check(config)
        }, show: { _ in "(set)" })
    }

    /// Retired secrets, comma-separated; `check` runs once they are read.
    static func previousSecrets(_ name: String, _ field: WritableKeyPath<Config, [[UInt8]]> & Sendable, doc: String,
                                then check: @escaping @Sendable (Config) throws(ConfigError) -> Void = { _ in }) -> Self {
        Self(name, shownDefault: "(none)", secret: true, doc: doc, read: { config, input throws(ConfigError) in
            var secrets: [[UInt8]] = []
            for item in input.value(name)?.split(separator: ",") ?? [] {
                let s = Array(String(item).trimmingSpaces.utf8)
                guard s.count >= Config.minimumSecretBytes else {
                    throw ConfigError(name, "each comma-separated secret must be at least \(Config.minimumSecretBytes) bytes long")
                }
                secrets.append(s)
            }
            config[keyPath: field] = secrets
            try check(config)
        }, show: { config in
            let count = config[keyPath: field].count
            return count == 0 ? "(none)" : "(\(count) set)"
        })
    }
}

extension RedisEndpoint {
    /// Where it is, without the password: for check-config.
    public var redacted: String {
        switch self {
        case .tcp(let host, let port, let db, let pw): "redis://\(pw == nil ? "" : ":***@")\(host):\(port)/\(db)"
        case .unix(let path, let db, _): "unix://\(path)?db=\(db)"
        case .sentinel(let sentinels, let master, let db, let pw):
            "sentinel \(master) via \(sentinels.map { "\($0.host):\($0.port)" }.joined(separator: ",")) db \(db)\(pw == nil ? "" : " with password")"
        }
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
