import Exchange
import Foundation
import Host
import Synchronization

/// The exchange clients of one host, one per base URL and key (DESIGN.md §8: one client shared by
/// every plugin, so request weight and the 429 back-off are tracked in one place). The composition
/// root (`qt`, a test) makes one and hands it to the registrations of the plugins that trade or
/// read the market; plugins never build a client themselves.
public final class ExchangeClients: Sendable {
    private let connect: @Sendable (ExchangeSettings) throws -> any FuturesExchange
    private let clients = Mutex<[String: any FuturesExchange]>([:])

    /// Clients built by `connect` from the node config's `exchange:` section.
    public init(connect: @escaping @Sendable (ExchangeSettings) throws -> any FuturesExchange = ExchangeClients.binance) {
        self.connect = connect
    }

    /// Every plugin gets `client`, whatever the node config says.
    public convenience init(_ client: any FuturesExchange) {
        self.init(connect: { _ in client })
    }

    /// The client for the node config's `exchange:` section; a plugin that needs it and finds no
    /// section fails at start with what to add.
    public func client(_ setup: PluginSetup, plugin: String) throws -> any FuturesExchange {
        guard let settings = setup.exchange else {
            throw PluginError.contract("\(plugin) needs the node config's exchange: section "
                                       + "(exchange: { base_url: ..., key_env: QT_API_KEY, secret_env: QT_API_SECRET })")
        }
        let key = [settings.baseURL, settings.keyFile ?? settings.keyVariable, settings.secretFile ?? settings.secretVariable]
            .joined(separator: "|")
        return try clients.withLock { clients in
            if let existing = clients[key] { return existing }
            let client = try connect(settings)
            clients[key] = client
            return client
        }
    }

    /// The Binance client for a node config's section, with credentials from the files it names
    /// or else from the environment variables it names.
    @Sendable public static func binance(_ settings: ExchangeSettings) throws -> any FuturesExchange {
        var config = ExchangeConfig(baseURL: settings.baseURL)
        config.weightShare = settings.weightShare
        return BinanceFutures(config: config, credentials: try credentials(settings))
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
