import Foundation

/// How to reach NATS: the same choices the `nats` CLI offers (DESIGN.md §9).
public struct ConnectionOptions: Sendable {
    public struct TLS: Sendable {
        public var caFile: String?
        public var certificateFile: String?
        public var keyFile: String?
        public var expectedHostname: String?

        public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil,
                    expectedHostname: String? = nil) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.expectedHostname = expectedHostname
        }
    }

    public var servers: [String]
    /// Shown by the server (`nats server report connections`): host id and role.
    public var name: String
    public var user: String?
    public var password: String?
    public var token: String?
    public var credentialsFile: String?
    /// A file holding a user nkey seed (`SU…`, mode 0600), as `qt auth generate` writes one per identity.
    public var nkeySeedFile: String?
    /// Where this connection's reply subjects live (`_INBOX.<identity>`): an identity may
    /// subscribe only under its own prefix, so no one else receives its replies.
    public var inboxPrefix: String?
    /// A directory of nkey seeds named `<identity>.nk` (`qt auth generate`): set, a host connects
    /// once as `host-<host_id>` and once per plugin instance as that instance.
    public var identityDirectory: String?
    public var tls: TLS?
    /// Negative = reconnect forever (the default: a trading host must outlive a server restart).
    public var maxReconnectAttempts: Int = -1
    public var reconnectWaitMs: Int64 = 250
    public var reconnectJitterMs: Int64 = 250
    public var connectTimeoutMs: Int64 = 2_000
    /// How long JetStream API calls and sync publishes wait for the server's answer.
    public var jetStreamWaitMs: Int64 = 5_000
    /// Bytes of outgoing messages kept while reconnecting.
    public var reconnectBufferBytes: Int = 8 * 1024 * 1024
    /// Blocking workers for sync publishes, KV and JetStream API calls. A host's plugins and
    /// partitions share them, and each call waits a round trip (a replicated one on R3), so there
    /// are enough for every partition loop of a busy plugin to have one in flight.
    public var workerThreads: Int = 16
    /// Write each publish (pull requests, acks) to the socket at once instead of after libnats'
    /// 1 ms batching wait (see `BusConnection.apply`).
    public var sendAsap = true

    public init(servers: [String], name: String = "qt") {
        self.servers = servers
        self.name = name
    }

    public static let defaultServer = "nats://127.0.0.1:4222"

    /// The same servers and TLS, authenticated as `identity` from the identity directory.
    public func identity(_ identity: String) -> ConnectionOptions {
        var options = self
        guard let directory = identityDirectory else { return options }
        options.name = "\(name)/\(identity)"
        options.nkeySeedFile = (directory as NSString).appendingPathComponent(Self.seedFileName(identity))
        options.inboxPrefix = Self.inboxPrefix(identity)
        return options
    }

    public static func seedFileName(_ identity: String) -> String { "\(identity).nk" }
    public static func inboxPrefix(_ identity: String) -> String { "_INBOX.\(identity)" }

    /// A server URL fit for an error or a log line: `nats://user:secret@host` becomes `nats://***@host`.
    public static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
        return url[..<scheme.upperBound] + "***" + url[at...]
    }
}
