import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The production files of `deploy/`: nginx's configuration checked by `nginx -t` and
/// served over TLS as it is (only its paths and ports moved), the local configuration
/// `scripts/nginx-conf.sh` derives from it, and the systemd units.
@Suite("Deploy files")
struct DeployFilesTests {
    static let productionConf = Stack.repoRoot + "/deploy/nginx.conf"
    static let nginxConfScript = Stack.repoRoot + "/scripts/nginx-conf.sh"
    static let units = ["authd.socket", "authd.service"].map { Stack.repoRoot + "/deploy/systemd/" + $0 }

    static var nginx: String {
        FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx"
    }

    /// A tool on `Stack.path`, nil when it is not installed.
    static func tool(_ name: String) -> String? {
        Stack.path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static let systemdAnalyze = tool("systemd-analyze")

    private func run(_ executable: String, _ arguments: [String], in dir: String,
                     environment: [String: String] = ["PATH": Stack.path], timeout: Double = 30) throws -> (termination: Termination, output: String) {
        try runCommand(executable, arguments, environment: environment, directory: dir, timeout: timeout)
    }

    /// A temporary folder, removed when `body` returns unless KEEP_IT_DIRS is set.
    private func withTempDir<T>(_ body: (String) throws -> T) throws -> T {
        let dir = try Stack.makeTempDir()
        defer {
            if ProcessInfo.processInfo.environment["KEEP_IT_DIRS"] == nil { try? FileManager.default.removeItem(atPath: dir) }
        }
        return try body(dir)
    }

    // MARK: the production nginx.conf

    /// A self-signed certificate for localhost and 127.0.0.1 (`cert.pem`, `key.pem` in `dir`).
    private func makeCertificate(in dir: String) throws {
        let result = try run("openssl", [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem",
        ], in: dir)
        try #require(result.termination == .exited(0), "openssl req: \(result.output)")
    }

    /// The production file with every path it would touch moved into `dir` (which gets
    /// `logs/`, `lib/` and a certificate), and `rewriteLine` applied to each line.
    /// Fails when one of the production paths is no longer there: a renamed path
    /// would otherwise reach the real /var/log or /etc/ssl in the test.
    private func relocatedProductionConf(in dir: String, rewriteLine: (String) -> String? = { $0 }) throws -> String {
        for sub in ["logs", "lib"] {
            try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true)
        }
        try makeCertificate(in: dir)
        var text = try String(contentsOfFile: Self.productionConf, encoding: .utf8)
        let moves = [
            ("/run/nginx.pid", dir + "/nginx.pid"),
            ("/var/log/nginx/", dir + "/logs/"),
            ("/var/lib/nginx/", dir + "/lib/"),
            ("/etc/ssl/certs/authd.pem", dir + "/cert.pem"),
            ("/etc/ssl/private/authd.key", dir + "/key.pem"),
            ("unix:/run/authd/authd.sock", "unix:" + dir + "/authd.sock"),
        ]
        for (from, to) in moves {
            try #require(text.contains(from), "deploy/nginx.conf no longer mentions \(from)")
            text = text.replacingOccurrences(of: from, with: to)
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).compactMap { rewriteLine(String($0)) }
        let path = dir + "/nginx.conf"
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `nginx -t` on deploy/nginx.conf itself: TLS, HTTP/2, the upstream, every error
    /// page. Only its paths are moved. No warning may come out (one about `user` is
    /// expected when not root: the directive needs a root master).
    @Test func productionNginxConfPassesNginxT() throws {
        try withTempDir { dir in
            let conf = try relocatedProductionConf(in: dir)
            let result = try run(Self.nginx, ["-t", "-c", conf], in: dir)
            #expect(result.termination == .exited(0), "nginx -t: \(result.output)")
            #expect(result.output.contains("syntax is ok") && result.output.contains("test is successful"), "\(result.output)")
            let complaints = result.output.split(separator: "\n").filter {
                ($0.contains("[warn]") || $0.contains("[emerg]") || $0.contains("[alert]"))
                    && !(getuid() != 0 && $0.contains("\"user\" directive makes sense only if the master process runs with super-user privileges"))
            }
            #expect(complaints.isEmpty, "nginx -t complained:\n\(complaints.joined(separator: "\n"))")
        }
    }

    /// The commented example of a protected location, uncommented as a user would, with
    /// deploy/nginx/protect.conf installed beside the file as authd/protect.conf: nginx
    /// accepts it without a warning (the three lines of docs/gateway.md are complete).
    @Test func theProductionExampleOfAProtectedLocationPassesNginxT() throws {
        try withTempDir { dir in
            try FileManager.default.createDirectory(atPath: dir + "/authd", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Stack.repoRoot + "/deploy/nginx/protect.conf", toPath: dir + "/authd/protect.conf")
            var uncommented = 0
            let conf = try relocatedProductionConf(in: dir) { line in
                let example = ["location /app/ {", "include authd/protect.conf;", "auth_request /_authd/verify;",
                               "proxy_pass http://127.0.0.1:9000;", "}"]
                let body = line.trimmingCharacters(in: .whitespaces)
                guard body.hasPrefix("#   "), example.contains(body.dropFirst(1).trimmingCharacters(in: .whitespaces)) else { return line }
                uncommented += 1
                return String(body.dropFirst(1))
            }
            #expect(uncommented == 5, "the example in deploy/nginx.conf changed shape")
            let result = try run(Self.nginx, ["-t", "-c", conf], in: dir)
            #expect(result.termination == .exited(0), "nginx -t: \(result.output)")
            let complaints = result.output.split(separator: "\n").filter {
                ($0.contains("[warn]") || $0.contains("[emerg]"))
                    && !(getuid() != 0 && $0.contains("\"user\" directive makes sense only if the master process runs with super-user privileges"))
            }
            #expect(complaints.isEmpty, "nginx -t complained:\n\(complaints.joined(separator: "\n"))")
        }
    }

    /// `curl` (HTTPS) and the output of `curl -i`, parsed.
    private func curl(_ arguments: [String], in dir: String) throws -> (termination: Termination, response: HTTPResponse?, output: String) {
        let result = try run("curl", ["-sS", "-i", "--max-time", "10"] + arguments, in: dir)
        return (result.termination, try? HTTPResponse.parse(Array(result.output.utf8)), result.output)
    }

    /// The production file served as it is, on two loopback ports instead of 443 and 80,
    /// in front of an authd of its own: TLS 1.2 and 1.3 only, the intermediate suites,
    /// HTTP/2, HSTS on HTTPS answers, the JSON 426 on plain HTTP (health checks from
    /// loopback excepted), the JSON 400 for plain HTTP sent to the TLS port.
    @Test func productionNginxConfServesHTTPSAndRefusesPlainHTTP() throws {
        try #require(Self.tool("curl") != nil, "curl is needed (scripts/deps.sh installs it)")
        let stack = try Stack.start(["WORKERS": "128"])
        defer { stack.shutdown() }
        try withTempDir { dir in
            var nginx: ChildProcess?
            var ports: (tls: UInt16, plain: UInt16) = (0, 0)
            defer { nginx?.stop() }
            for attempt in 1...3 {
                ports = (try freeLoopbackPort(), try freeLoopbackPort())
                let conf = try relocatedProductionConf(in: dir) { line in
                    let trimmed = line.trimmingCharacters(in: .whitespaces)
                    if trimmed.hasPrefix("listen ") {
                        if trimmed.contains("[::]") { return nil }
                        return trimmed.contains(" ssl ")
                            ? "        listen 127.0.0.1:\(ports.tls) ssl http2 default_server;"
                            : "        listen 127.0.0.1:\(ports.plain) default_server;"
                    }
                    // As root, workers of the test's own user (authd's socket is 0660 root's);
                    // not root, `user` would only be ignored with a warning.
                    if trimmed.hasPrefix("user ") { return getuid() == 0 ? "user root;" : nil }
                    return line.replacingOccurrences(of: "unix:" + dir + "/authd.sock", with: "unix:" + stack.authdSocket)
                }
                let errorLog = dir + "/nginx-\(attempt).err"
                let child = try ChildProcess(
                    name: "nginx", executable: Self.nginx, arguments: ["-c", conf, "-g", "daemon off;"],
                    environment: ["PATH": Stack.path], directory: dir, stdoutPath: errorLog, stderrPath: errorLog)
                nginx = child
                let probe = HTTPClient(port: ports.plain, timeout: 2)
                let deadline = Date().addingTimeInterval(20)
                while Date() < deadline, child.isRunning, (try? probe.request("GET", "/healthz"))?.status != 200 {
                    usleep(20_000)
                }
                if child.isRunning { break }
                let log = (try? String(contentsOfFile: errorLog, encoding: .utf8)) ?? ""
                nginx = nil
                try #require(log.contains("Address already in use") && attempt < 3, "nginx did not start: \(log)")
            }
            let tls = ports.tls
            let base = "https://localhost:\(tls)"
            let trust = ["--cacert", dir + "/cert.pem", "--resolve", "localhost:\(tls):127.0.0.1"]

            // HTTPS with HTTP/2 (ALPN), HSTS, the request id, authd behind it.
            let health = try curl(trust + ["--http2", base + "/healthz"], in: dir)
            #expect(health.output.hasPrefix("HTTP/2 200"), "\(health.output)")
            #expect(health.response?.header("Strict-Transport-Security") == "max-age=63072000", "\(health.output)")
            #expect(health.response?.header("X-Request-Id")?.isEmpty == false, "\(health.output)")
            let name = uniqueName("tls")
            let body = "{\"username\":\"\(name)\",\"password\":\"\(validPassword)\"}"
            let registered = try curl(trust + ["--http2", "-H", "Content-Type: application/json", "--data-binary", body, base + "/auth/register"], in: dir)
            #expect(registered.response?.status == 201, "\(registered.output)")
            if let response = registered.response { _ = try expectTokens(response, status: 201) }
            let missing = try curl(trust + [base + "/no/such/route"], in: dir)
            if let response = missing.response { expectError(response, status: 404) } else { Issue.record("\(missing.output)") }

            // TLS 1.2 and 1.3 both work; TLS 1.2 with a suite outside the list does not.
            for version in [["--tlsv1.2", "--tls-max", "1.2"], ["--tlsv1.3"]] {
                let answer = try curl(trust + version + ["--http1.1", base + "/healthz"], in: dir)
                #expect(answer.response?.status == 200, "\(version): \(answer.output)")
            }
            let weak = try curl(trust + ["--tlsv1.2", "--tls-max", "1.2", "--ciphers", "AES128-SHA", base + "/healthz"], in: dir)
            #expect(weak.termination != .exited(0) && weak.response == nil, "TLS 1.2 with AES128-SHA: \(weak.output)")

            // Plain HTTP: the JSON 426 with Upgrade, nothing reaches authd; local health checks pass.
            let plain = HTTPClient(port: ports.plain)
            let login = try plain.request("POST", "/auth/login", headers: [("Content-Type", "application/json")], body: Array(body.utf8))
            expectError(login, status: 426)
            #expect(login.header("Upgrade")?.contains("TLS/1.2") == true, "\(login)")
            #expect(login.header("Strict-Transport-Security") == nil, "HSTS over plain HTTP: \(login)")
            expectError(try plain.request("GET", "/"), status: 426)
            for path in ["/healthz", "/readyz"] {
                let answer = try plain.request("GET", path)
                #expect(answer.status == 200, "\(path): \(answer)")
                #expect(answer.header("Strict-Transport-Security") == nil, "\(answer)")
            }
            // Plain HTTP sent to the TLS port: nginx's 497, as a JSON 400.
            let wrongPort = try HTTPClient(port: tls).request("GET", "/healthz")
            expectError(wrongPort, status: 400, message: "Plain HTTP request sent to the HTTPS port: use https://")
        }
    }

    // MARK: the local configuration (scripts/nginx-conf.sh)

    /// What `make run` and the tests use: plain HTTP, no TLS line left, `limit_req`
    /// only with NGINX_RATE_LIMIT=on, and nginx accepts it.
    @Test(arguments: ["off", "on"])
    func localConfigPassesNginxT(rateLimit: String) throws {
        try withTempDir { dir in
            let prefix = dir + "/nginx"
            let result = try run("bash", [Self.nginxConfScript, prefix, "127.0.0.1:8080", dir + "/authd.sock"], in: dir,
                                 environment: ["PATH": Stack.path, "NGINX_RATE_LIMIT": rateLimit])
            try #require(result.termination == .exited(0), "nginx-conf.sh: \(result.output)")
            let conf = prefix + "/nginx.conf"
            try result.output.write(toFile: conf, atomically: true, encoding: .utf8)
            let directives = result.output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.hasPrefix("#") }
            // The demo application's server (scripts/nginx-demo-upstream.conf) listens on a socket in PREFIX.
            let demo = "listen unix:\(prefix)/demo-app.sock;"
            let leftovers = directives.filter {
                $0.hasPrefix("ssl") || $0.hasPrefix("http2") || $0.contains("Strict-Transport-Security")
                    || $0.contains("if ($authd_https_required)") || ($0.hasPrefix("listen") && $0 != "listen 127.0.0.1:8080;" && $0 != demo)
            }
            #expect(leftovers.isEmpty, "TLS-only lines in the local config: \(leftovers)")
            #expect(directives.filter { $0.hasPrefix("listen") } == [demo, "listen 127.0.0.1:8080;"])
            #expect(directives.contains("include authd/protect.conf;"), "the demo application is behind the gateway")
            #expect(FileManager.default.fileExists(atPath: prefix + "/authd/protect.conf"))
            #expect(directives.contains { $0.hasPrefix("limit_req zone=") } == (rateLimit == "on"))
            #expect(directives.contains("server \"unix:\(dir)/authd.sock\" max_fails=3 fail_timeout=10s;"), "upstream server line")
            let check = try run(Self.nginx, ["-t", "-p", prefix, "-c", conf, "-g", "daemon off;"], in: dir)
            #expect(check.termination == .exited(0), "nginx -t on the local config: \(check.output)")
        }
    }

