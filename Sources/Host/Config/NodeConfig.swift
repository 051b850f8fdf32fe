package import Bus
import Foundation
import Messages
import Yams

/// A node's YAML config (DESIGN.md §7): which plugins this host runs and with what settings.
/// Anything unknown or mistyped is an error naming the file, line, key and the valid choices;
/// the host does not start with a config it does not understand.
public struct NodeConfig: Sendable {
    public struct PluginEntry: Sendable {
        public let name: String
        public let settings: PluginSettings
        /// A plugin from a shared library (`library:`), loaded while the config was read.
        public let library: PluginRegistration?

        init(name: String, settings: PluginSettings, library: PluginRegistration? = nil) {
            self.name = name
            self.settings = settings
            self.library = library
        }

        /// The library's registration, or the built-in one of that name.
        public func registration(in registry: PluginRegistry) -> PluginRegistration? {
            library ?? registry[name]
        }
    }

    public let file: String
    public let hostID: String
    package let nats: ConnectionOptions
    public let replicas: Int
    public let httpPort: Int
    /// The status server's address: 127.0.0.1 unless the node config's `http_address` opens it
    /// (0.0.0.0 for a Prometheus on another machine).
    public let httpAddress: String
    /// The `exchange:` section; `nil` when the node runs no plugin that trades or reads markets.
    public let exchange: ExchangeSettings?
    public let plugins: [PluginEntry]

