import Foundation
import Testing

/// REDIS_SENTINELS: authd finds the primary through Redis Sentinel and follows a
/// failover without a restart. A primary, a replica and one sentinel on loopback.
@Suite("Redis Sentinel failover")
struct SentinelTests {
    /// Processes of the test, stopped at the end.
    final class Processes: @unchecked Sendable {
        let dir: String
        var children: [String: ChildProcess] = [:]
        init() throws { dir = try Stack.makeTempDir() }

        func redis(_ name: String, _ arguments: [String]) throws {
            children[name] = try ChildProcess(
                name: name, executable: "redis-server", arguments: arguments, environment: ["PATH": Stack.path],
                directory: dir, stdoutPath: "\(dir)/\(name).log", stderrPath: "\(dir)/\(name).log")
        }

        func cli(_ port: UInt16, _ arguments: String...) -> String {
            (try? runCommand("redis-cli", ["-p", String(port)] + arguments, environment: ["PATH": Stack.path], directory: dir).output) ?? ""
        }

        func stopAll() {
            for child in children.values { _ = child.stop(grace: 2) }
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    /// Polls `condition` every 0.1 s for up to `seconds`; the time it took, or nil.
    private func within(_ seconds: Double, _ condition: () -> Bool) -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            if condition() { return Date().timeIntervalSince(start) }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return nil
    }

    @Test func authdFollowsAFailover() throws {
        let p = try Processes()
        defer { p.stopAll() }
        let primary = try freeLoopbackPort(), replica = try freeLoopbackPort(), sentinel = try freeLoopbackPort()
        let common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0"]
        try p.redis("primary", ["--port", String(primary)] + common)
        try p.redis("replica", ["--port", String(replica), "--replicaof", "127.0.0.1", String(primary)] + common)
        try """
            port \(sentinel)
            bind 127.0.0.1
            sentinel monitor authd 127.0.0.1 \(primary) 1
            sentinel down-after-milliseconds authd 1000
            sentinel failover-timeout authd 5000
            """.write(toFile: p.dir + "/sentinel.conf", atomically: true, encoding: .utf8)
        try p.redis("sentinel", [p.dir + "/sentinel.conf", "--sentinel"])
        try #require(within(20) { p.cli(replica, "INFO", "replication").contains("master_link_status:up") } != nil,
                     "the replica never synced")
        try #require(within(20) { p.cli(sentinel, "SENTINEL", "replicas", "authd").contains(String(replica)) } != nil,
                     "the sentinel never saw the replica")

        let stack = try Stack.start(["REDIS_URL": "redis://127.0.0.1:1/0", "REDIS_SENTINELS": "127.0.0.1:\(sentinel)",
                                     "REDIS_SENTINEL_MASTER": "authd", "REDIS_TIMEOUT": "0.5"])
        defer { stack.shutdown() }
        let user = try stack.newUser("sentinel")
        let next = try stack.rotate(user.tokens.refresh)
        #expect(p.cli(primary, "DBSIZE") != "0\n")
        // Replication is asynchronous: a write not yet on the replica is lost in a
        // failover (docs/operations.md, "Scaling out"). The test is about following the failover, so
        // it waits until the replica has everything the primary has. (WAIT from another
        // connection would not do: it only waits for that connection's own writes.)
        func offset(_ port: UInt16, _ field: String) -> Int? {
            p.cli(port, "INFO", "replication").split(whereSeparator: \.isNewline)
                .first { $0.hasPrefix(field + ":") }.flatMap { Int($0.split(separator: ":")[1]) }
        }
        try #require(within(10) {
            guard let written = offset(primary, "master_repl_offset"), let copied = offset(replica, "slave_repl_offset") else { return false }
            return copied >= written
        } != nil, "the replica did not catch up with the primary")

        p.children["primary"]?.signal(SIGKILL)
        var last: HTTPResponse?
        var seen: [String] = []
        let recovered = within(30) {
            last = try? stack.login(user.username, user.password)
            if let last, last.status != 503 { seen.append("\(last.status) \(String(decoding: last.body, as: UTF8.self).prefix(80))") }
            return last?.status == 200
        }
        print("sentinel answers other than 503 while recovering: \(seen)")
        let sentinelLog = (try? String(contentsOfFile: p.dir + "/sentinel.log", encoding: .utf8)) ?? ""
        let seconds = try #require(recovered, "no successful login within 30 s of killing the primary; last answer \(last.map { "\($0)" } ?? "none")\n\(stack.logs())\n--- sentinel ---\n\(sentinelLog.suffix(3000))")
        print("sentinel failover: logins succeed again \(String(format: "%.1f", seconds)) s after the primary was killed")
        #expect(p.cli(sentinel, "SENTINEL", "get-master-addr-by-name", "authd").contains(String(replica)))
        // State written before the failover is on the new primary, and writes work there.
        let after = try stack.rotate(next.refresh)
        #expect(try stack.home(after.access).status == 200)
        expectError(try stack.refresh(next.refresh), status: 403)
        // The replay ended the session on the new primary, and its announcement came too.
        try expectSessionEndedSoon { try stack.home(after.access) }
    }
}
