import Foundation
import Testing
@testable import AuthCore

@Suite struct ConfigTests {
    static let base = ["ACCESS_TOKEN_SECRET": String(repeating: "a", count: 32),
                       "REFRESH_TOKEN_SECRET": String(repeating: "b", count: 32)]

    func config(_ extra: [String: String] = [:]) throws(ConfigError) -> Config {
        try Config(env: Self.base.merging(extra) { $1 }, cores: 2)
    }

    func problem(_ extra: [String: String], without: String? = nil) -> ConfigError? {
        var env = Self.base.merging(extra) { $1 }
        if let without { env[without] = nil }
        do { _ = try Config(env: env); return nil } catch { return error }
    }

    @Test func defaults() throws {
        let c = try config()
        #expect(c.accessTTL == 3600)
        #expect(c.refreshTTL == 365 * 86400)
        #expect(c.issuer == "authd")
        #expect(c.algorithm == .hs256)
        #expect(c.leeway == 0)
        #expect(c.bcryptCost == 12)
        #expect(c.redis == .tcp(host: "127.0.0.1", port: 6379, database: 0, password: nil))
        #expect(c.listen == .inherited)
        #expect(c.reuseGrace == 0 && c.idleTTL == 0)
        #expect(c.loginUserMaxFailures == 10 && c.loginUserWindow == 900)
        #expect(c.loginAddressMaxFailures == 100 && c.loginAddressWindow == 900)
        #expect(c.logFormat == "json")
        #expect(c.maxSessionsPerUser == 100)
    }

    @Test func secretsAreRequiredLongAndDistinct() {
        #expect(problem([:], without: "ACCESS_TOKEN_SECRET")?.variable == "ACCESS_TOKEN_SECRET")
        #expect(problem([:], without: "ACCESS_TOKEN_SECRET")?.problem.contains("authd keygen") == true)
        #expect(problem(["REFRESH_TOKEN_SECRET": String(repeating: "c", count: 31)])?.variable == "REFRESH_TOKEN_SECRET")
        #expect(problem(["REFRESH_TOKEN_SECRET": String(repeating: "a", count: 32)])?.variable == "REFRESH_TOKEN_SECRET")
    }

    @Test(arguments: [
        ("ACCESS_TOKEN_TTL", "0"), ("ACCESS_TOKEN_TTL", "1x"), ("ACCESS_TOKEN_TTL", "-5"), ("REFRESH_TOKEN_TTL", "h"),
        ("REFRESH_TOKEN_TTL", "99999999999d"), ("JWT_ALG", "none"), ("JWT_ALG", "RS256"), ("JWT_LEEWAY", "-1"),
        ("BCRYPT_COST", "3"), ("BCRYPT_COST", "32"), ("BCRYPT_COST", "ten"), ("REDIS_URL", "http://x"),
        ("REDIS_URL", "redis://:6379"), ("REDIS_URL", "redis://h:0"), ("REDIS_URL", "unix://relative"),
        ("FCGI_LISTEN", "nohost"), ("FCGI_LISTEN", "h:99999"), ("WORKERS", "0"), ("REDIS_TIMEOUT", "0"),
        ("REFRESH_IDLE_TTL", "soon"), ("LOG_LEVEL", "loud"), ("LOGIN_USER_MAX_FAILURES", "-1"),
        ("LOGIN_ADDRESS_MAX_FAILURES", "many"), ("LOG_FORMAT", "xml"), ("LOGIN_USER_WINDOW", "0"), ("LOGIN_ADDRESS_WINDOW", "1y"),
        ("MAX_SESSIONS_PER_USER", "0"), ("MAX_SESSIONS_PER_USER", "10001"),
    ])
    func badValuesNameTheirVariable(_ name: String, _ value: String) {
        #expect(problem([name: value])?.variable == name)
    }

    @Test func durationsTakeUnits() throws {
        let c = try config(["ACCESS_TOKEN_TTL": "15m", "REFRESH_TOKEN_TTL": "30d", "JWT_LEEWAY": "5s",
                            "REFRESH_REUSE_GRACE": "10", "REFRESH_IDLE_TTL": "2w"])
        #expect(c.accessTTL == 900 && c.refreshTTL == 30 * 86400 && c.leeway == 5)
        #expect(c.reuseGrace == 10 && c.idleTTL == 14 * 86400)
    }

