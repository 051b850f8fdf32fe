import BlockingIO
import Exchange
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import HTTPServing
import Logging
import NIOCore

/// The simulator on loopback HTTP (Hummingbird): Binance's paths, answered by `SimExchange`.
/// Embeddable: tests and `qt up` start one in-process; `qt sim` runs one on its own.
public final class SimulatorServer: Sendable {
    public let exchange: SimExchange
    private let server: ListeningServer
    private let streams: SimStreamHub
    private let pump: Task<Void, Never>

    public var port: Int { server.port }
    public var baseURL: String { "http://127.0.0.1:\(port)" }
    /// The WebSocket streams' base (market and user data), on the same port.
    public var streamURL: String { "ws://127.0.0.1:\(port)" }

    /// Every simulator in the process answers requests on this thread and feeds its streams on
    /// the next, not on the cooperative pool the host and its plugins share: an exchange's work is
    /// not the pipeline's, and on two cores it would otherwise sit between a handler and its next
    /// step. Two threads, so a request never queues behind the stream pump's encoding of 566 marks.
    static let requestExecutor = ThreadExecutor(name: "qt-sim")
    static let pumpExecutor = ThreadExecutor(name: "qt-sim-pump")

    /// Wall milliseconds between market steps that feed the streams (a stop triggers within one).
    static let pumpIntervalMs = 20

    private init(exchange: SimExchange, server: ListeningServer, streams: SimStreamHub, pump: Task<Void, Never>) {
        self.exchange = exchange
        self.server = server
        self.streams = streams
        self.pump = pump
    }

    /// Closes every WebSocket connection at once (fault knob); returns how many there were.
    @discardableResult
    public func dropStreamConnections() -> Int { streams.dropAll() }

    /// Open WebSocket connections.
    public var streamConnections: Int { streams.sessionCount }

    /// Starts serving on `127.0.0.1:port` (0: a free port) and returns once it accepts connections.
    public static func start(_ config: SimulatorConfig, port: Int = 0) async throws -> SimulatorServer {
        let exchange = SimExchange(config: config)
        var logger = Logger(label: "qt-sim")
        logger.logLevel = .warning
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            try await withTaskExecutorPreference(requestExecutor) { try await respond(to: request, exchange: exchange) }
        }
        let hub = SimStreamHub(exchange: exchange)
        let upgrade = HTTPServerBuilder.http1WebSocketUpgrade(configuration: .init(ws: .init(maxFrameSize: 1 << 22))) { request, _, _ in
            guard let route = SimStreamHub.route(path: request.path?.split(separator: "?").first.map(String.init) ?? "",
                                                 query: request.path?.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init))
            else { return .dontUpgrade }
            return .upgrade([:]) { inbound, outbound, _ in
                let (session, outbox) = hub.open(combined: route.combined, streams: route.streams)
                defer { hub.close(session) }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        // The client closing ends the reader; the writer would otherwise wait on a
                        // quiet outbox (a user data stream with no events) for as long as the simulator runs.
                        defer { session.outbox.finish() }
                        for try await message in inbound.messages(maxSize: 1 << 16) {
                            if case .text(let text) = message { hub.request(text, from: session) }
                        }
                    }
                    for await text in outbox { try await outbound.write(.text(text)) }
                    // The outbox ended: the hub dropped this session (or the client left). The close
                    // handshake ends the reader too.
                    try? await outbound.close(.goingAway, reason: "connection dropped")
                    group.cancelAll()
                }
            }
        }
        let server: ListeningServer
        do {
            server = try await ListeningServer.start(responder: responder, server: upgrade, address: "127.0.0.1", port: port,
                                                     serverName: "qt-sim", logger: logger)
        } catch {
            throw ExchangeError.invalidRequest("the simulator could not listen on 127.0.0.1:\(port): \(error)")
        }
        let pump = Task.detached(executorPreference: pumpExecutor) {
            while !Task.isCancelled {
                hub.pump()
                try? await Task.sleep(for: .milliseconds(pumpIntervalMs))
            }
        }
        return SimulatorServer(exchange: exchange, server: server, streams: hub, pump: pump)
    }

    /// Stops accepting and closes the listener.
    public func stop() async {
        pump.cancel()
        _ = streams.dropAll()
        await server.stop()
    }

    private static func respond(to request: Request, exchange: SimExchange) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 1 << 16)
        // The network's delay comes before the exchange sees the request (it ages the timestamp).
        let latency = exchange.faults.latencyMs
        if latency > 0 { try await Task.sleep(nanoseconds: UInt64(latency) * 1_000_000) }
        let reply = exchange.handle(method: request.method.rawValue, path: request.uri.path, query: request.uri.query ?? "",
                                    body: String(buffer: body), apiKey: request.headers[HTTPField.Name("X-MBX-APIKEY")!])
        var headers = HTTPFields()
        for (name, value) in reply.headers {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        if reply.dropResponse {
            // The order went through; the answer never arrives: the head promises a body that is
            // never written, so the connection closes mid-response.
            headers[.contentLength] = "1024"
            return Response(status: .ok, headers: headers, body: ResponseBody(contentLength: 1024) { _ in throw ResponseDropped() })
        }
        headers[.contentType] = "application/json"
        return Response(status: HTTPResponse.Status(code: reply.status), headers: headers,
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: reply.body)))
    }
}

struct ResponseDropped: Error {}
