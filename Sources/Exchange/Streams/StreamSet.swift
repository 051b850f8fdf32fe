import BlockingIO
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// How a `StreamSet` connects and recovers.
public struct StreamOptions: Sendable {
    /// Binance allows 200 streams per connection (1024 on some endpoints; 200 is safe everywhere).
    public var maxStreamsPerConnection = 200
    /// First wait before reconnecting; doubled each failure, with jitter, up to `reconnectMaxDelayMs`.
    public var reconnectBaseDelayMs = 250
    public var reconnectMaxDelayMs = 30_000
    /// Binance closes a connection after 24 h; we reconnect on our own terms a little before.
    public var plannedReconnectAfter: Duration = .seconds(23 * 3_600 + 50 * 60)
    /// We ping this often and give up on a connection whose pong does not come back in as long.
    public var pingInterval: Duration = .seconds(30)

    public init() {}
}

/// A set of Binance streams (`btcusdt@kline_1m`, `!markPrice@arr@1s`, a listenKey) spread over
/// combined-stream connections (`<base>/stream?streams=a/b/c`) of at most
/// `maxStreamsPerConnection` each. Changes go out as SUBSCRIBE / UNSUBSCRIBE on the live
/// connection that owns the stream; a connection that drops reconnects with backoff, and a
/// planned reconnect comes before Binance's 24 h limit. Every (re)connection is reported with the
/// streams it carries, because events sent while it was down are lost: the caller backfills.
///
/// The sockets are SwiftNIO's; every connection's loop, its decoding and `onEvent` run on one
/// thread of their own (`executor`), not on the cooperative pool's two threads, which the host's
/// handlers need: the 1 s mark stream of 566 symbols is one frame, and its JSON decode held a pool
/// thread for milliseconds each second, in the path of whatever trade was under way.
public final class StreamSet: Sendable {
    static let executor = ThreadExecutor(name: "qt-streams")

    public typealias EventHandler = @Sendable (StreamEvent) -> Void
    /// Called with the streams a connection carries each time it opens (the first time and after every reconnect).
    public typealias ConnectHandler = @Sendable (_ streams: Set<String>) -> Void
    /// Called with a frame that could not be decoded (named, never dropped silently).
    public typealias UndecodableHandler = @Sendable (_ text: String, _ error: any Error) -> Void

    private let baseURL: String
    private let options: StreamOptions
    private let logger: Logger
    private let onEvent: EventHandler
    private let onConnect: ConnectHandler
    private let onUndecodable: UndecodableHandler
    private let connections = Mutex<[StreamConnection]>([])
    private let stopped = Atomic<Bool>(false)

    /// `baseURL`: the stream endpoint without `/stream` (`wss://fstream.binance.com/market`, the simulator's `ws://127.0.0.1:PORT`).
    public init(baseURL: String, options: StreamOptions = StreamOptions(), logger: Logger = Logger(label: "qt.exchange.streams"),
                onEvent: @escaping EventHandler, onConnect: @escaping ConnectHandler = { _ in },
                onUndecodable: @escaping UndecodableHandler = { _, _ in }) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.options = options
        self.logger = logger
        self.onEvent = onEvent
        self.onConnect = onConnect
        self.onUndecodable = onUndecodable
    }

    /// The streams currently wanted, across every connection.
    public var streams: Set<String> {
        connections.withLock { $0.reduce(into: Set<String>()) { $0.formUnion($1.streams) } }
    }

    /// How many connections are open right now.
    public var openConnections: Int { connections.withLock { $0.filter(\.isOpen).count } }

    /// Makes the wanted set `wanted`: streams no longer wanted are unsubscribed, new ones go to a
    /// connection with room or to a new connection.
    public func update(_ wanted: Set<String>) {
        guard !stopped.load(ordering: .relaxed) else { return }
        var started: [StreamConnection] = []
        connections.withLock { connections in
            for connection in connections {
                let gone = connection.streams.subtracting(wanted)
                if !gone.isEmpty { connection.remove(gone) }
            }
            var missing = wanted.subtracting(connections.reduce(into: Set<String>()) { $0.formUnion($1.streams) })
            for connection in connections where !missing.isEmpty {
                let room = options.maxStreamsPerConnection - connection.streams.count
                guard room > 0 else { continue }
                let moved = Set(missing.sorted().prefix(room))
                connection.add(moved)
                missing.subtract(moved)
            }
            while !missing.isEmpty {
                let batch = Set(missing.sorted().prefix(options.maxStreamsPerConnection))
                missing.subtract(batch)
                let connection = StreamConnection(baseURL: baseURL, streams: batch, options: options, logger: logger, onEvent: onEvent,
                                                  onConnect: onConnect, onUndecodable: onUndecodable)
                connections.append(connection)
                started.append(connection)
            }
            for connection in connections where connection.streams.isEmpty { _ = connection.retire() }
            connections.removeAll { $0.streams.isEmpty }
        }
        for connection in started { connection.start() }
    }

    /// Closes every connection; no reconnect follows.
    public func stop() async {
        stopped.store(true, ordering: .relaxed)
        let all = connections.withLock { connections in
            defer { connections.removeAll() }
            return connections
        }
        for connection in all { await connection.stop() }
    }
}

