import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A local HTTP server standing in for a webhook, Slack or the Telegram Bot API in tests: it keeps
/// every POST it accepted, answers `{"ok":true}` (what Telegram says), and can refuse the next
/// requests with a 500 or answer slowly, to show what the relay does when a sink fails.
public final class FakeSink: Sendable {
    public struct Received: Sendable {
        public let path: String
        public let body: Data

        /// The body as a JSON object (empty when it is not one).
        public var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:]
        }
    }

    public let port: Int
    private let record: Record
    private let services: ServiceGroup
    private let task: Task<Void, Error>

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    private init(port: Int, record: Record, services: ServiceGroup, task: Task<Void, Error>) {
        self.port = port
        self.record = record
        self.services = services
        self.task = task
    }

    /// What the server's handler and the test share.
    private final class Record: Sendable {
        let state = Mutex<(accepted: [Received], refusals: Int, refused: Int, delayMs: Int)>(([], 0, 0, 0))
    }

    /// What it accepted, in order.
    public var accepted: [Received] { record.state.withLock { $0.accepted } }
    /// How many requests it refused.
    public var refused: Int { record.state.withLock { $0.refused } }

    /// The next `count` requests get a 500 and are not kept.
    public func refuseNext(_ count: Int) { record.state.withLock { $0.refusals = count } }

    /// Each answer waits this long.
    public func answerAfter(ms: Int) { record.state.withLock { $0.delayMs = ms } }

    public static func start() async throws -> FakeSink {
        let shared = Record()
        var logger = Logger(label: "qt-fake-sink")
        logger.logLevel = .warning
        let router = Router()
        router.post("**") { request, context -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            let (delayMs, refuse) = shared.state.withLock { state -> (Int, Bool) in
                if state.refusals > 0 {
                    state.refusals -= 1
                    state.refused += 1
                    return (state.delayMs, true)
                }
                return (state.delayMs, false)
            }
            if delayMs > 0 { try await Task.sleep(nanoseconds: UInt64(delayMs) * 1_000_000) }
            if refuse { return Response(status: .internalServerError, body: .init(byteBuffer: ByteBuffer(string: "{\"ok\":false}"))) }
            shared.state.withLock { $0.accepted.append(Received(path: request.uri.path, body: Data(body.readableBytesView))) }
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: "{\"ok\":true,\"result\":{}}")))
        }
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let application = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                                      onServerRunning: { channel in
                                          portSink.yield(channel.localAddress?.port ?? 0)
                                          portSink.finish()
                                      }, logger: logger)
        let services = ServiceGroup(configuration: .init(services: [application], logger: logger))
        let task = Task { try await services.run() }
        var bound = 0
        for await value in ports { bound = value }
        guard bound > 0 else {
            task.cancel()
            throw FakeSinkError(description: "the fake sink could not listen on 127.0.0.1")
        }
        return FakeSink(port: bound, record: shared, services: services, task: task)
    }

    public func stop() async {
        await services.triggerGracefulShutdown()
        _ = try? await task.value
    }
}

struct FakeSinkError: Error, CustomStringConvertible {
    let description: String
}
