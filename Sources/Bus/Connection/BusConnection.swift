import CNats
import BlockingIO
import Foundation
import Identity
import Messages

/// One NATS connection with its JetStream contexts and the threads that make blocking libnats
/// calls. Everything else in the Bus hangs off it; `close()` tears it down in the order libnats
/// needs (subscriptions, then contexts, then the connection).
public final class BusConnection: @unchecked Sendable {
    public let options: ConnectionOptions
    let connection: OpaquePointer
    /// The connection for acks, which may come after `close` (see ConnectionLiveness).
    let liveness: ConnectionLiveness
    /// For sync publishes, KV and the JetStream API.
    let jetStream: OpaquePointer
    let pool: BlockingWorkerPool
    let asyncPublisher: AsyncPublishContext
    /// Permission violations and other errors the server reported outside any call.
    public let serverErrors = ServerErrors()
    /// Signs the connect nonce when the connection authenticates with a key; libnats calls it
    /// on every (re)connect, so it lives as long as the connection.
    let nonceSigner: NonceSigner?

    private let lock = NSLock()
    private var closed = false
    private var closeHooks: [() -> Void] = []
    private var loadedPartitioning: Partitioning?

    public init(_ options: ConnectionOptions) throws {
        LibNats.openOnce()
        self.options = options
        var natsOpts: OpaquePointer?
        try NatsCall.check(natsOptions_Create(&natsOpts), "natsOptions_Create")
        defer { natsOptions_Destroy(natsOpts) }
        nonceSigner = try Self.apply(options, to: natsOpts!)
        try serverErrors.install(on: natsOpts!)

        var nc: OpaquePointer?
        var status = natsConnection_Connect(&nc, natsOpts)
        // A refused signature (see NonceSigner) costs one attempt; the next nonce signs differently.
        var attempts = 1
        while status != NATS_OK, let signer = nonceSigner, signer.zeroLeadRefusals >= attempts, attempts < 16 {
            attempts += 1
            status = natsConnection_Connect(&nc, natsOpts)
        }
        guard status == NATS_OK, let nc else {
            var text = NatsCall.lastErrorText().isEmpty ? NatsCall.statusText(status) : NatsCall.lastErrorText()
            // libnats upgrades a plain client to TLS when the server requires it, then fails to verify the
            // certificate against the system's CAs: say what that means.
            if status == NATS_SECURE_CONNECTION_REQUIRED || (status == NATS_SSL_ERROR && options.tls == nil) {
                text += ". The server requires TLS: give the CA that signed its certificate (nats.tls.ca in the node config, --tlsca on the command line)"
            } else if status == NATS_SSL_ERROR {
                text += ". The server's TLS certificate was not accepted: is nats.tls.ca (--tlsca) the CA that signed it, and does the certificate name this host?"
            }
            throw BusError.unreachable(servers: options.servers.map(ConnectionOptions.redacted), text: text)
        }
        self.connection = nc
        self.liveness = ConnectionLiveness(nc)

        var jsOpts = jsOptions()
        jsOptions_Init(&jsOpts)
        jsOpts.Wait = options.jetStreamWaitMs
        var js: OpaquePointer?
        let jsStatus = natsConnection_JetStream(&js, nc, &jsOpts)
        guard jsStatus == NATS_OK, let js else {
            natsConnection_Destroy(nc)
            throw NatsCall.error(jsStatus, "natsConnection_JetStream")
        }
        self.jetStream = js
        self.pool = BlockingWorkerPool(name: "qt-bus", size: options.workerThreads)
        do {
            self.asyncPublisher = try AsyncPublishContext(connection: nc, waitMs: options.jetStreamWaitMs)
        } catch {
            jsCtx_Destroy(js)
            natsConnection_Destroy(nc)
            throw error
        }
    }

    deinit { close() }

