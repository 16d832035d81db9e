import ArgumentParser
import AuthCore
import AuthCrypto
import Glibc
import Logging

/// `authd`: the JWT authentication service as a FastCGI responder.
@main
struct Authd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authd",
        abstract: "JWT authentication service (FastCGI responder behind nginx).",
        discussion: """
            Exit status: 0 success; 1 invalid configuration or the service could not start \
            (the message says why, on stderr); 64 bad command line.
            """,
        version: Version.current,
        subcommands: [Serve.self, Keygen.self, CheckConfig.self, ConfigTable.self, Version.self],
        defaultSubcommand: Serve.self
    )
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version of authd.")
    /// Bumped with each release; `authd --version` prints the same.
    static let current = "0.5.0"

    func run() {
        print("authd \(Self.current)")
    }
}

struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "dotenv file read after the environment (the environment wins).")
    var envFile: String = ".env"

    func load() async throws -> Config {
        do {
            return try await ConfigLoader.load(envFile: envFile, cores: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        } catch let error as ConfigError {
            writeToStandardError("authd: configuration error: \(error)\n")
            throw ExitCode(1)
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve FastCGI requests (the default).")
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try await options.load()
        if config.logFormat == "text" {
            LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        } else {
            LoggingSystem.bootstrap { JSONLogHandler(label: $0) }
        }
        var logger = Logger(label: "authd")
        logger.logLevel = Logger.Level(rawValue: config.logLevel) ?? .info
        do {
            try Server.run(config, logger: logger)
        } catch {
            logger.critical("cannot start", metadata: ["cause": "\(error)"])
            throw ExitCode(1)
        }
    }
}

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a fresh random secret (32 bytes, base64url) for ACCESS_TOKEN_SECRET or REFRESH_TOKEN_SECRET.",
        discussion: "With JWT_ALG=EdDSA the Ed25519 key is derived from the same kind of secret.")

    func run() throws {
        print(try Secrets.generate())
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the configuration and print a summary without secrets; exit 1 if it is invalid.")
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try await options.load()
        let (access, refresh) = try Server.keys(config)
        // Every variable, defaults included, from Config.variables; secrets only as set.
        print((["configuration ok", "access kid=\(access.signing.kid) refresh kid=\(refresh.signing.kid)"] + config.summary)
            .joined(separator: "\n  "))
    }
}

struct ConfigTable: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-table",
        abstract: "Print the README's configuration table (markdown), generated from the declarations in Config.variables.")

    func run() {
        print(Config.markdownTable, terminator: "")
    }
}


/// Writes straight to fd 2 (Glibc's `stderr` is a global the concurrency checker refuses).
func writeToStandardError(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
