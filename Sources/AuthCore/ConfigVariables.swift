/// Every configuration variable, declared once: its name, its default, whether it is secret,
/// its line in the README, how it is read into a `Config` and how `authd check-config`
/// shows it. Config's init, the readers of the environment and `.env`, the redaction of
/// secrets, check-config's summary and the README's configuration table (`authd
/// config-table` prints it; a test holds README.md to it) all come from this list.
extension Config {
    /// In the README's order, which is also the order they are read in: a variable checked
    /// against another (the refresh secret against the access secret, the sentinels against
    /// REDIS_URL) comes after it.
    public static let variables: [Variable] = [
        .secret("ACCESS_TOKEN_SECRET", \.accessSecret, doc: """
            Key material for access tokens, at least 32 bytes. Make one with `authd keygen`.
            """),
        .secret("REFRESH_TOKEN_SECRET", \.refreshSecret, doc: """
            Key material for refresh tokens, at least 32 bytes, different from the access secret.
            """) { c throws(ConfigError) in
            guard c.accessSecret != c.refreshSecret else {
                throw ConfigError("REFRESH_TOKEN_SECRET", "must differ from ACCESS_TOKEN_SECRET, so that neither kind of token verifies as the other")
            }
        },
        .previousSecrets("ACCESS_TOKEN_PREVIOUS_SECRETS", \.previousAccessSecrets, doc: """
            Comma-separated earlier access secrets that still verify (key rotation by `kid`); new \
            tokens are always signed with `ACCESS_TOKEN_SECRET`.
            """),
        .previousSecrets("REFRESH_TOKEN_PREVIOUS_SECRETS", \.previousRefreshSecrets, doc: """
            The same for refresh tokens. No refresh secret may also be an access secret.
            """) { c throws(ConfigError) in
            let allAccess = [c.accessSecret] + c.previousAccessSecrets, allRefresh = [c.refreshSecret] + c.previousRefreshSecrets
            guard !allAccess.contains(where: { allRefresh.contains($0) }) else {
                throw ConfigError("REFRESH_TOKEN_PREVIOUS_SECRETS", "no refresh secret may also be an access secret")
            }
        },
        .duration("ACCESS_TOKEN_TTL", \.accessTTL, default: "3600", doc: """
            Access token lifetime (`exp - iat`).
            """),
        .duration("REFRESH_TOKEN_TTL", \.refreshTTL, default: "365d", doc: """
            Refresh token lifetime; the session's Redis TTL follows it.
            """),
        .flag("ACCESS_TOKEN_SESSION_CHECK", \.accessTokenSessionCheck, default: false, doc: """
            `true`: every route that takes an access token also asks Redis whether the token's \
            session still exists, one read per request, so `GET /` needs Redis (503 while it is \
            down) and a session that expired is seen too. `false`: no read; the end of a session \
            (logout, logout-all, a replay, `DELETE /auth/sessions/{id}`, the cap, a password change \
            for the other sessions, an account deletion) still stops its access tokens at once on \
            every instance, from the revocations each authd keeps in memory (docs/gateway.md). \
            Both: 401 `error_description="The session has ended"`. Also `1`/`0`, `yes`/`no`, \
            `on`/`off`, in any case.
            """),
        .text("JWT_ISSUER", \.issuer, default: "authd", doc: """
            `iss` claim written and required.
            """),
        .parsed("JWT_ALG", \.algorithm, default: "HS256", doc: """
            `HS256` (HMAC-SHA-256) or `EdDSA` (Ed25519 keys derived from the two secrets; public \
            keys published at `/.well-known/jwks.json`).
            """, parse: { alg throws(ConfigError) in
            guard let a = JWTAlgorithm(rawValue: alg) else {
                throw ConfigError("JWT_ALG", "must be one of \(JWTAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")) (got \"\(alg)\")")
            }
            return a
        }, show: \.rawValue),
        .duration("JWT_LEEWAY", \.leeway, default: "0", allowZero: true, doc: """
            Clock skew allowed when checking `exp` and `nbf`.
            """),
        .integer("BCRYPT_COST", \.bcryptCost, default: 12, in: 4...31, doc: """
            bcrypt cost (4-31). 12 takes about 170 ms per hash on the reference machine; tests use \
            4.
            """),
        Variable("BCRYPT_CONCURRENCY", shownDefault: "number of cores", doc: """
            bcrypt threads (the password lane, at a lower CPU priority than the request workers), so \
            that a burst of logins cannot take every worker or core away from token checks.
            """, read: { c, input throws(ConfigError) in
            // The default depends on the machine: no text to show or parse.
            c.hashConcurrency = try input.value("BCRYPT_CONCURRENCY").map(Variable.wholeNumber("BCRYPT_CONCURRENCY", in: 1...1024)) ?? max(1, input.cores)
        }, show: { "\($0.hashConcurrency)" }),
        .parsed("REDIS_URL", \.redis, default: "redis://127.0.0.1:6379/0", secret: true, doc: """
            `redis://[:password@]host[:port][/db]` or `unix:///path/to/redis.sock[?db=N]`.
            """, parse: Config.parseRedisURL, show: { endpoint in
            // With sentinels, REDIS_URL gives only the primary's password and database.
            guard case .sentinel(_, _, let db, let password) = endpoint else { return endpoint.redacted }
            return "database \(db) on the primary\(password == nil ? "" : ", with password")"
        }),
        Variable("REDIS_SENTINELS", shownDefault: "(unset)", doc: """
            Comma-separated `host[:port]` (default port 26379) of Redis Sentinels. Set: authd asks \
            them for the primary named `REDIS_SENTINEL_MASTER`, checks with `ROLE` that it is the \
            primary, and asks again whenever the connection breaks or the server answers `READONLY` \
            (a failover); `REDIS_URL` must then be `redis://` and only its password and database are \
            used.
            """, read: { c, input throws(ConfigError) in
            guard let list = input.value("REDIS_SENTINELS") else { return }
            var sentinels: [SentinelAddress] = []
            for item in list.split(separator: ",") {
                guard let (host, port) = Config.parseHostPort(Substring(String(item).trimmingSpaces), defaultPort: 26379) else {
                    throw ConfigError("REDIS_SENTINELS", "must be a comma-separated list of host:port (got \"\(list)\")")
                }
                sentinels.append(SentinelAddress(host: host, port: port))
            }
            guard case .tcp(_, _, let db, let password) = c.redis else {
                throw ConfigError("REDIS_SENTINELS", "needs REDIS_URL to be redis://... (its password and database apply to the primary), not a unix socket")
            }
            c.redis = .sentinel(sentinels, master: "", database: db, password: password)
        }, show: { c in
            guard case .sentinel(let sentinels, _, _, _) = c.redis else { return "(unset)" }
            return sentinels.map { "\($0.host):\($0.port)" }.joined(separator: ",")
        }),
        Variable("REDIS_SENTINEL_MASTER", shownDefault: "`mymaster`", doc: """
            The primary's name in the sentinels' `sentinel monitor` line.
            """, read: { c, input in
            // Read after REDIS_SENTINELS, which leaves the primary's name to this one.
            guard case .sentinel(let sentinels, _, let db, let password) = c.redis else { return }
            c.redis = .sentinel(sentinels, master: input.value("REDIS_SENTINEL_MASTER") ?? "mymaster", database: db, password: password)
        }, show: { c in
            guard case .sentinel(_, let master, _, _) = c.redis else { return "(unused)" }
            return master
        }),
        .parsed("REDIS_TIMEOUT", \.redisTimeout, default: "2", doc: """
            Redis connect and command timeout, in seconds (may be fractional).
            """, parse: { timeout throws(ConfigError) in
            guard let t = Double(timeout), t > 0, t <= 60 else {
                throw ConfigError("REDIS_TIMEOUT", "must be a number of seconds greater than 0 and at most 60 (got \"\(timeout)\")")
            }
            return t
        }, show: { "\($0)s" }),
        Variable("FCGI_LISTEN", shownDefault: "(unset)", doc: """
            Unix socket path or `host:port` to listen on. Unset: the listening socket passed on fd 0 \
            (spawn-fcgi, systemd `StandardInput=socket`). A socket authd creates itself gets mode \
            0660.
            """, read: { c, input throws(ConfigError) in
            c.listen = try Config.parseListen(input.value("FCGI_LISTEN"))
        }, show: { "\($0.listen)" }),
        .integer("WORKERS", \.workers, default: 128, in: 1...4096, doc: """
            FastCGI worker threads (each has its own request, Redis connection and hashing buffer). \
            With `fastcgi_keep_conn`, each idle kept-alive nginx connection holds one: keep \
            `WORKERS` above nginx's `keepalive` x `worker_processes` plus the requests in flight. At \
            most `WORKERS - WORKERS/8` wait on idle connections; another that would closes the \
            longest-idle one, so idle peers never take every worker.
            """),
        .integer("FCGI_IDLE_TIMEOUT", \.fcgiIdleTimeout, default: 75, in: 1...86400, doc: """
            Seconds a kept-alive FastCGI connection may stay idle between requests before authd \
            closes it. Keep it above nginx's upstream `keepalive_timeout` (60 s in \
            deploy/nginx.conf), so that nginx closes first. A request itself must arrive whole \
            within 5 s of its first byte, however it trickles.
            """),
        .duration("REFRESH_REUSE_GRACE", \.reuseGrace, default: "0", allowZero: true, doc: """
            Seconds after a rotation during which the immediate parent refresh token counts as a \
            retry (answered with the current pair) instead of a replay. Off, a client that lost a \
            refresh answer (its network, or a 503 after `REDIS_TIMEOUT` although Redis did rotate) \
            has its session ended when it retries; a few seconds is a good production value.
            """),
        .duration("REFRESH_IDLE_TTL", \.idleTTL, default: "0", allowZero: true, doc: """
            A session not refreshed for this long ends, even before its refresh token expires.
            """),
        .integer("MAX_SESSIONS_PER_USER", \.maxSessionsPerUser, default: 100, in: 1...10_000, doc: """
            The most sessions one user keeps (1-10000). A login or registration beyond it ends the \
            user's least recently used sessions (the last of `GET /auth/sessions`: the oldest last \
            login or refresh), in the same Redis step; their refresh tokens then get 403 `Refresh \
            token has been revoked`. Counted in `authd_sessions_evicted_total` and logged. A lower \
            value applies to each user at their next login.
            """),
        .choice("LOG_LEVEL", \.logLevel, default: "info", of: ["trace", "debug", "info", "notice", "warning", "error", "critical"], doc: """
            `trace`, `debug`, `info`, `notice`, `warning`, `error` or `critical`. Logs go to stderr.
            """),
        .choice("LOG_FORMAT", \.logFormat, default: "json", of: ["json", "text"], doc: """
            `json`: one object per line (`time`, `level`, `logger`, `message`, then the event's \
            fields, e.g. `request_id` as nginx passes it, so an access-log line and authd's lines of \
            one request share it); `text`: swift-log's plain lines.
            """),
        .integer("LOGIN_USER_MAX_FAILURES", \.loginUserMaxFailures, default: 10, in: 0...1_000_000, doc: """
            Failed logins per username in one window; beyond it, logins of that name get 429 with \
            `Retry-After` until the window ends, even with the right password. `0` = off.
            """),
        .duration("LOGIN_USER_WINDOW", \.loginUserWindow, default: "15m", doc: """
            The per-username window, opened by the first failure.
            """),
        .integer("LOGIN_ADDRESS_MAX_FAILURES", \.loginAddressMaxFailures, default: 100, in: 0...1_000_000, doc: """
            Failed logins per client address (nginx's `REMOTE_ADDR`; an IPv6 address counts as its \
            /64), across usernames; registrations answered 409 (name taken) count in the same \
            budget. Beyond it, logins and registrations from that address get 429 with \
            `Retry-After`. `0` = off.
            """),
        .duration("LOGIN_ADDRESS_WINDOW", \.loginAddressWindow, default: "15m", doc: """
            The per-address window.
            """),
    ]
}
