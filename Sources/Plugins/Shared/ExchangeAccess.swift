import Exchange
import Foundation
import Host

/// The process's exchange clients, one per base URL and key (DESIGN.md §8: one client shared by
/// every plugin, so request weight and the 429 back-off are tracked in one place).
public enum ExchangeAccess {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var clients: [String: BinanceFutures] = [:]

    /// The client for the node config's `exchange:` section; a plugin that needs it and finds no
    /// section fails at start with what to add.
    public static func client(_ setup: PluginSetup, plugin: String) throws -> BinanceFutures {
        guard let settings = setup.exchange else {
            throw PluginError.contract("\(plugin) needs the node config's exchange: section "
                                       + "(exchange: { base_url: ..., key_env: QT_API_KEY, secret_env: QT_API_SECRET })")
        }
        let credentials = try credentials(settings)
        let key = settings.baseURL + "|" + credentials.apiKey
        return lock.withLock {
            if let existing = clients[key] { return existing }
            let client = BinanceFutures(config: ExchangeConfig(baseURL: settings.baseURL), credentials: credentials)
            clients[key] = client
            return client
        }
    }

    static func credentials(_ settings: ExchangeSettings) throws -> Credentials {
        func read(_ path: String, what: String) throws -> String {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw PluginError.contract("exchange.\(what)_file names \(path), which cannot be read")
            }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if let keyFile = settings.keyFile, let secretFile = settings.secretFile {
            return Credentials(apiKey: try read(keyFile, what: "key"), secret: try read(secretFile, what: "secret"))
        }
        do {
            return try Credentials.fromEnvironment(keyVariable: settings.keyVariable, secretVariable: settings.secretVariable)
        } catch {
            throw PluginError.contract("exchange credentials: \(error)")
        }
    }
}
