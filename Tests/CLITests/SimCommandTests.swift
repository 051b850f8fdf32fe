import Foundation
import NatsServerKit
import XCTest

/// `qt sim` as a user runs it: start it, read its base URL, ask it with curl.
final class SimCommandTests: XCTestCase {
    func testQtSimServesBinanceShapedExchangeInfoAndKlinesToCurl() throws {
        let process = Process()
        process.executableURL = try qtBinary()
        process.arguments = ["sim", "--symbols", "7", "--bar-ms", "100", "--port", "0", "--duration", "20"]
        var environment = ProcessInfo.processInfo.environment
        environment["QT_API_KEY"] = nil
        environment["QT_API_SECRET"] = nil
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        defer { if process.isRunning { process.terminate() }; process.waitUntilExit() }

        var printed = ""
        let deadline = Date().addingTimeInterval(20)
        while !printed.contains("API secret:"), Date() < deadline, process.isRunning {
            printed += String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        }
        let urlLine = try XCTUnwrap(printed.split(separator: "\n").first { $0.hasPrefix("simulator:") }, printed)
        let baseURL = try XCTUnwrap(urlLine.split(separator: " ").first { $0.hasPrefix("http://127.0.0.1:") }.map(String.init))
        XCTAssertTrue(printed.contains("API key:"), "a generated key pair is printed when QT_API_KEY is unset")

        let curl = URL(fileURLWithPath: "/usr/bin/curl")
        let info = try ChildProcess.run(curl, ["-sf", baseURL + "/fapi/v1/exchangeInfo"])
        XCTAssertEqual(info.status, 0, info.stderr)
        let infoJSON = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])
        let symbols = try XCTUnwrap(infoJSON["symbols"] as? [[String: Any]])
        XCTAssertEqual(symbols.count, 7)
        XCTAssertEqual(symbols[0]["symbol"] as? String, "BTCUSDT")
        XCTAssertEqual(symbols[0]["contractType"] as? String, "PERPETUAL")
        let filters = try XCTUnwrap(symbols[0]["filters"] as? [[String: Any]])
        let lot = try XCTUnwrap(filters.first { $0["filterType"] as? String == "LOT_SIZE" })
        XCTAssertEqual(lot["stepSize"] as? String, "0.001", "decimals are strings, as Binance sends them")
        XCTAssertNotNil(infoJSON["serverTime"] as? Int)

        let klines = try ChildProcess.run(curl, ["-sf", baseURL + "/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=3"])
        XCTAssertEqual(klines.status, 0, klines.stderr)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(klines.stdout.utf8)) as? [[Any]])
        XCTAssertEqual(rows.count, 3)
        for row in rows {
            XCTAssertEqual(row.count, 12, "[openTime, open, high, low, close, volume, closeTime, quoteVolume, trades, takerBase, takerQuote, ignore]")
            XCTAssertNotNil(row[0] as? Int)
            XCTAssertNotNil(Double(try XCTUnwrap(row[4] as? String)))
            XCTAssertEqual((row[6] as? Int).map { $0 - (row[0] as! Int) }, 59_999)
        }

        let unsigned = try ChildProcess.run(curl, ["-s", baseURL + "/fapi/v2/account"])
        XCTAssertTrue(unsigned.stdout.contains("\"code\":-2014"), "a signed endpoint without a key answers Binance's error: \(unsigned.stdout)")
    }
}