/// One combined-stream connection and its reconnect loop.
final class StreamConnection: Sendable {
    private struct State {
        var streams: Set<String>
        var commands: AsyncStream<String>.Continuation?
        var open = false
        /// The last attempt got as far as an open connection.
        var opened = false
        var retired = false
        var nextRequestID: Int64 = 1
    }

    private let baseURL: String
    private let options: StreamOptions
    private let logger: Logger
    private let onEvent: StreamSet.EventHandler
    private let onConnect: StreamSet.ConnectHandler
    private let onUndecodable: StreamSet.UndecodableHandler
    private let state: Mutex<State>
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(baseURL: String, streams: Set<String>, options: StreamOptions, logger: Logger, onEvent: @escaping StreamSet.EventHandler,
         onConnect: @escaping StreamSet.ConnectHandler, onUndecodable: @escaping StreamSet.UndecodableHandler) {
        self.baseURL = baseURL
        self.options = options
        self.logger = logger
        self.onEvent = onEvent
        self.onConnect = onConnect
        self.onUndecodable = onUndecodable
        state = Mutex(State(streams: streams))
    }

    var streams: Set<String> { state.withLock { $0.streams } }
    var isOpen: Bool { state.withLock { $0.open } }

    func start() {
        task.withLock { $0 = Task(executorPreference: StreamSet.executor) { await self.run() } }
    }

    /// An empty connection closes; returns true so the set forgets it.
    func retire() -> Bool {
        state.withLock { $0.retired = true; $0.commands?.finish() }
        task.withLock { $0?.cancel() }
        return true
    }

    func stop() async {
        _ = retire()
        let running = task.withLock { $0 }
        await running?.value
    }

    func add(_ names: Set<String>) { change(names, method: "SUBSCRIBE") { $0.formUnion(names) } }
    func remove(_ names: Set<String>) { change(names, method: "UNSUBSCRIBE") { $0.subtract(names) } }

    /// Updates the wanted streams; a live connection is told at once, a closed one picks the set
    /// up in its next URL.
    private func change(_ names: Set<String>, method: String, _ apply: (inout Set<String>) -> Void) {
        state.withLock { state in
            apply(&state.streams)
            guard state.open, let commands = state.commands else { return }
            let id = state.nextRequestID
            state.nextRequestID += 1
            let params = names.sorted().map { "\"\($0)\"" }.joined(separator: ",")
            commands.yield("{\"method\":\"\(method)\",\"params\":[\(params)],\"id\":\(id)}")
        }
    }

    private func run() async {
        var failures = 0
        while !Task.isCancelled {
            let streams = state.withLock { $0.retired ? [] : $0.streams }
            guard !streams.isEmpty else { return }
            let url = baseURL + "/stream?streams=" + streams.sorted().joined(separator: "/")
            state.withLock { $0.opened = false }
            do {
                try await connectOnce(url: url)
            } catch is CancellationError {
                return
            } catch {
                // The first failure after an open connection is news; the retries that follow are not.
                if failures == 0 { logger.warning("stream connection to \(baseURL) closed: \(error)") }
                else { logger.debug("stream connection to \(baseURL) failed again: \(error)") }
            }
            state.withLock { $0.open = false; $0.commands = nil }
            if Task.isCancelled { return }
            failures = state.withLock { $0.opened } ? 0 : failures + 1
            let delay = Self.backoffMs(failures: failures, base: options.reconnectBaseDelayMs, max: options.reconnectMaxDelayMs)
            try? await Task.sleep(for: .milliseconds(delay))
        }
    }

    /// The wait before reconnect number `failures` (0: the connection had been open; reconnect soon).
    static func backoffMs(failures: Int, base: Int, max maximum: Int) -> Int {
        let exponential = base << min(failures, 16)
        let capped = min(exponential, maximum)
        return capped / 2 + Int.random(in: 0...Swift.max(1, capped / 2))
    }

    private func connectOnce(url: String) async throws {
        var configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 22, autoPing: .enabled(timePeriod: options.pingInterval))
        configuration.closeTimeout = .seconds(2)
        let tls: TLSConfiguration? = url.hasPrefix("wss://") ? .makeClientConfiguration() : nil
        let planned = options.plannedReconnectAfter
        try await WebSocketClient.connect(url: url, configuration: configuration, tlsConfiguration: tls, logger: logger) { inbound, outbound, _ in
            let (commands, continuation) = AsyncStream.makeStream(of: String.self)
            let carried = self.state.withLock { state -> Set<String>? in
                guard !state.retired else { return nil }
                state.open = true
                state.opened = true
                state.commands = continuation
                return state.streams
            }
            guard let carried else { return }
            // Streams added between building the URL and opening are subscribed now.
            let inURL = Set(url.split(separator: "=", maxSplits: 1).last.map { $0.split(separator: "/").map(String.init) } ?? [])
            let late = carried.subtracting(inURL)
            if !late.isEmpty { self.add(late) }
            self.onConnect(carried)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await command in commands { try await outbound.write(.text(command)) }
                }
                group.addTask {
                    try await Task.sleep(for: planned)
                    try await outbound.close(.normalClosure, reason: "planned reconnect before 24 h")
                }
                for try await message in inbound.messages(maxSize: 1 << 24) {
                    guard case .text(let text) = message else { continue }
                    do {
                        self.onEvent(try StreamEvent.decode(text))
                    } catch {
                        self.onUndecodable(text, error)
                    }
                }
                continuation.finish()
                group.cancelAll()
            }
        }
    }
}
