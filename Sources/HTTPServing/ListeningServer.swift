import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle

/// A Hummingbird application run in its own service group, started and awaited until it accepts
/// connections: the host's status endpoint, the exchange simulator and the operator console all
/// start their servers this way.
public final class ListeningServer: Sendable {
    /// The bound port (the one asked for, or the free one chosen for port 0).
    public let port: Int
    private let services: ServiceGroup
    private let task: Task<Void, Error>

    private init(port: Int, services: ServiceGroup, task: Task<Void, Error>) {
        (self.port, self.services, self.task) = (port, services, task)
    }

    public struct CannotListen: Error, CustomStringConvertible {
        public let address: String
        public let port: Int
        public let cause: String
        public var description: String { "cannot listen on \(address):\(port) (\(cause))" }
    }

    /// Serves `responder` on `address:port` and returns once it accepts connections.
    public static func start<Responder: HTTPResponder>(
        responder: Responder, server: HTTPServerBuilder, address: String, port: Int, serverName: String, logger: Logger
    ) async throws -> ListeningServer where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            responder: responder, server: server,
            configuration: .init(address: .hostname(address, port: port), serverName: serverName),
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
            throw CannotListen(address: address, port: port, cause: "\(failure)")
        }
        return ListeningServer(port: bound, services: services, task: task)
    }

    /// Stops accepting, lets the open requests finish, and returns when the server is down.
    public func stop() async {
        await services.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
