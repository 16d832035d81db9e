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

/// One declaration per variable (`Config.variables`): the README's configuration table is
/// generated from it, check-config's summary shows every one of them, and the messages for
/// bad values are those of the hand-written reader it replaced.
@Suite struct ConfigDeclarationTests {
    static let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("README.md")

    @Test func theReadmeTableIsTheGeneratedOne() throws {
        let text = try String(contentsOf: Self.readme, encoding: .utf8)
        let section = try #require(text.range(of: "\n## Configuration\n"))
        let start = try #require(text.range(of: "| Variable |", range: section.upperBound..<text.endIndex)).lowerBound
        let end = text.range(of: "\n\n", range: start..<text.endIndex)?.lowerBound ?? text.endIndex
        let documented = text[start..<end] + "\n"
        #expect(documented == Config.markdownTable,
                "README.md's configuration table differs from Config.variables; regenerate it with `swift run authd config-table`:\n\(Config.markdownTable)")
    }

    @Test func namesAreUniqueAndTheSecretsAreAmongThem() {
        #expect(Config.variableNames.count == Set(Config.variableNames).count)
        #expect(Config.secretVariables == ["ACCESS_TOKEN_SECRET", "REFRESH_TOKEN_SECRET", "ACCESS_TOKEN_PREVIOUS_SECRETS",
                                           "REFRESH_TOKEN_PREVIOUS_SECRETS", "REDIS_URL"])
    }

    @Test func theSummaryShowsEveryVariableAndNoSecret() throws {
        let secrets = ["ACCESS_TOKEN_SECRET": String(repeating: "s", count: 32), "REFRESH_TOKEN_SECRET": String(repeating: "t", count: 33),
                       "ACCESS_TOKEN_PREVIOUS_SECRETS": String(repeating: "u", count: 34) + "," + String(repeating: "v", count: 35),
                       "REDIS_URL": "redis://:hunter2hunter2@cache:6380/3"]
        let summary = try Config(env: secrets.merging(["MAX_SESSIONS_PER_USER": "7", "LOG_FORMAT": "TEXT"]) { $1 }, cores: 3).summary
        #expect(summary.map { String($0.prefix { $0 != "=" }) } == Config.variableNames)
        for value in secrets.values.flatMap({ $0.split(separator: ",").map(String.init) }) + ["hunter2"] {
            #expect(!summary.joined().contains(value), "a secret in the summary: \(summary)")
        }
        #expect(summary.contains("ACCESS_TOKEN_PREVIOUS_SECRETS=(2 set)") && summary.contains("REFRESH_TOKEN_PREVIOUS_SECRETS=(none)"))
        #expect(summary.contains("REDIS_URL=redis://:***@cache:6380/3"))
        #expect(summary.contains("MAX_SESSIONS_PER_USER=7") && summary.contains("LOG_FORMAT=text"))
        #expect(summary.contains("BCRYPT_CONCURRENCY=3") && summary.contains("REFRESH_TOKEN_TTL=31536000s"))
        #expect(summary.contains("REDIS_SENTINELS=(unset)") && summary.contains("FCGI_LISTEN=inherited"))
    }

    @Test func sentinelsAndTheirPrimaryShow() throws {
        let c = try Config(env: ConfigTests.base.merging(["REDIS_SENTINELS": "a:1, b", "REDIS_SENTINEL_MASTER": "auth"]) { $1 })
        #expect(c.summary.contains("REDIS_SENTINELS=a:1,b:26379") && c.summary.contains("REDIS_SENTINEL_MASTER=auth"))
        #expect(try Config(env: ConfigTests.base).summary.contains("REDIS_SENTINEL_MASTER=(unused)"))
    }

    /// The messages, word for word, of the reader before the declarations.
    @Test(arguments: [
        ("BCRYPT_COST", "ten", "must be a whole number from 4 to 31 (got \"ten\")"),
        ("BCRYPT_CONCURRENCY", "0", "must be a whole number from 1 to 1024 (got \"0\")"),
        ("ACCESS_TOKEN_TTL", "0", "must be a duration in seconds or with a unit, like 3600, 15m, 1h, 365d (got \"0\")"),
        ("REFRESH_IDLE_TTL", "soon", "must be a duration in seconds or with a unit, like 3600, 15m, 1h, 365d (0 = off) (got \"soon\")"),
        ("ACCESS_TOKEN_SESSION_CHECK", "maybe", "must be true or false (got \"maybe\")"),
        ("JWT_ALG", "none", "must be one of HS256, EdDSA (got \"none\")"),
        ("LOG_LEVEL", "LOUD", "must be one of trace, debug, info, notice, warning, error, critical (got \"loud\")"),
        ("LOG_FORMAT", "xml", "must be json or text (got \"xml\")"),
        ("REDIS_TIMEOUT", "0", "must be a number of seconds greater than 0 and at most 60 (got \"0\")"),
        ("REDIS_URL", "http://x", "must look like redis://host:6379/0 or unix:///path/to/redis.sock (got \"http://x\")"),
        ("REDIS_SENTINELS", "a:1,b:99999", "must be a comma-separated list of host:port (got \"a:1,b:99999\")"),
        ("FCGI_LISTEN", "nohost", "must be a unix socket path (/run/authd/authd.sock) or host:port (127.0.0.1:9000) (got \"nohost\")"),
        ("ACCESS_TOKEN_PREVIOUS_SECRETS", "short", "each comma-separated secret must be at least 32 bytes long"),
        ("REFRESH_TOKEN_SECRET", String(repeating: "a", count: 32), "must differ from ACCESS_TOKEN_SECRET, so that neither kind of token verifies as the other"),
        ("REFRESH_TOKEN_PREVIOUS_SECRETS", String(repeating: "a", count: 32), "no refresh secret may also be an access secret"),
        ("ACCESS_TOKEN_SECRET", "", "is not set. Generate one with `authd keygen` (or `openssl rand -base64 32`) and put it in the environment or .env"),
        ("ACCESS_TOKEN_SECRET", "short", "must be at least 32 bytes long (got 5). Generate one with `authd keygen`"),
    ])
    func messagesAreUnchanged(_ name: String, _ value: String, _ message: String) {
        do {
            _ = try Config(env: ConfigTests.base.merging([name: value]) { $1 })
            Issue.record("\(name)=\(value) accepted")
        } catch {
            #expect(error == ConfigError(name, message))
        }
    }
}
