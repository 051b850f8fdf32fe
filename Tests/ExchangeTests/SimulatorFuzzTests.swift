import Exchange
import ExchangeSimulator
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Kernels
import XCTest

/// Issue 17: every simulator endpoint, called with missing, malformed, negative, huge and
/// non-ASCII parameters (signed correctly, so they reach the endpoint's own parsing). No request
/// may trap the simulator (it runs in this process: a trap ends the test run), and every answer
/// is a valid response or a Binance-style error: an HTTP 4xx with `{"code": <negative>, "msg": …}`.
final class SimulatorFuzzTests: SimulatorTestCase {
    struct Endpoint: Sendable {
        let method: String
        let path: String
        let signed: Bool
        let parameters: [(name: String, valid: String)]
    }

    let requests = 2_400

    /// The rate limits are tested elsewhere (`FailureHandlingTests`); here every request must
    /// reach its endpoint's parameter checks.
    override func configure(_ config: inout SimulatorConfig) {
        config.weightLimitPerMinute = 1_000_000
    }

    var endpoints: [Endpoint] {
        let symbol = exchange.symbols[0]
        return [
            Endpoint(method: "GET", path: "/fapi/v1/ping", signed: false, parameters: []),
            Endpoint(method: "GET", path: "/fapi/v1/time", signed: false, parameters: []),
            Endpoint(method: "GET", path: "/fapi/v1/exchangeInfo", signed: false, parameters: []),
            Endpoint(method: "GET", path: "/fapi/v1/ticker/24hr", signed: false, parameters: [("symbol", symbol)]),
            Endpoint(method: "GET", path: "/fapi/v1/klines", signed: false,
                     parameters: [("symbol", symbol), ("interval", "1m"), ("limit", "10"), ("startTime", "1800000000000"),
                                  ("endTime", "1800000600000")]),
            Endpoint(method: "GET", path: "/fapi/v1/premiumIndex", signed: false, parameters: [("symbol", symbol)]),
            Endpoint(method: "POST", path: "/fapi/v1/order", signed: true,
                     parameters: [("symbol", symbol), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.001"),
                                  ("reduceOnly", "false"), ("newClientOrderId", "fuzz-1")]),
            Endpoint(method: "GET", path: "/fapi/v1/order", signed: true,
                     parameters: [("symbol", symbol), ("origClientOrderId", "fuzz-1"), ("orderId", "1")]),
            Endpoint(method: "DELETE", path: "/fapi/v1/order", signed: true, parameters: [("symbol", symbol), ("origClientOrderId", "fuzz-1")]),
            Endpoint(method: "GET", path: "/fapi/v1/openOrders", signed: true, parameters: [("symbol", symbol)]),
            Endpoint(method: "GET", path: "/fapi/v1/userTrades", signed: true,
                     parameters: [("symbol", symbol), ("limit", "10"), ("fromId", "1"), ("startTime", "1800000000000")]),
            Endpoint(method: "GET", path: "/fapi/v1/commissionRate", signed: true, parameters: [("symbol", symbol)]),
            Endpoint(method: "GET", path: "/fapi/v2/positionRisk", signed: true, parameters: [("symbol", symbol)]),
            Endpoint(method: "GET", path: "/fapi/v2/account", signed: true, parameters: []),
            Endpoint(method: "GET", path: "/fapi/v2/balance", signed: true, parameters: []),
            Endpoint(method: "POST", path: "/fapi/v1/leverage", signed: true, parameters: [("symbol", symbol), ("leverage", "5")]),
            Endpoint(method: "GET", path: "/fapi/v1/positionSide/dual", signed: true, parameters: []),
            Endpoint(method: "POST", path: "/fapi/v1/positionSide/dual", signed: true, parameters: [("dualSidePosition", "false")]),
            Endpoint(method: "POST", path: "/fapi/v1/algoOrder", signed: true,
                     parameters: [("symbol", symbol), ("side", "SELL"), ("algoType", "CONDITIONAL"), ("type", "STOP_MARKET"),
                                  ("triggerPrice", "1"), ("closePosition", "true"), ("clientAlgoId", "fuzz-stop"),
                                  ("workingType", "MARK_PRICE")]),
            Endpoint(method: "GET", path: "/fapi/v1/algoOrder", signed: true, parameters: [("clientAlgoId", "fuzz-stop"), ("algoId", "1")]),
            Endpoint(method: "DELETE", path: "/fapi/v1/algoOrder", signed: true, parameters: [("clientAlgoId", "fuzz-stop")]),
            Endpoint(method: "GET", path: "/fapi/v1/openAlgoOrders", signed: true, parameters: [("symbol", symbol)]),
        ]
    }

