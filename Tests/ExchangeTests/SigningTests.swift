@testable import Exchange
@testable import ExchangeSimulator
import XCTest

final class SigningTests: XCTestCase {
    /// Binance's documented HMAC-SHA256 example (DESIGN.md §11).
    func testBinanceDocumentedExampleSignsToTheDocumentedSignature() {
        let secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
        let query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
        XCTAssertEqual(RequestSigner.signature(of: query, secret: secret),
                       "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71")
    }

    func testSignatureIsRemovedWherePlacedBeforeVerifying() {
        XCTAssertEqual(SimExchange.withoutSignature("a=1&b=2&signature=abc"), "a=1&b=2")
        XCTAssertEqual(SimExchange.withoutSignature(""), "")
    }

    func testQueryStringKeepsOrderAndEncodesValues() {
        XCTAssertEqual(QueryString.encode([("symbol", "BTCUSDT"), ("id", "qt-a/b:c"), ("note", "a b&c")]),
                       "symbol=BTCUSDT&id=qt-a%2Fb%3Ac&note=a%20b%26c")
        let decoded = QueryString.decode("symbol=BTCUSDT&id=qt-a%2Fb%3Ac")
        XCTAssertEqual(decoded.map(\.0), ["symbol", "id"])
        XCTAssertEqual(decoded.map(\.1), ["BTCUSDT", "qt-a/b:c"])
    }

    func testCredentialsNeverPrintTheSecretOrTheWholeKey() throws {
        let credentials = try Credentials.fromEnvironment(environment: ["QT_API_KEY": "KEY1234567890abcd", "QT_API_SECRET": "SECRETsecret"])
        for text in [credentials.description, "\(credentials)", String(reflecting: credentials)] {
            XCTAssertFalse(text.contains("SECRETsecret"), text)
            XCTAssertFalse(text.contains("KEY1234567890"), text)
            XCTAssertTrue(text.contains("abcd"), text)
        }
    }

    func testMissingCredentialVariableIsNamed() {
        XCTAssertThrowsError(try Credentials.fromEnvironment(environment: ["QT_API_KEY": "k"])) { error in
            XCTAssertTrue("\(error)".contains("QT_API_SECRET"), "\(error)")
        }
    }

    func testCredentialsFromAFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("qt-secret-\(UUID().uuidString)").path
        try "file-secret\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let credentials = try Credentials.fromEnvironment(environment: ["QT_API_KEY": "k", "QT_API_SECRET": "@" + path])
        XCTAssertEqual(credentials.secret, "file-secret")
    }
}
