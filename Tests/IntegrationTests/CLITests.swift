import Foundation
import Testing

/// The command line: subcommands, their help, and exit codes scripts can rely on.
@Suite("Command line")
struct CLITests {
    private func authd(_ arguments: [String], environment: [String: String] = ["PATH": Stack.path]) throws -> (Termination, String) {
        let dir = try Stack.makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try runCommand(Stack.authdBinary, arguments, environment: environment, directory: dir)
        return (result.termination, result.output)
    }

    @Test func versionInTwoSpellings() throws {
        let (status, output) = try authd(["version"])
        #expect(status == .exited(0) && output.hasPrefix("authd ") && output.contains("."), "\(output)")
        let (status2, output2) = try authd(["--version"])
        #expect(status2 == .exited(0) && output.contains(output2.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    @Test(arguments: [[], ["serve"], ["keygen"], ["check-config"], ["config-table"], ["version"]])
    func everySubcommandHasHelp(_ subcommand: [String]) throws {
        let (status, output) = try authd(subcommand + ["--help"])
        #expect(status == .exited(0) && output.contains("USAGE"), "\(output)")
    }

    /// What `authd config-table` prints is the README's table, word for word.
    @Test func configTablePrintsTheReadmeTable() throws {
        let (status, output) = try authd(["config-table"])
        let readme = try String(contentsOfFile: Stack.repoRoot + "/README.md", encoding: .utf8)
        #expect(status == .exited(0) && output.hasPrefix("| Variable | Default | Meaning |\n") && readme.contains(output), "\(output)")
    }

    /// check-config shows every variable, defaults included, and the keys' ids.
    @Test func checkConfigShowsEveryVariable() throws {
        let secrets = ["ACCESS_TOKEN_SECRET": String(repeating: "k", count: 32), "REFRESH_TOKEN_SECRET": String(repeating: "r", count: 32)]
        let (status, output) = try authd(["check-config"], environment: secrets.merging(["PATH": Stack.path]) { $1 })
        let lines = output.split(separator: "\n")
        #expect(status == .exited(0) && lines.first == "configuration ok" && lines.count == 30, "\(output)")
        #expect(lines.contains { $0.hasPrefix("  access kid=") } && lines.contains("  ACCESS_TOKEN_SECRET=(set)"), "\(output)")
        #expect(lines.contains("  ACCESS_TOKEN_TTL=3600s") && lines.contains("  REDIS_URL=redis://127.0.0.1:6379/0"), "\(output)")
        #expect(!output.contains("kkkk") && !output.contains("rrrr"), "a secret: \(output)")
    }

    @Test func exitCodes() throws {
        #expect(try authd(["--no-such-flag"]).0 == .exited(64))
        #expect(try authd(["no-such-command", "extra"]).0 == .exited(64))
        // No secrets: a configuration error, named on stderr.
        let (status, output) = try authd(["check-config"])
        #expect(status == .exited(1) && output.contains("ACCESS_TOKEN_SECRET"), "\(output)")
        let (keyStatus, key) = try authd(["keygen"])
        #expect(keyStatus == .exited(0) && key.trimmingCharacters(in: .whitespacesAndNewlines).utf8.count >= 32)
    }
}
