import ArgumentParser
import Bus
import Foundation

/// The connection options every NATS command takes, named as in the `nats` CLI.
struct ConnectionArguments: ParsableArguments {
    @Option(name: [.short, .long], help: "NATS server URL(s), comma separated (default: $NATS_URL, then nats://127.0.0.1:4222).")
    var server: String?

    @Option(help: "Username (with --password).")
    var user: String?

    @Option(help: "Password (with --user).")
    var password: String?

    @Option(help: "Authentication token.")
    var token: String?

    @Option(help: "User credentials file (JWT + nkey).")
    var creds: String?

    @Option(help: "NATS nkey seed file of an identity (`qt auth generate`: admin.nk, operator.nk, reader.nk); the identity is its file name.")
    var nkey: String?

    @Option(help: "TLS CA certificate file.")
    var tlsca: String?

    @Option(help: "TLS client certificate file (with --tlskey).")
    var tlscert: String?

    @Option(help: "TLS client key file (with --tlscert).")
    var tlskey: String?

    var servers: [String] {
        let value = server ?? ProcessInfo.processInfo.environment["NATS_URL"] ?? ConnectionOptions.defaultServer
        return value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func options(name: String = "qt-cli") -> ConnectionOptions {
        var options = ConnectionOptions(servers: servers, name: name)
        options.user = user
        options.password = password
        options.token = token
        options.credentialsFile = creds
        if let nkey {
            // Replies come to the identity's own inbox prefix: the only one it may subscribe to.
            options.nkeySeedFile = nkey
            options.inboxPrefix = ConnectionOptions.inboxPrefix(((nkey as NSString).lastPathComponent as NSString).deletingPathExtension)
        }
        // A CLI should fail fast when nothing listens, not retry forever.
        options.maxReconnectAttempts = 3
        if tlsca != nil || tlscert != nil || tlskey != nil {
            options.tls = .init(caFile: tlsca, certificateFile: tlscert, keyFile: tlskey)
        }
        return options
    }

    func connect() throws -> BusConnection {
        try BusConnection(options())
    }
}
