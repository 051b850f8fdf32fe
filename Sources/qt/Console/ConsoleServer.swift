import Bus
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import HTTPServing
import NIOCore
import Synchronization

/// `qt console`'s web server on Hummingbird: the pages, `/console.js`, and `/events` (one
/// Server-Sent Events stream per open page, a fragment update a second). Reads with `readBus`;
/// the Control page writes with its own operator connection.
final class ConsoleServer: Sendable {
    private let server: ListeningServer
    private let sampler: ConsoleSampler
    private let stopping: StopSignal
    var port: Int { server.port }

    private init(server: ListeningServer, sampler: ConsoleSampler, stopping: StopSignal) {
        (self.server, self.sampler, self.stopping) = (server, sampler, stopping)
    }

    struct Routes: Sendable {
        let bus: BusConnection
        let sampler: ConsoleSampler
        let control: ControlPage
        let stopping: StopSignal
    }

    static func start(address: String, port: Int, bus: BusConnection, control: ControlPage) async throws -> ConsoleServer {
        var logger = Logger(label: "qt-console")
        logger.logLevel = .warning
        let sampler = ConsoleSampler()
        let stopping = StopSignal()
        let routes = Routes(bus: bus, sampler: sampler, control: control, stopping: stopping)
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            do {
                return try await routes.respond(request)
            } catch {
                return Self.response(500, "text/html; charset=utf-8",
                                     ConsoleHTML.page(title: "Error", page: "", live: false,
                                                      body: "<section><p id=\"error\">\(ConsoleHTML.escape(String(describing: error)))</p></section>"))
            }
        }
        let server: ListeningServer
        do {
            server = try await ListeningServer.start(responder: responder, server: .http1(configuration: .init(idleTimeout: .seconds(60))),
                                                     address: address, port: port, serverName: "qt-console", logger: logger)
        } catch {
            throw ValidationErrorText("console: \(error); choose another --port")
        }
        sampler.start(bus)
        return ConsoleServer(server: server, sampler: sampler, stopping: stopping)
    }

    /// Ends the live streams first (each sees the signal within 100 ms): a graceful shutdown
    /// waits for every open response.
    func stop() async {
        stopping.set()
        await server.stop()
        sampler.stop()
    }

    static func response(_ status: Int, _ contentType: String, _ body: String, headers extra: [(HTTPField.Name, String)] = []) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        for (name, value) in extra { headers[name] = value }
        return Response(status: HTTPResponse.Status(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}

/// Set once the server stops: the live streams end at their next tick.
final class StopSignal: Sendable {
    private let flag = Atomic(false)
    func set() { flag.store(true, ordering: .releasing) }
    var isSet: Bool { flag.load(ordering: .acquiring) }

    /// Waits `seconds`, returning early (within 100 ms) once the signal is set.
    func pause(seconds: Double) async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while !isSet, ContinuousClock.now < deadline {
            try await Task.sleep(for: min(.milliseconds(100), deadline - ContinuousClock.now))
        }
    }
}

struct ValidationErrorText: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
