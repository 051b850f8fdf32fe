import ArgumentParser
import Bus
import Foundation
import Host

/// `qt console`: the operator's browser view of a running pipeline (Overview, Pipeline, Symbol,
/// Trace, Control), on 127.0.0.1 unless told otherwise. It reads with the connection options
/// (the read-only identity where auth is on); control actions use the operator identity given
/// with --operator-nkey or --operator-creds, and need the operator token.
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Serve the operator console (live pages of the pipeline, trace, and halt/reduce/resume behind a token).")

    @OptionGroup var connection: ConnectionArguments
    @Option(help: "Address to listen on (the console has no TLS: keep it on loopback, or behind a proxy that adds it).")
    var address = "127.0.0.1"
    @Option(help: "Port to listen on (0: a free one).") var port = ConsoleCommand.defaultPort
    @Option(name: .customLong("operator-token-file"), help: "File holding the token the Control page asks for; without it, control is off.")
    var operatorTokenFile: String?
    @Option(name: .customLong("operator-nkey"), help: "NATS nkey seed file of the operator identity, used only for control writes.")
    var operatorNkey: String?
    @Option(name: .customLong("operator-creds"), help: "NATS credentials file of the operator identity, used only for control writes.")
    var operatorCreds: String?

    static let defaultPort = 8640

    func run() async throws {
        try await reportingErrors {
            let readBus = try BusConnection(connection.options(name: "qt-console"))
            defer { readBus.close() }
            var operatorOptions = connection
            if let operatorNkey { (operatorOptions.nkey, operatorOptions.creds) = (operatorNkey, nil) }
            if let operatorCreds { (operatorOptions.creds, operatorOptions.nkey) = (operatorCreds, nil) }
            let operatorBus = operatorNkey == nil && operatorCreds == nil
                ? readBus : try BusConnection(operatorOptions.options(name: "qt-console-operator"))
            defer { if operatorBus !== readBus { operatorBus.close() } }
            let token = try operatorTokenFile.map(Self.readToken)
            let server = try await ConsoleServer.start(address: address, port: port, bus: readBus,
                                                       control: ControlPage(operatorToken: token, operatorBus: operatorBus, readBus: readBus))
            printLine("console:    http://\(address):\(server.port)/" + (token == nil ? " (control off: no --operator-token-file)" : ""))
            await HostRunner.waitForTermination(orAfter: nil)
            await server.stop()
        }
    }

    /// The token's file, trimmed; an empty or unreadable file is named.
    static func readToken(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("--operator-token-file \(path): cannot read the file")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.count >= 16 else { throw ValidationError("--operator-token-file \(path): the token must have 16 characters or more") }
        return token
    }

    /// A fresh random token written to `file` (mode 0600), for `qt up --console`.
    static func writeFreshToken(to file: URL) throws -> String {
        var generator = SystemRandomNumberGenerator()
        let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        guard FileManager.default.createFile(atPath: file.path, contents: Data(token.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write the console's operator token to \(file.path)")
        }
        return token
    }
}
