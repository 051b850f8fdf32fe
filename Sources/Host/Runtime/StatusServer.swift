import Foundation
import HTTPTypes
import Hummingbird
import Logging
import HTTPServing
import NIOCore

/// `/healthz`, `/readyz` and `/metrics` on Hummingbird: any number of clients at once, on NIO's
/// event loops (not the cooperative pool), bound to 127.0.0.1 unless the node config's
/// `http_address` says otherwise. A client that connects and sends nothing is closed after 10 s.
final class StatusServer: Sendable {
    typealias Responder = @Sendable (_ path: String) -> (status: Int, contentType: String, body: String)
    private let server: ListeningServer
    var port: Int { server.port }

    private init(server: ListeningServer) {
        self.server = server
    }

    /// Serves on `address:port` (port 0: a free one) and returns once it accepts connections.
    static func start(address: String, port: Int, responder: @escaping Responder) async throws -> StatusServer {
        var logger = Logger(label: "qt-status")
        logger.logLevel = .warning
        let callback = CallbackResponder<BasicRequestContext> { request, _ in
            guard request.method == .get || request.method == .head else {
                return Self.response(405, "text/plain", "only GET\n")
            }
            let answer = responder(request.uri.path)
            return Self.response(answer.status, answer.contentType, answer.body)
        }
        do {
            return StatusServer(server: try await ListeningServer.start(
                responder: callback, server: .http1(configuration: .init(idleTimeout: .seconds(10))),
                address: address, port: port, serverName: "qt-host", logger: logger))
        } catch {
            throw HostError.startup("status server: \(error); set http_port to a free port")
        }
    }

    func stop() async {
        await server.stop()
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