    @Test func redisURLs() throws {
        #expect(try Config.parseRedisURL("redis://cache.internal:6380/2") == .tcp(host: "cache.internal", port: 6380, database: 2, password: nil))
        #expect(try Config.parseRedisURL("redis://:s3cret@10.0.0.1") == .tcp(host: "10.0.0.1", port: 6379, database: 0, password: "s3cret"))
        #expect(try Config.parseRedisURL("redis://[::1]:7000/0") == .tcp(host: "::1", port: 7000, database: 0, password: nil))
        #expect(try Config.parseRedisURL("unix:///run/redis/redis.sock") == .unix(path: "/run/redis/redis.sock", database: 0, password: nil))
        #expect(try Config.parseRedisURL("unix:///tmp/r.sock?db=3") == .unix(path: "/tmp/r.sock", database: 3, password: nil))
    }

    @Test func redisSentinels() throws {
        let c = try config(["REDIS_URL": "redis://:pw@ignored:1/3", "REDIS_SENTINELS": "10.0.0.1:26379, sentinel-b, [::1]:26380",
                            "REDIS_SENTINEL_MASTER": "auth"])
        #expect(c.redis == .sentinel([SentinelAddress(host: "10.0.0.1", port: 26379), SentinelAddress(host: "sentinel-b", port: 26379),
                                      SentinelAddress(host: "::1", port: 26380)], master: "auth", database: 3, password: "pw"))
        #expect(try config(["REDIS_SENTINELS": "s:1"]).redis == .sentinel([SentinelAddress(host: "s", port: 1)], master: "mymaster", database: 0, password: nil))
        #expect(problem(["REDIS_SENTINELS": "a:1,b:99999"])?.variable == "REDIS_SENTINELS")
        #expect(problem(["REDIS_SENTINELS": "a:1", "REDIS_URL": "unix:///run/redis.sock"])?.variable == "REDIS_SENTINELS")
    }

    @Test func listenAddresses() throws {
        #expect(try config(["FCGI_LISTEN": "/run/authd/authd.sock"]).listen == .unix(path: "/run/authd/authd.sock"))
        #expect(try config(["FCGI_LISTEN": "127.0.0.1:9000"]).listen == .tcp(host: "127.0.0.1", port: 9000))
        #expect(try config(["FCGI_LISTEN": "[::1]:9000"]).listen == .tcp(host: "::1", port: 9000))
    }
}

extension ConfigTests {
    @Test func previousSecretsForRotation() throws {
        let old = String(repeating: "o", count: 32), older = String(repeating: "p", count: 40)
        let c = try config(["ACCESS_TOKEN_PREVIOUS_SECRETS": "\(old), \(older)"])
        #expect(c.previousAccessSecrets == [Array(old.utf8), Array(older.utf8)])
        #expect(c.previousRefreshSecrets.isEmpty)
        #expect(problem(["ACCESS_TOKEN_PREVIOUS_SECRETS": "short"])?.variable == "ACCESS_TOKEN_PREVIOUS_SECRETS")
        #expect(problem(["REFRESH_TOKEN_PREVIOUS_SECRETS": String(repeating: "a", count: 32)])?.variable == "REFRESH_TOKEN_PREVIOUS_SECRETS")
    }
}

/// The variable list, the secrets and the README's configuration table name the same
/// variables: a setting added in one place and forgotten in another fails here.
@Suite struct ConfigDeclarationTests {
    static let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("README.md")

    @Test func theReadmeTableListsExactlyTheVariables() throws {
        let text = try String(contentsOf: Self.readme, encoding: .utf8)
        let start = try #require(text.range(of: "\n## Configuration\n"))
        let end = text.range(of: "\n## ", range: start.upperBound..<text.endIndex)?.lowerBound ?? text.endIndex
        let rows = text[start.upperBound..<end].split(separator: "\n").filter { $0.hasPrefix("| `") }
        let documented = rows.compactMap { row in row.dropFirst(3).split(separator: "`").first.map(String.init) }
        #expect(Set(documented) == Set(Config.variables), "README only: \(Set(documented).subtracting(Config.variables)); code only: \(Set(Config.variables).subtracting(documented))")
        #expect(documented.count == Set(documented).count, "a variable documented twice")
    }

    @Test func secretsAreVariables() {
        #expect(Set(Config.secretVariables).isSubset(of: Config.variables))
        #expect(Config.variables.count == Set(Config.variables).count)
    }
}
