import Exchange
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The simulator on loopback HTTP (Hummingbird): Binance's paths, answered by `SimExchange`.
/// Embeddable: tests and `qt up` start one in-process; `qt sim` runs one on its own.
public final class SimulatorServer: Sendable {
    public let exchange: SimExchange
    public let port: Int
    private let services: ServiceGroup
    private let task: Task<Void, Error>

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    private init(exchange: SimExchange, port: Int, services: ServiceGroup, task: Task<Void, Error>) {
        self.exchange = exchange
        self.port = port
        self.services = services
        self.task = task
    }

    /// Starts serving on `127.0.0.1:port` (0: a free port) and returns once it accepts connections.
    public static func start(_ config: SimulatorConfig, port: Int = 0) async throws -> SimulatorServer {
        let exchange = SimExchange(config: config)
        var logger = Logger(label: "qt-sim")
        logger.logLevel = .warning
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            try await respond(to: request, exchange: exchange)
        }
        let application = Application(
            responder: responder, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "qt-sim"),
            onServerRunning: { channel in
                portSink.yield(channel.localAddress?.port ?? 0)
                portSink.finish()
            },
            logger: logger)
        let services = ServiceGroup(configuration: .init(services: [application], logger: logger))
        let task = Task { try await services.run() }
        var bound: Int?
        for await value in ports { bound = value }
        guard let bound, bound > 0 else {
            task.cancel()
            _ = try? await task.value
            throw ExchangeError.invalidRequest("the simulator could not listen on 127.0.0.1:\(port)")
        }
        return SimulatorServer(exchange: exchange, port: bound, services: services, task: task)
    }

    /// Stops accepting and closes the listener.
    public func stop() async {
        await services.triggerGracefulShutdown()
        _ = try? await task.value
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
