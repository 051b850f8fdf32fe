import Foundation
import HummingbirdWSClient
import Logging
import Synchronization
import XCTest

/// Debian's Chromium, headless, driven over the DevTools protocol (JSON commands on the page's
/// WebSocket): open a URL, run a script in the page and read its value, take a screenshot. What
/// a test reads is the DOM the browser built, scripts and live updates included.
final class HeadlessChromium {
    private let process: Process
    private let profile: URL
    /// The browser's DevTools WebSocket, from "DevTools listening on ws://…" on its stderr.
    let browserURL: String

    static func executable() -> String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    init(width: Int = 1400, height: Int = 1000) throws {
        let path = try XCTUnwrap(Self.executable(), "no Chromium: scripts/deps installs Debian's chromium")
        profile = FileManager.default.temporaryDirectory.appendingPathComponent("qt-chromium-\(UUID().uuidString.prefix(8))")
        process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        // No sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                             "--remote-debugging-port=0", "--remote-allow-origins=*", "--user-data-dir=\(profile.path)",
                             "--window-size=\(width),\(height)", "about:blank"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/…"
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !text.contains("DevTools listening on") {
            let chunk = errors.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let range = text.range(of: #"ws://127\.0\.0\.1:\d+/devtools/browser/[0-9a-f-]+"#, options: .regularExpression) else {
            process.terminate()
            // A failure, not a skip: CI installs Chromium, and a console test that did not run must not pass.
            throw DevToolsPage.Failure(description: "Chromium did not open DevTools: \(text.suffix(1_000))")
        }
        browserURL = String(text[range])
        // Keep draining stderr so that Chromium never blocks on a full pipe.
        errors.fileHandleForReading.readabilityHandler = { _ = $0.availableData }
    }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: profile)
    }

    /// A new tab, attached to over the browser's connection (the /json HTTP listing is not used:
    /// Foundation's client refuses Chromium's header lines).
    func page() async throws -> DevToolsPage {
        let connection = try await DevToolsPage.connect(browserURL)
        let created = try await connection.send("Target.createTarget", ["url": "about:blank"])
        let target = try XCTUnwrap(created["targetId"] as? String, "Target.createTarget: \(created)")
        let attached = try await connection.send("Target.attachToTarget", ["targetId": target, "flatten": true])
        connection.attach(session: try XCTUnwrap(attached["sessionId"] as? String, "Target.attachToTarget: \(attached)"))
        return connection
    }
}

/// One page's DevTools connection: each command gets an id, and its answer resumes the caller.
final class DevToolsPage: Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let commands: AsyncStream<String>.Continuation
    private let waiting = Mutex<[Int: CheckedContinuation<String, Error>]>([:])
    private let nextID = Atomic(1)
    private let connection = Mutex<Task<Void, Never>?>(nil)
    /// The page's session on the browser connection; commands without one go to the browser.
    private let session = Mutex<String?>(nil)

    func attach(session id: String) { session.withLock { $0 = id } }

    private init(commands: AsyncStream<String>.Continuation) {
        self.commands = commands
    }

    static func connect(_ url: String) async throws -> DevToolsPage {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        let page = DevToolsPage(commands: continuation)
        let (opened, openedSink) = AsyncStream.makeStream(of: Bool.self)
        var logger = Logger(label: "devtools")
        logger.logLevel = .warning
        let task = Task {
            do {
                try await WebSocketClient.connect(url: url, configuration: .init(maxFrameSize: 1 << 26), logger: logger) { inbound, outbound, _ in
                    openedSink.yield(true)
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for await command in stream { try await outbound.write(.text(command)) }
                        }
                        for try await message in inbound.messages(maxSize: 1 << 27) {
                            guard case .text(let text) = message else { continue }
                            page.received(text)
                        }
                        group.cancelAll()
                    }
                }
            } catch {
                openedSink.yield(false)
            }
            page.failAll("the DevTools connection closed")
        }
        page.connection.withLock { $0 = task }
        var isOpen = false
        for await value in opened {
            isOpen = value
            break
        }
        guard isOpen else { throw Failure(description: "cannot open the DevTools WebSocket \(url)") }
        return page
    }

    deinit {
        commands.finish()
        connection.withLock { $0 }?.cancel()
    }

    /// An answer carries its command's id; events (none asked for) carry none.
    private func received(_ text: String) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let id = object["id"] as? Int else { return }
        waiting.withLock { $0.removeValue(forKey: id) }?.resume(returning: text)
    }

    private func failAll(_ why: String) {
        let all = waiting.withLock { waiting in
            defer { waiting.removeAll() }
            return Array(waiting.values)
        }
        for continuation in all { continuation.resume(throwing: Failure(description: why)) }
    }

    func send(_ method: String, _ parameters: [String: Any] = [:]) async throws -> [String: Any] {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        var command: [String: Any] = ["id": id, "method": method, "params": parameters]
        if let session = session.withLock({ $0 }) { command["sessionId"] = session }
        let data = try JSONSerialization.data(withJSONObject: command)
        let text = try await withCheckedThrowingContinuation { continuation in
            waiting.withLock { $0[id] = continuation }
            commands.yield(String(decoding: data, as: UTF8.self))
        }
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
        if let error = object["error"] { throw Failure(description: "DevTools \(method): \(error)") }
        return object["result"] as? [String: Any] ?? [:]
    }

    /// The script's value (JSON-compatible), after awaiting it when it is a promise.
    func evaluate(_ script: String) async throws -> Any? {
        let answer = try await send("Runtime.evaluate", ["expression": script, "returnByValue": true, "awaitPromise": true])
        if let exception = answer["exceptionDetails"] { throw Failure(description: "script failed: \(script): \(exception)") }
        return (answer["result"] as? [String: Any])?["value"]
    }

    func open(_ url: String) async throws {
        _ = try await send("Page.navigate", ["url": url])
        try await waitFor("document.readyState === 'complete' && location.href.startsWith(\(Self.quoted(url)))", seconds: 30)
    }

    /// Polls `condition` (a script) until it is true; the page may be navigating meanwhile.
    func waitFor(_ condition: String, seconds: Double) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        var last = "never evaluated"
        while Date() < deadline {
            do {
                if let value = try await evaluate("Boolean(\(condition))") as? Bool, value { return }
                last = "false"
            } catch {
                last = "\(error)"   // a navigation replaced the context: ask again
            }
            try await Task.sleep(nanoseconds: 250_000_000)
        }
        throw Failure(description: "not true within \(seconds) s: \(condition) (last: \(last))")
    }

    func screenshot(to file: URL) async throws {
        let answer = try await send("Page.captureScreenshot", ["format": "png", "captureBeyondViewport": true])
        let data = try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(answer["data"] as? String)))
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: file)
    }

    static func quoted(_ text: String) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: [text]), as: UTF8.self).dropFirst().dropLast().description
    }
}
