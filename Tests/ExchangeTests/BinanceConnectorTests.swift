import Exchange
import ExchangeSimulator
import Foundation
import XCTest

/// Binance's own Python connector (binance-futures-connector from PyPI, pinned in
/// scripts/test-binance-client.txt) against the simulator, unchanged: v3 account, balance and
/// positionRisk, klines, a MARKET order, allOrders, a STOP_MARKET through the Algo API,
/// allAlgoOrders, income, a listenKey and user data events over WebSocket, a Binance-style error.
final class BinanceConnectorTests: SimulatorTestCase {
    func testBinancesPythonConnectorWorksAgainstTheSimulatorUnchanged() async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/python/binance_connector_check.py")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path]
        var environment = ProcessInfo.processInfo.environment
        environment["QT_SIM_URL"] = server.baseURL
        environment["QT_SIM_WS"] = server.streamURL
        environment["QT_API_KEY"] = credentials.apiKey
        environment["QT_API_SECRET"] = credentials.revealSecret()
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = await Task.detached { String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }.value
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("all steps passed"), text)
        XCTAssertGreaterThanOrEqual(text.components(separatedBy: "\nok: ").count - 1 + (text.hasPrefix("ok: ") ? 1 : 0), 15, text)
    }
}
