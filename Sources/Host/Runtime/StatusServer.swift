import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// `/healthz`, `/readyz` and `/metrics` on Hummingbird: any number of clients at once, on NIO's
/// event loops (not the cooperative pool), bound to 127.0.0.1 unless the node config's
/// `http_address` says otherwise. A client that connects and sends nothing is closed after 10 s.
final class StatusServer: Sendable {
    typealias Responder = @Sendable (_ path: String) -> (status: Int, contentType: String, body: String)
    let port: Int
    private let services: ServiceGroup
    private let task: Task<Void, Error>

    private init(port: Int, services: ServiceGroup, task: Task<Void, Error>) {
        self.port = port
        self.services = services
        self.task = task
    }

    /// Serves on `address:port` (port 0: a free one) and returns once it accepts connections.
    static func start(address: String, port: Int, responder: @escaping Responder) async throws -> StatusServer {
        var logger = Logger(label: "qt-status")
        logger.logLevel = .warning
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            responder: CallbackResponder<BasicRequestContext> { request, _ in
                guard request.method == .get || request.method == .head else {
                    return Self.response(405, "text/plain", "only GET\n")
                }
                let answer = responder(request.uri.path)
                return Self.response(answer.status, answer.contentType, answer.body)
            },
            server: .http1(configuration: .init(idleTimeout: .seconds(10))),
            configuration: .init(address: .hostname(address, port: port), serverName: "qt-host"),
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
            let failure = await task.result
            throw HostError.startup("status server: cannot listen on \(address):\(port) (\(failure)); set http_port to a free port")
        }
        return StatusServer(port: bound, services: services, task: task)
    }

    func stop() async {
        await services.triggerGracefulShutdown()
        _ = try? await task.value
    }

    private static func response(_ status: Int, _ contentType: String, _ body: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        return Response(status: HTTPResponse.Status(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}

public enum HostError: Error, CustomStringConvertible {
    case startup(String)
    public var description: String {
        switch self {
        case .startup(let text): return text
        }
    }
}