    /// nginx-conf.sh refuses a production file it cannot rewrite safely, instead of
    /// producing a config that still has TLS in it (or lost a line it should have kept).
    @Test(arguments: [
        ("split ssl_ciphers", "ssl_ciphers ECDHE", "ssl_ciphers\n            ECDHE", "keep ssl_ciphers on one line"),
        ("no HSTS", "add_header Strict-Transport-Security $authd_hsts always;", "", "add_header-Strict-Transport-Security"),
        ("no 426", "if ($authd_https_required) { return 426; }", "", "if($authd_https_required)"),
        ("no TLS listen", "listen 443 ssl http2 default_server;", "", "listen(ssl)"),
        ("no demo application", "#@local-include scripts/nginx-demo-app.conf", "", "#@local-include(2)"),
    ])
    func nginxConfScriptRefusesAnUnexpectedShape(change: String, from: String, to: String, complaint: String) throws {
        try withTempDir { dir in
            for sub in ["scripts", "deploy"] { try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true) }
            for file in ["scripts/nginx-conf.sh", "scripts/nginx-demo-app.conf", "scripts/nginx-demo-upstream.conf", "deploy/nginx"] {
                try FileManager.default.copyItem(atPath: Stack.repoRoot + "/" + file, toPath: dir + "/" + file)
            }
            var text = try String(contentsOfFile: Self.productionConf, encoding: .utf8)
            try #require(text.contains(from), "\(change): deploy/nginx.conf has no \(from)")
            text = text.replacingOccurrences(of: from, with: to)
            if change == "no TLS listen" { text = text.replacingOccurrences(of: "listen [::]:443 ssl http2 default_server;", with: "") }
            try text.write(toFile: dir + "/deploy/nginx.conf", atomically: true, encoding: .utf8)
            let result = try run("bash", [dir + "/scripts/nginx-conf.sh", dir + "/nginx", "127.0.0.1:8080", dir + "/authd.sock"], in: dir)
            #expect(result.termination != .exited(0), "\(change): accepted")
            #expect(result.output.contains(complaint), "\(change): \(result.output.suffix(600))")
        }
    }

    // MARK: systemd units

    /// `systemd-analyze verify` on the units, with ExecStart pointed at the authd just
    /// built (verify wants the binary to exist), and `systemd-analyze security` on the
    /// service: the hardening must keep its exposure at or below 2.0 ("OK").
    @Test(.enabled(if: DeployFilesTests.systemdAnalyze != nil,
                   "systemd-analyze is not installed (Debian package systemd); the units are not checked"))
    func systemdUnitsVerify() throws {
        let analyze = try #require(Self.systemdAnalyze)
        try withTempDir { dir in
            for unit in Self.units {
                var text = try String(contentsOfFile: unit, encoding: .utf8)
                if unit.hasSuffix(".service") {
                    try #require(text.contains("ExecStart=/usr/local/bin/authd serve"), "authd.service: ExecStart changed")
                    text = text.replacingOccurrences(of: "ExecStart=/usr/local/bin/authd", with: "ExecStart=" + Stack.authdBinary)
                }
                try text.write(toFile: dir + "/" + URL(fileURLWithPath: unit).lastPathComponent, atomically: true, encoding: .utf8)
            }
            let files = [dir + "/authd.socket", dir + "/authd.service"]
            let verify = try run(analyze, ["verify", "--man=no"] + files, in: dir)
            #expect(verify.termination == .exited(0), "systemd-analyze verify: \(verify.output)")
            // Warnings (unknown keys, bad values) do not change the exit status.
            let ours = verify.output.split(separator: "\n").filter { $0.contains("authd.") }
            #expect(ours.isEmpty, "systemd-analyze verify:\n\(ours.joined(separator: "\n"))")

            let security = try run(analyze, ["security", "--offline=yes", "--threshold=20", dir + "/authd.service"], in: dir)
            let overall = security.output.split(separator: "\n").first { $0.contains("Overall exposure level") } ?? "(none)"
            #expect(security.termination == .exited(0), "exposure above 2.0: \(overall)\n\(security.output.split(separator: "\n").filter { $0.contains("✗") }.joined(separator: "\n"))")

            // The password lane lowers its threads' priority (SCHED_IDLE, nice 19): the
            // filter must keep allowing that (@system-service includes @resources).
            let service = try String(contentsOfFile: dir + "/authd.service", encoding: .utf8)
            #expect(service.contains("SystemCallFilter=@system-service"))
            let systemService = try run(analyze, ["syscall-filter", "@system-service"], in: dir).output
            let resources = try run(analyze, ["syscall-filter", "@resources"], in: dir).output
            #expect(systemService.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == "@resources" },
                    "@system-service no longer includes @resources: \(systemService)")
            for call in ["sched_setscheduler", "setpriority"] {
                #expect(resources.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == call }, "@resources lacks \(call)")
            }
            for denied in ["@resources", "sched_setscheduler", "setpriority"] {
                #expect(!service.split(separator: "\n").contains { $0.hasPrefix("SystemCallFilter=~") && $0.contains(denied) },
                        "authd.service denies \(denied)")
            }
        }
    }
}
