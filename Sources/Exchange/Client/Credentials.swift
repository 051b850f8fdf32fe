import Foundation

/// An API key and secret. Neither is ever printed: `description` shows the key's last four
/// characters only, and the secret not at all.
public struct Credentials: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public let apiKey: String
    package let secret: String

    public init(apiKey: String, secret: String) {
        self.apiKey = apiKey
        self.secret = secret
    }

    public static let defaultKeyVariable = "QT_API_KEY"
    public static let defaultSecretVariable = "QT_API_SECRET"

    /// From environment variables (names from the node config's `key_env` / `secret_env`).
    /// A variable that holds a path starting with `@` is read from that file (`QT_API_SECRET=@/run/secrets/binance`).
    public static func fromEnvironment(keyVariable: String = defaultKeyVariable, secretVariable: String = defaultSecretVariable,
                                       environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Credentials {
        func value(_ name: String) throws -> String {
            guard let raw = environment[name], !raw.isEmpty else {
                throw ExchangeError.invalidRequest("environment variable \(name) is not set (the exchange API \(name == keyVariable ? "key" : "secret"))")
            }
            guard raw.hasPrefix("@") else { return raw }
            let path = String(raw.dropFirst())
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ExchangeError.invalidRequest("\(name) names the file \(path), which cannot be read")
            }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return Credentials(apiKey: try value(keyVariable), secret: try value(secretVariable))
    }

    /// A fresh random pair (the simulator prints one when none is configured).
    public static func generate() -> Credentials {
        func random(_ count: Int) -> String {
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
            return String((0..<count).map { _ in alphabet.randomElement()! })
        }
        return Credentials(apiKey: random(64), secret: random(64))
    }

    /// The secret itself: only for showing a pair the simulator just generated, so the user can
    /// configure a client with it. Nothing else prints it.
    public func revealSecret() -> String { secret }

    /// Writes the pair to `api_key` and `api_secret` in `directory` (mode 0600), for a node
    /// config's `key_file` / `secret_file`; returns their paths.
    public func writeFiles(in directory: URL) throws -> (key: String, secret: String) {
        let key = directory.appendingPathComponent("api_key"), secret = directory.appendingPathComponent("api_secret")
        for (file, text) in [(key, apiKey), (secret, self.secret)] {
            try Data(text.utf8).write(to: file)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
        }
        return (key.path, secret.path)
    }

    public var redactedKey: String { apiKey.count > 4 ? "…" + apiKey.suffix(4) : "…" }
    public var description: String { "Credentials(key \(redactedKey), secret redacted)" }
    public var debugDescription: String { description }
}
