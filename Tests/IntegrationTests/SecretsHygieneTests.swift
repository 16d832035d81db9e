import Foundation
import Testing

/// No token, password, hash or secret ever reaches a log line or an error message: every
/// route and its failures run on a stack logging at trace level, then every log of the
/// stack (authd, nginx error and access logs, Redis) and every answer is searched.
@Suite("Secrets hygiene")
struct SecretsHygieneTests {
    @Test func logsAndErrorsCarryNoSecrets() throws {
        // One authd, so that every event is in its one log.
        let stack = try Stack.start(Stack.oneInstance.merging(["LOG_LEVEL": "trace", "REDIS_TIMEOUT": "0.5", "LOGIN_USER_MAX_FAILURES": "2"]) { $1 })
        defer { stack.shutdown() }
        let password = "hygiene pass \(UUID().uuidString)"
        let wrong = "hygiene wrong \(UUID().uuidString)"
        var secrets = [Secrets.access, Secrets.refresh, password, wrong]
        var answers: [HTTPResponse] = []
        func keep(_ response: HTTPResponse) -> HTTPResponse { answers.append(response); return response }
        func remember(_ pair: TokenPair) {
            for token in [pair.access, pair.refresh] {
                secrets.append(token)
                secrets.append(String(token.split(separator: ".").last ?? ""))  // the signature alone
            }
        }

        let username = uniqueName("hygiene")
        let first = try TokenPair(keep(try stack.register(username, password)))
        remember(first)
        _ = keep(try stack.login(username, wrong))
        let second = try TokenPair(keep(try stack.login(username, password)))
        remember(second)
        _ = keep(try stack.home(second.access))
        _ = keep(try stack.me(second.access))
        let third = try TokenPair(keep(try stack.refresh(second.refresh)))
        remember(third)
        #expect(keep(try stack.refresh(second.refresh)).status == 403)  // a replay, logged
        _ = keep(try stack.logout(third.refresh))
        _ = keep(try stack.logout(first.refresh))
        // Malformed and hostile input that carries the secrets.
        let tampered = String(first.access.dropLast(2)) + "xx"
        _ = keep(try stack.home(tampered))
        _ = keep(try stack.get("/", authorization: "Basic " + password))
        _ = keep(try stack.call("POST", "/auth/login", body: Array(#"{"username":"\#(username)","password":"\#(password)""#.utf8)))
        _ = keep(try stack.call("POST", "/auth/login", body: Array(#"{"username":"\#(username)","password":"\#(password)","x":1}"#.utf8)))
        _ = keep(try stack.call("POST", "/auth/refresh-token", body: Array(#"{"refreshToken":"\#(tampered)"}"#.utf8)))
        _ = keep(try stack.call("POST", "/auth/refresh-token", json: ["refreshToken": third.access]))
        _ = keep(try stack.call("POST", "/auth/register", json: ["username": username, "password": password]))
        for _ in 0..<3 { _ = keep(try stack.login(username, wrong)) }  // into the throttle
        // The store away: its errors are logged with their cause.
        stack.pauseRedis()
        let outage = keep(try stack.login(username, password))
        let outageRefresh = keep(try stack.refresh(third.refresh))
        stack.resumeRedis()
        #expect(outage.status == 503 && outageRefresh.status == 503)
        let hash = try runCommand("redis-cli", ["-s", stack.redisSocket, "--scan", "--pattern", "auth:user:*"], directory: stack.dir)
            .output.split(separator: "\n").compactMap { key in
                try? runCommand("redis-cli", ["-s", stack.redisSocket, "HGET", String(key), "hash"], directory: stack.dir).output
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
        #expect(hash.contains { $0.hasPrefix("$2b$") }, "the user's bcrypt hash: \(hash)")
        secrets += hash.filter { !$0.isEmpty }
        let checked = try runCommand(Stack.authdBinary, ["check-config"], environment: stack.environment, directory: stack.dir)
        #expect(checked.output.contains("configuration ok"), "\(checked.output)")

        _ = stack.stopAuthd()
        // nginx writes a request's access-log line after the answer has gone out: wait
        // (up to 5 s on a loaded machine) for the line of the last one, a 503.
        for _ in 0..<100 {
            let access = (try? String(contentsOfFile: stack.dir + "/nginx/logs/access.log", encoding: .utf8)) ?? ""
            if access.contains("\"status\":503,") { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let logFiles = [stack.authdLogPath, stack.dir + "/nginx/stderr.log", stack.dir + "/nginx/logs/access.log", stack.dir + "/redis.log"]
        let logs = logFiles.map { (try? String(contentsOfFile: $0, encoding: .utf8)) ?? "" }
        // The logs are really there and say what happened, without the secrets.
        #expect(logs[0].contains("refresh token replayed") && logs[0].contains("store unavailable"), "authd log:\n\(logs[0])")
        for status in [201, 401, 403, 429, 503] {
            let logged = logs[2].contains("\"status\":\(status),")
            #expect(logged, "no \(status) in the access log")
        }
        let errors = answers.filter { $0.status >= 400 }
        let texts = logs + errors.map { String(decoding: $0.body, as: UTF8.self) } + [checked.output]
        let names = logFiles + errors.map { "answer \($0.status)" } + ["check-config"]
        for secret in secrets where !secret.isEmpty {
            for (name, text) in zip(names, texts) {
                let leaked = text.contains(secret)
                #expect(!leaked, "\(name) contains a secret (\(secret.prefix(12))...)")
            }
        }
    }
}