    public static func load(path: String, registry: PluginRegistry) throws -> NodeConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, key: "", line: nil, message: "cannot read the file")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path, registry: registry)
    }

    /// One plugin's settings from a YAML mapping, checked exactly as a node config's `plugins.<name>`.
    public static func settings(_ yaml: String, for manifest: PluginManifest, file: String) throws -> PluginSettings {
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigError(file: file, key: "plugins.\(manifest.name)", line: nil, message: "not valid YAML: \(error)")
        }
        guard let node else { return try ConfigReader(file: file).settings(Node(""), plugin: manifest) }
        return try ConfigReader(file: file).settings(node, plugin: manifest)
    }

    public static func parse(_ yaml: String, file: String, registry: PluginRegistry,
                             environment: [String: String] = ProcessInfo.processInfo.environment) throws -> NodeConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigError(file: file, key: "", line: nil, message: "not valid YAML: \(error)")
        }
        let reader = ConfigReader(file: file)
        guard let root else { throw ConfigError(file: file, key: "", line: nil, message: "the file is empty") }
        let top = try reader.mapping(root, key: "", allowed: ["host_id", "nats", "replicas", "http_port", "http_address", "exchange", "plugins"])

        guard let hostNode = top["host_id"] else { throw reader.missing("host_id", in: root) }
        let hostID = try reader.string(hostNode, key: "host_id")
        guard Subjects.isValidToken(hostID) else {
            throw reader.error(hostNode, "host_id", "must be one subject token (no dots, spaces or wildcards)")
        }

        guard let natsNode = top["nats"] else { throw reader.missing("nats", in: root) }
        let nats = try reader.mapping(natsNode, key: "nats", allowed: ["servers", "user", "password", "password_file", "password_env", "token",
                                                                        "token_file", "token_env", "creds", "tls", "identities"])
        guard let serversNode = nats["servers"] else { throw reader.missing("nats.servers", in: natsNode) }
        let servers = try reader.strings(serversNode, key: "nats.servers")
        guard !servers.isEmpty else { throw reader.error(serversNode, "nats.servers", "needs at least one URL") }
        if let withSecret = servers.first(where: { ConnectionOptions.redacted($0) != $0 }) {
            throw reader.error(serversNode, "nats.servers", "\(ConnectionOptions.redacted(withSecret)) carries credentials in the URL; "
                               + "put the user in nats.user and the password in nats.password_file or nats.password_env")
        }
        var options = ConnectionOptions(servers: servers, name: "qt-host-\(hostID)")
        options.user = try nats["user"].map { try reader.string($0, key: "nats.user") }
        options.password = try reader.secret(nats, "password", in: "nats", environment: environment)
        options.token = try reader.secret(nats, "token", in: "nats", environment: environment)
        options.credentialsFile = try nats["creds"].map { try reader.string($0, key: "nats.creds") }
        options.identityDirectory = try nats["identities"].map { try reader.string($0, key: "nats.identities") }
        if let tlsNode = nats["tls"] {
            let tls = try reader.mapping(tlsNode, key: "nats.tls", allowed: ["ca", "cert", "key", "hostname"])
            options.tls = .init(caFile: try tls["ca"].map { try reader.string($0, key: "nats.tls.ca") },
                                certificateFile: try tls["cert"].map { try reader.string($0, key: "nats.tls.cert") },
                                keyFile: try tls["key"].map { try reader.string($0, key: "nats.tls.key") },
                                expectedHostname: try tls["hostname"].map { try reader.string($0, key: "nats.tls.hostname") })
        }

        let replicas = try top["replicas"].map { try reader.int($0, key: "replicas", range: 1...5) } ?? 1
        let httpPort = try top["http_port"].map { try reader.int($0, key: "http_port", range: 0...65_535) } ?? 9464
        let httpAddress = try top["http_address"].map { try reader.string($0, key: "http_address") } ?? "127.0.0.1"
        var exchange: ExchangeSettings?
        if let exchangeNode = top["exchange"] {
            let section = try reader.mapping(exchangeNode, key: "exchange",
                                             allowed: ["base_url", "stream_url", "user_stream_url", "weight_share", "key_env",
                                                       "secret_env", "key_file", "secret_file"])
            guard let urlNode = section["base_url"] else { throw reader.missing("exchange.base_url", in: exchangeNode) }
            let baseURL = try reader.string(urlNode, key: "exchange.base_url")
            guard baseURL.hasPrefix("http://") || baseURL.hasPrefix("https://") else {
                throw reader.error(urlNode, "exchange.base_url", "expected an http:// or https:// URL, got \(baseURL)")
            }
            func streamURL(_ key: String) throws -> String? {
                guard let node = section[key] else { return nil }
                let url = try reader.string(node, key: "exchange.\(key)")
                guard url.hasPrefix("ws://") || url.hasPrefix("wss://") else {
                    throw reader.error(node, "exchange.\(key)", "expected a ws:// or wss:// URL, got \(url)")
                }
                return url
            }
            exchange = ExchangeSettings(
                baseURL: baseURL,
                streamURL: try streamURL("stream_url"),
                userStreamURL: try streamURL("user_stream_url"),
                weightShare: try section["weight_share"].map { try reader.double($0, key: "exchange.weight_share", range: 0.05...1) } ?? 0.8,
                keyVariable: try section["key_env"].map { try reader.string($0, key: "exchange.key_env") } ?? ExchangeSettings.defaultKeyVariable,
                secretVariable: try section["secret_env"].map { try reader.string($0, key: "exchange.secret_env") }
                    ?? ExchangeSettings.defaultSecretVariable,
                keyFile: try section["key_file"].map { try reader.string($0, key: "exchange.key_file") },
                secretFile: try section["secret_file"].map { try reader.string($0, key: "exchange.secret_file") })
        }

        var plugins: [PluginEntry] = []
        if let pluginsNode = top["plugins"] {
            let entries = try reader.orderedMapping(pluginsNode, key: "plugins")
            for (name, node) in entries {
                if case .mapping(let mapping) = node, let pathNode = mapping["library"] {
                    guard registry[name] == nil else {
                        throw reader.error(node, "plugins.\(name).library", "\(name) is a built-in plugin; give the library's plugin another name")
                    }
                    let path = try reader.string(pathNode, key: "plugins.\(name).library")
                    let registration: PluginRegistration
                    do {
                        registration = try LibraryPlugins.registration(name: name, path: path)
                    } catch {
                        throw reader.error(pathNode, "plugins.\(name).library", "\(error)")
                    }
                    plugins.append(PluginEntry(name: name, settings: try reader.librarySettings(node, plugin: name), library: registration))
                    continue
                }
                guard let registration = registry[name] else {
                    throw reader.error(node, "plugins.\(name)", "unknown plugin", choices: registry.names)
                }
                plugins.append(PluginEntry(name: name, settings: try reader.settings(node, plugin: registration.manifest)))
            }
        }
        guard !plugins.isEmpty else {
            let none = registry.names.isEmpty ? " (this build registers no plugins yet)" : ""
            throw ConfigError(file: file, key: "plugins", line: top["plugins"]?.mark?.line ?? root.mark?.line,
                              message: "names no plugin to run\(none)", choices: registry.names)
        }
        return NodeConfig(file: file, hostID: hostID, nats: options, replicas: replicas, httpPort: httpPort, httpAddress: httpAddress, exchange: exchange,
                          plugins: plugins)
    }
}

/// Where the exchange is and where its credentials come from; the Plugins module turns this into
/// the process's one exchange client (the host itself never talks to the exchange).
public struct ExchangeSettings: Sendable, Equatable {
    public static let defaultKeyVariable = "QT_API_KEY"
    public static let defaultSecretVariable = "QT_API_SECRET"