    /// What replaces a valid value: missing (nil), malformed, negative, huge, non-ASCII, empty.
    static let hostileValues: [String?] = [
        nil, "", "abc", "1.5-2", "NaN", "Infinity", "0x1F", "-1", "-0.001", "0", "99999999999999999999999999", "1e300",
        "9223372036854775807", "-9223372036854775808", "币安人生", "ÆØÅ", "\u{200B}", "BTC USDT", "%ZZ", "a&b=c", "'; DROP", "\u{0}",
        String(repeating: "9", count: 5_000),
    ]

    func testEveryEndpointAnswersHostileParametersWithAValidResponseOrABinanceError() async throws {
        var random = SeededGenerator(seed: 1717)
        let endpoints = self.endpoints
        var planned: [(Endpoint, [(String, String)])] = []
        for index in 0..<requests {
            let endpoint = endpoints[index % endpoints.count]
            var parameters: [(String, String)] = []
            for (name, valid) in endpoint.parameters {
                // Half the parameters keep their valid value, so each hostile one is reached.
                if random.next() % 2 == 0 {
                    parameters.append((name, valid))
                } else if let value = Self.hostileValues[Int(random.next() % UInt64(Self.hostileValues.count))] {
                    parameters.append((name, value))
                }
            }
            if endpoint.parameters.isEmpty || random.next() % 8 == 0 {
                parameters.append(("unknownParam", Self.hostileValues[Int(random.next() % 6) + 1]!))
            }
            planned.append((endpoint, parameters))
        }

        let target = Target(baseURL: server.baseURL, credentials: credentials)
        var outcomes: [String: Int] = [:]
        var failures: [String] = []
        try await withThrowingTaskGroup(of: (String, String?).self) { group in
            var next = 0
            func launch() {
                guard next < planned.count else { return }
                let (endpoint, parameters) = planned[next]
                next += 1
                group.addTask { try await Self.send(endpoint, parameters, to: target) }
            }
            for _ in 0..<8 { launch() }
            while let (outcome, failure) = try await group.next() {
                outcomes[outcome, default: 0] += 1
                if let failure { failures.append(failure) }
                launch()
            }
        }
        let answered = outcomes.values.reduce(0, +)
        let sent = answered - outcomes["unsendable", default: 0]
        print("fuzz: \(answered) requests; " + outcomes.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", "))
        XCTAssertEqual(answered, requests)
        XCTAssertGreaterThanOrEqual(sent, 2_000)
        XCTAssertEqual(failures, [], "\(failures.count) answers neither valid nor a Binance error")
        XCTAssertGreaterThan(outcomes.filter { $0.key.hasPrefix("error") }.count, 5, "the hostile values reach the endpoints' checks")
        XCTAssertLessThan(outcomes["error -1003", default: 0], requests / 20, "requests reach the endpoints, not the rate limit")
        let time = try await client.serverTime()
        XCTAssertGreaterThan(time, 0, "the simulator still answers")
    }

    struct Target: Sendable {
        let baseURL: String
        let credentials: Credentials
    }

    /// One request; its outcome ("200" or "error <code>") and, if the answer breaks the contract, why.
    private static func send(_ endpoint: Endpoint, _ parameters: [(String, String)], to target: Target) async throws -> (String, String?) {
        let credentials = target.credentials
        var query = parameters.map { "\($0.0)=\(Self.encode($0.1))" }
        if endpoint.signed {
            query.append("timestamp=\(Int64(Date().timeIntervalSince1970 * 1000))")
            let payload = query.joined(separator: "&")
            query.append("signature=\(RequestSigner.signature(of: payload, secret: credentials.revealSecret()))")
        }
        let text = "\(target.baseURL)\(endpoint.path)" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        guard let url = URL(string: text) else { return ("unsendable", nil) }
        var request = URLRequest(url: url)
        request.httpMethod = endpoint.method
        request.setValue(credentials.apiKey, forHTTPHeaderField: "X-MBX-APIKEY")
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let body = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        let described = "\(endpoint.method) \(endpoint.path) \(parameters): HTTP \(status) \(String(decoding: data.prefix(200), as: UTF8.self))"
        if status == 200 {
            return ("200", body == nil ? "not JSON: " + described : nil)
        }
        guard (400..<500).contains(status), let object = body as? [String: Any], let code = object["code"] as? Int, code < 0,
              object["msg"] is String else {
            return ("bad \(status)", described)
        }
        return ("error \(code)", nil)
    }

    /// Percent-encodes like a client would, except `%ZZ`, sent raw to try the server's decoding.
    private static func encode(_ value: String) -> String {
        if value == "%ZZ" { return value }
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }
}
