import Bus
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Messages
import NatsServerKit
import XCTest

/// Issue 18: TLS to the server. Certificates come from `deploy/tls/make-certs` (openssl), two
/// independent CAs per test: a client must verify the server against the configured CA, a plain
/// client is told that TLS is required, and a client that trusts another CA refuses the server.
final class TLSTests: XCTestCase {
    private var directory: URL!
    private var server: NatsServer!

    static var repositoryRoot: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }

    /// A CA with server, route and client certificates for localhost and 127.0.0.1.
    static func makeCertificates(in directory: URL) throws {
        let script = repositoryRoot.appendingPathComponent("deploy/tls/make-certs").path
        let result = try ChildProcess.run(URL(fileURLWithPath: "/bin/bash"), [script, directory.path])
        // A failure, never a skip: without certificates the TLS, identity and deploy tests would prove nothing.
        guard result.status == 0 else { throw CertificateFailure(description: "make-certs failed (\(result.status)): \(result.stderr)") }
    }

    struct CertificateFailure: Error, CustomStringConvertible { let description: String }

    override func setUp() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("qt-tls-\(UUID().uuidString.prefix(8))")
        for ca in ["ca-one", "ca-two"] { try Self.makeCertificates(in: directory.appendingPathComponent(ca)) }
        let config = directory.appendingPathComponent("nats.conf")
        let certificates = directory.appendingPathComponent("ca-one")
        try """
            tls {
              cert_file: "\(certificates.appendingPathComponent("server.pem").path)"
              key_file: "\(certificates.appendingPathComponent("server-key.pem").path)"
              timeout: 2
            }
            """.write(to: config, atomically: true, encoding: .utf8)
        server = try NatsServer(extraArguments: ["-c", config.path])
    }

    override func tearDown() async throws {
        server?.stop()
        server = nil
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    private func options(trusting ca: String?) -> ConnectionOptions {
        var options = ConnectionOptions(servers: [server.url], name: "tls-test")
        options.maxReconnectAttempts = 0
        if let ca { options.tls = .init(caFile: directory.appendingPathComponent(ca).appendingPathComponent("ca.pem").path) }
        return options
    }

    private func connectionError(_ options: ConnectionOptions) -> String {
        do {
            let bus = try BusConnection(options)
            bus.close()
            return "connected"
        } catch {
            return "\(error)"
        }
    }

    func testAClientThatTrustsTheServersCAConnectsAndPublishes() async throws {
        let bus = try BusConnection(options(trusting: "ca-one"))
        defer { bus.close() }
        _ = try await bus.provision()
        var kline = Kline()
        kline.symbol = "BTCUSDT"
        kline.meta.eventTimeMs = 1_800_000_000_000
        let ack = try await bus.publish(try OutgoingMessage(kline, subject: Subjects.kline("BTCUSDT"), id: "tls-1", producer: "tls-test"))
        XCTAssertEqual(ack.stream, "QT_MARKET")
    }

    func testAPlainClientIsToldTheServerRequiresTLS() {
        let error = connectionError(options(trusting: nil))
        XCTAssertTrue(error.contains("requires TLS"), error)
        XCTAssertTrue(error.contains("nats.tls.ca"), "the message says what to set: \(error)")
    }

    /// Mutual TLS between cluster nodes: a node whose route certificate another CA signed is
    /// refused, one with a certificate of the cluster's CA joins (the control).
    func testARouteFromANodeWithAnotherCAsCertificateIsRefused() async throws {
        let ports = try FreePorts.take(6)
        func config(_ name: String, routeCA: String, client: Int, route: Int, monitor: Int, joins: Int) -> URL {
            let certificates = directory.appendingPathComponent(routeCA)
            let url = directory.appendingPathComponent("\(name).conf")
            // JetStream in a cluster needs routes configured on every node.
            let routes = "routes: [\"nats-route://127.0.0.1:\(joins)\"]"
            try? """
                server_name: \(name)
                listen: 127.0.0.1:\(client)
                http: 127.0.0.1:\(monitor)
                cluster {
                  name: qt-tls
                  listen: 127.0.0.1:\(route)
                  \(routes)
                  tls {
                    cert_file: "\(certificates.appendingPathComponent("route.pem").path)"
                    key_file: "\(certificates.appendingPathComponent("route-key.pem").path)"
                    ca_file: "\(directory.appendingPathComponent("ca-one").appendingPathComponent("ca.pem").path)"
                    verify: true
                    timeout: 2
                  }
                }
                """.write(to: url, atomically: true, encoding: .utf8)
            return url
        }
        let first = try NatsServer(port: ports[0], extraArguments: ["-c", config("tls-a", routeCA: "ca-one", client: ports[0], route: ports[1],
                                                                              monitor: ports[2], joins: ports[4]).path])
        defer { first.stop() }
        let stranger = try NatsServer(port: ports[3], extraArguments: ["-c", config("tls-b", routeCA: "ca-two", client: ports[3], route: ports[4],
                                                                                 monitor: ports[5], joins: ports[1]).path])
        try await Task.sleep(nanoseconds: 3_000_000_000)
        let refused = try await routes(monitor: ports[2])
        stranger.stop()
        XCTAssertEqual(refused, 0, "a route whose certificate the cluster's CA did not sign")

        let member = try NatsServer(port: ports[3], extraArguments: ["-c", config("tls-c", routeCA: "ca-one", client: ports[3], route: ports[4],
                                                                               monitor: ports[5], joins: ports[1]).path])
        defer { member.stop() }
        var joined = 0
        for _ in 0..<50 where joined == 0 {
            try await Task.sleep(nanoseconds: 200_000_000)
            joined = try await routes(monitor: ports[2])
        }
        XCTAssertGreaterThan(joined, 0, "a node with a route certificate of the cluster's CA joins")
    }

    private func routes(monitor: Int) async throws -> Int {
        let (data, _) = try await URLSession.shared.data(from: try XCTUnwrap(URL(string: "http://127.0.0.1:\(monitor)/routez")))
        let routez = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try XCTUnwrap(routez["num_routes"] as? Int)
    }

    func testAClientThatTrustsAnotherCARefusesTheServer() {
        let error = connectionError(options(trusting: "ca-two"))
        XCTAssertNotEqual(error, "connected")
        XCTAssertTrue(error.contains("certificate"), error)
    }
}