    public var baseURL: String
    /// Market streams' base (`wss://fstream.binance.com/market`); nil: market-feed polls REST.
    public var streamURL: String?
    /// User data stream's base (`wss://fstream.binance.com/private`); nil: position-brain polls REST.
    public var userStreamURL: String?
    /// The share of the IP's request weight per minute this host's client may spend (hosts behind one IP split it).
    public var weightShare: Double
    public var keyVariable: String
    public var secretVariable: String
    /// Files holding the key and secret; they win over the environment variables.
    public var keyFile: String?
    public var secretFile: String?

    public init(baseURL: String, streamURL: String? = nil, userStreamURL: String? = nil, weightShare: Double = 0.8,
                keyVariable: String = defaultKeyVariable,
                secretVariable: String = defaultSecretVariable, keyFile: String? = nil, secretFile: String? = nil) {
        self.baseURL = baseURL
        self.streamURL = streamURL
        self.userStreamURL = userStreamURL
        self.weightShare = weightShare
        self.keyVariable = keyVariable
        self.secretVariable = secretVariable
        self.keyFile = keyFile
        self.secretFile = secretFile
    }
}

public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let key: String
    public let line: Int?
    public let message: String
    public var choices: [String] = []

    public var description: String {
        let place = line.map { "\(file):\($0)" } ?? file
        let keyText = key.isEmpty ? "" : " \(key):"
        let choiceText = choices.isEmpty ? "" : "; valid choices: \(choices.joined(separator: ", "))"
        return "\(place):\(keyText) \(message)\(choiceText)"
    }
}

/// Typed reads of YAML nodes that fail with the key path and line.
private struct ConfigReader {
    let file: String

    /// A secret from `<name>_file` (the file's first line) or `<name>_env` (an environment
    /// variable); `<name>` itself, the secret inline, is refused: a node config is copied, diffed
    /// and printed, and must hold no secret.
    func secret(_ section: [String: Node], _ name: String, in path: String, environment: [String: String]) throws -> String? {
        if let inline = section[name] {
            throw error(inline, "\(path).\(name)", "inline secrets are refused; use \(path).\(name)_file (a file readable only by the host) "
                        + "or \(path).\(name)_env (an environment variable)")
        }
        if let fileNode = section["\(name)_file"] {
            let filePath = try string(fileNode, key: "\(path).\(name)_file")
            guard let text = try? String(contentsOfFile: filePath, encoding: .utf8) else {
                throw error(fileNode, "\(path).\(name)_file", "cannot read \(filePath)")
            }
            let value = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            guard !value.isEmpty else { throw error(fileNode, "\(path).\(name)_file", "\(filePath) is empty") }
            return value
        }
        if let variableNode = section["\(name)_env"] {
            let variable = try string(variableNode, key: "\(path).\(name)_env")
            guard let value = environment[variable], !value.isEmpty else {
                throw error(variableNode, "\(path).\(name)_env", "the environment variable \(variable) is not set")
            }
            return value
        }
        return nil
    }

    func error(_ node: Node, _ key: String, _ message: String, choices: [String] = []) -> ConfigError {
        ConfigError(file: file, key: key, line: node.mark?.line, message: message, choices: choices)
    }

    func missing(_ key: String, in node: Node) -> ConfigError {
        ConfigError(file: file, key: key, line: node.mark?.line, message: "missing (required)")
    }

    func orderedMapping(_ node: Node, key: String) throws -> [(String, Node)] {
        guard case let .mapping(mapping) = node else {
            if case .scalar(let scalar) = node, scalar.string.isEmpty || scalar.string == "~" || scalar.string == "null" { return [] }
            throw error(node, key, "expected a mapping of names to settings")
        }
        var seen: [String: Node] = [:]
        return try mapping.map { pair in
            guard let name = pair.key.string else { throw error(pair.key, key, "keys must be strings") }
            let path = key.isEmpty ? name : "\(key).\(name)"
            if let first = seen[name] {
                let firstLine = first.mark.map { "line \($0.line)" } ?? "earlier"
                throw error(pair.key, path, "appears twice (first at \(firstLine)); YAML would keep only the last")
            }
            seen[name] = pair.key
            return (name, pair.value)
        }
    }

    func mapping(_ node: Node, key: String, allowed: [String]) throws -> [String: Node] {
        var result: [String: Node] = [:]
        for (name, value) in try orderedMapping(node, key: key) {
            let path = key.isEmpty ? name : "\(key).\(name)"
            guard allowed.contains(name) else { throw error(value, path, "unknown key", choices: allowed) }
            result[name] = value
        }
        return result
    }

    func string(_ node: Node, key: String) throws -> String {
        guard case .scalar(let scalar) = node else { throw error(node, key, "expected a string") }
        return scalar.string
    }