    /// Sets `options` on libnats' `opts`; returns the nonce signer when one authenticates.
    private static func apply(_ options: ConnectionOptions, to opts: OpaquePointer) throws -> NonceSigner? {
        guard !options.servers.isEmpty else { throw BusError.invalidArgument("no NATS server URL given") }
        var cStrings = options.servers.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        try cStrings.withUnsafeMutableBufferPointer { buffer in
            try buffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { servers in
                try NatsCall.check(natsOptions_SetServers(opts, servers.baseAddress, Int32(servers.count)),
                                   "natsOptions_SetServers(\(options.servers))")
            }
        }
        try NatsCall.check(natsOptions_SetName(opts, options.name), "natsOptions_SetName")
        try NatsCall.check(natsOptions_SetMaxReconnect(opts, Int32(options.maxReconnectAttempts)), "natsOptions_SetMaxReconnect")
        try NatsCall.check(natsOptions_SetReconnectWait(opts, options.reconnectWaitMs), "natsOptions_SetReconnectWait")
        try NatsCall.check(natsOptions_SetReconnectJitter(opts, options.reconnectJitterMs, options.reconnectJitterMs),
                           "natsOptions_SetReconnectJitter")
        try NatsCall.check(natsOptions_SetTimeout(opts, options.connectTimeoutMs), "natsOptions_SetTimeout")
        try NatsCall.check(natsOptions_SetReconnectBufSize(opts, Int32(options.reconnectBufferBytes)), "natsOptions_SetReconnectBufSize")
        // libnats' flusher waits a millisecond before it writes what was buffered, pull requests
        // included. A host paused in that millisecond (SIGSTOP, a stalled VM) sends its pull
        // request when it resumes, after its lease ran out: the server then gives the partition's
        // next message to the old owner and the new owner handles the one after it (order across
        // a move, DESIGN.md §3.3). Written at once, a request leaves while the fence still holds.
        try NatsCall.check(natsOptions_SetSendAsap(opts, options.sendAsap), "natsOptions_SetSendAsap")
        if let user = options.user {
            try NatsCall.check(natsOptions_SetUserInfo(opts, user, options.password ?? ""), "natsOptions_SetUserInfo")
        }
        if let token = options.token {
            try NatsCall.check(natsOptions_SetToken(opts, token), "natsOptions_SetToken")
        }
        var signer: NonceSigner?
        if let seedFile = options.nkeySeedFile {
            let seed: NKey
            do {
                seed = try NKey(seed: String(contentsOfFile: seedFile, encoding: .utf8))
            } catch {
                throw BusError.invalidArgument("nkey seed file \(seedFile): \(error)")
            }
            signer = NonceSigner(.seedFile(seedFile, publicKey: seed.publicKey))
        }
        if let prefix = options.inboxPrefix {
            try NatsCall.check(natsOptions_SetCustomInboxPrefix(opts, prefix), "natsOptions_SetCustomInboxPrefix(\(prefix))")
        }
        if let creds = options.credentialsFile {
            guard signer == nil else { throw BusError.invalidArgument("give either an nkey seed file or a credentials file, not both") }
            do {
                _ = try UserCredentials(text: String(contentsOfFile: creds, encoding: .utf8))
            } catch {
                throw BusError.invalidArgument("credentials file \(creds): \(error)")
            }
            signer = NonceSigner(.credentialsFile(creds))
        }
        try signer?.install(on: opts)
        if let tls = options.tls {
            try NatsCall.check(natsOptions_SetSecure(opts, true), "natsOptions_SetSecure")
            if let ca = tls.caFile {
                try NatsCall.check(natsOptions_LoadCATrustedCertificates(opts, ca), "TLS CA file \(ca)")
            }
            if let cert = tls.certificateFile, let key = tls.keyFile {
                try NatsCall.check(natsOptions_LoadCertificatesChain(opts, cert, key), "TLS certificate \(cert) / key \(key)")
            }
            if let host = tls.expectedHostname {
                try NatsCall.check(natsOptions_SetExpectedHostname(opts, host), "TLS expected hostname \(host)")
            }
        }
        return signer
    }

    /// Registers teardown to run at `close()` before the connection goes (subscriptions, watchers).
    func onClose(_ hook: @escaping () -> Void) {
        lock.lock(); defer { lock.unlock() }
        closeHooks.append(hook)
    }

    /// P from `qt_cluster/layout`, once `loadPartitioning()` or `provision` has read or written it.
    public var partitioning: Partitioning? {
        lock.lock(); defer { lock.unlock() }
        return loadedPartitioning
    }

    func usePartitioning(_ partitioning: Partitioning) {
        lock.lock(); defer { lock.unlock() }
        loadedPartitioning = partitioning
    }

    public var isClosed: Bool {
        lock.lock(); defer { lock.unlock() }
        return closed
    }

    public var isConnected: Bool {
        natsConnection_Status(connection) == NATS_CONN_STATUS_CONNECTED
    }

    /// Stops fetchers and watchers, destroys contexts, then closes the connection.
    public func close() {
        lock.lock()
        if closed { lock.unlock(); return }
        closed = true
        let hooks = closeHooks
        closeHooks = []
        lock.unlock()
        hooks.reversed().forEach { $0() }
        pool.shutdown()
        asyncPublisher.destroy()
        jsCtx_Destroy(jetStream)
        liveness.markClosed()
        natsConnection_Close(connection)
        natsConnection_Destroy(connection)
    }
}

enum LibNats {
    private static let opened: Void = {
        // Lock spinning off, a default of nats_Open (-1): two cores, no point spinning.
        _ = nats_Open(-1)
    }()

    static func openOnce() { _ = opened }
}
