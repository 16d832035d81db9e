import AuthCore
import Configuration
import SystemPackage

/// Reads every variable of `Config.variables` (their names: `Config.variableNames`) from the environment and from a `.env`
/// file (the environment wins), then validates them once.
enum ConfigLoader {
    static func load(envFile: String, cores: Int) async throws -> Config {
        let secrets = SecretsSpecifier<String, String>.specific(Set(Config.secretVariables))
        let reader = ConfigReader(providers: [
            EnvironmentVariablesProvider(secretsSpecifier: secrets),
            try await EnvironmentVariablesProvider(environmentFilePath: FilePath(envFile), allowMissing: true, secretsSpecifier: secrets),
        ])
        var env = [String: String]()
        for name in Config.variableNames {
            if let value = reader.string(forKey: ConfigKey(name)) { env[name] = value }
        }
        return try Config(env: env, cores: cores)
    }
}