    func strings(_ node: Node, key: String) throws -> [String] {
        if case .scalar = node { return [try string(node, key: key)] }
        guard case .sequence(let sequence) = node else { throw error(node, key, "expected a list of strings") }
        return try sequence.map { try string($0, key: key) }
    }

    func double(_ node: Node, key: String, range: ClosedRange<Double>) throws -> Double {
        guard case .scalar = node, let value = node.float else { throw error(node, key, "expected a number") }
        guard range.contains(value) else { throw error(node, key, "\(value) is outside \(range.lowerBound)...\(range.upperBound)") }
        return value
    }

    func int(_ node: Node, key: String, range: ClosedRange<Int>) throws -> Int {
        guard case .scalar = node, let value = node.int else { throw error(node, key, "expected an integer") }
        guard range.contains(value) else { throw error(node, key, "\(value) is outside \(range.lowerBound)...\(range.upperBound)") }
        return value
    }

    /// A library plugin's entry: `library`, its `settings` (any keys, scalar values, handed to the
    /// library as strings: it checks them in `create`), and the host's own `shadow` and `ack_wait_s`.
    func librarySettings(_ node: Node, plugin: String) throws -> PluginSettings {
        let key = "plugins.\(plugin)"
        let entry = try mapping(node, key: key, allowed: ["library", "settings", "shadow", "ack_wait_s"])
        var values: [String: ConfigValue] = [:]
        if let settings = entry["settings"] {
            for (name, value) in try orderedMapping(settings, key: "\(key).settings") {
                guard case .scalar(let scalar) = value else { throw error(value, "\(key).settings.\(name)", "expected a scalar value") }
                values[name] = .string(scalar.string)
            }
        }
        let common = try settings(node, plugin: PluginManifest(name: plugin, version: "0"), skipping: ["library", "settings"])
        return PluginSettings(values: values, shadow: common.shadow, ackWaitMs: common.ackWaitMs)
    }

    func settings(_ node: Node, plugin manifest: PluginManifest, skipping: Set<String> = []) throws -> PluginSettings {
        let key = "plugins.\(manifest.name)"
        let declared = manifest.config.map(\.name)
        var values = Dictionary(uniqueKeysWithValues: manifest.config.map { ($0.name, $0.defaultValue) })
        var shadow = false
        var ackWaitMs: Int64?
        for (name, value) in try orderedMapping(node, key: key) where !skipping.contains(name) {
            let path = "\(key).\(name)"
            if name == "shadow" {
                guard case .scalar = value, let flag = value.bool else { throw error(value, path, "expected true or false") }
                shadow = flag
                continue
            }
            if name == "ack_wait_s" {
                guard case .scalar = value, let seconds = value.float, seconds >= 1, seconds <= 3600 else {
                    throw error(value, path, "expected seconds between 1 and 3600")
                }
                ackWaitMs = Int64(seconds * 1000)
                continue
            }
            guard let spec = manifest.config.first(where: { $0.name == name }) else {
                throw error(value, path, "unknown key", choices: (declared + ["ack_wait_s", "shadow"]).sorted())
            }
            values[name] = try self.value(value, spec: spec, key: path)
        }
        return PluginSettings(values: values, shadow: shadow, ackWaitMs: ackWaitMs)
    }

    private func checkRange(_ value: Double, spec: ConfigKey, node: Node, key: String, text: String) throws {
        guard let range = spec.range, let bounds = spec.rangeDescription, !range.contains(value) else { return }
        throw error(node, key, "expected \(spec.kind.description) \(bounds), got \(text)" + (spec.help.isEmpty ? "" : " (\(spec.help))"))
    }

    private func value(_ node: Node, spec: ConfigKey, key: String) throws -> ConfigValue {
        guard case .scalar(let scalar) = node else { throw error(node, key, "expected \(spec.kind.description)") }
        switch spec.kind {
        case .int:
            guard let value = node.int else { throw error(node, key, "expected \(spec.kind.description), got \(scalar.string)") }
            try checkRange(Double(value), spec: spec, node: node, key: key, text: scalar.string)
            return .int(value)
        case .double:
            guard let value = node.float else { throw error(node, key, "expected \(spec.kind.description), got \(scalar.string)") }
            guard value.isFinite else { throw error(node, key, "expected a finite number, got \(scalar.string)") }
            try checkRange(value, spec: spec, node: node, key: key, text: scalar.string)
            return .double(value)
        case .bool:
            guard let value = node.bool else { throw error(node, key, "expected \(spec.kind.description), got \(scalar.string)") }
            return .bool(value)
        case .string:
            return .string(scalar.string)
        case .choice(let choices):
            guard choices.contains(scalar.string) else { throw error(node, key, "\(scalar.string) is not allowed", choices: choices) }
            return .string(scalar.string)
        }
    }
}
