import Foundation
import Messages
import Kernels
import XCTest

/// Every golden vector of DESIGN.md §6.1–6.4 within its stated tolerance.
final class KernelVectorTests: XCTestCase {
    func testMarketStateVectors() throws {
        let cases = try GoldenVectors.cases("market_state")
        XCTAssertGreaterThanOrEqual(cases.count, 9)
        for vector in cases {
            let name = vector["name"] as? String ?? "?"
            let closes = try XCTUnwrap(vector["closes"] as? [NSNumber], name).map(\.doubleValue)
            let result = MarketStateKernel.compute(closes: closes)
            guard let expected = vector["expected"] as? [String: Any] else {
                XCTAssertNil(result, "\(name): fewer than 257 closes give no state")
                continue
            }
            let values = try XCTUnwrap(result, name)
            let fields: [(String, Double)] = [
                ("sigma", values.sigma), ("sigma_ewma", values.sigmaEwma), ("sigma_mad", values.sigmaMad),
                ("spike_proxy", values.spikeProxy), ("mu", values.mu), ("mu_64", values.mu64), ("mu_128", values.mu128),
                ("mu_256", values.mu256), ("ts", values.ts), ("dp", values.dp), ("vr", values.vr), ("p_trend", values.pTrend),
                ("p_mr", values.pMr), ("p_chop", values.pChop),
            ]
            for (key, actual) in fields {
                assertClose(actual, try XCTUnwrap(number(expected[key]), "\(name).\(key)"), "\(name).\(key)")
            }
        }
    }

    func testHarvestVectors() throws {
        let root = try GoldenVectors.root("harvest")
        let theta = try XCTUnwrap(root["theta"] as? [String: Any])
        XCTAssertEqual(number(theta["kill_threshold"]), HarvestKernel.Theta().killThreshold, "defaults follow the vectors' theta")
        XCTAssertEqual(number(theta["k_age_penalty"]), HarvestKernel.Theta().kAgePenalty)
        let cases = try GoldenVectors.cases("harvest")
        XCTAssertGreaterThanOrEqual(cases.count, 50)
        for vector in cases {
            let name = vector["name"] as? String ?? "?"
            let position = try XCTUnwrap(vector["position"] as? [String: Any], name)
            let market = try XCTUnwrap(vector["market_state"] as? [String: Any], name)
            let expected = try XCTUnwrap(vector["expected"] as? [String: Any], name)
            let input = HarvestKernel.Position(
                side: position["side"] as? String == "LONG" ? .long : .short,
                entryPrice: try XCTUnwrap(number(position["entry_price"])), markPrice: try XCTUnwrap(number(position["mark_price"])),
                ageSec: try XCTUnwrap(number(position["age_sec"])), currentStop: number(position["current_sl"]),
                tranchesTaken: Int(number(position["tranches_taken"]) ?? 0), stopDistPct: number(vector["stop_dist_pct"]))
            let result = HarvestKernel.propose(input, market: HarvestKernel.Market(
                sigma: try XCTUnwrap(number(market["sigma"])), ts: try XCTUnwrap(number(market["ts"])),
                pTrend: try XCTUnwrap(number(market["p_trend"])), pMr: try XCTUnwrap(number(market["p_mr"])),
                pChop: try XCTUnwrap(number(market["p_chop"]))))

            XCTAssertEqual(result.action, try Self.action(expected["action"]), "\(name).action")
            XCTAssertEqual(result.reasons, try (expected["reason_codes"] as? [String] ?? []).map(Self.reason), "\(name).reason_codes")
            for (key, actual) in [("r_net", result.rNet), ("risk_per_unit", result.riskPerUnit), ("cost_per_unit", result.costPerUnit),
                                  ("kill_score", result.killScore), ("k_regime_flip", result.regimeFlip),
                                  ("k_sigma_spike", result.sigmaSpike), ("k_ts_drop", result.tsDrop), ("k_age_penalty", result.agePenalty)] {
                assertClose(actual, try XCTUnwrap(number(expected[key]), "\(name).\(key)"), absolute: 0, "\(name).\(key)")
            }
            if let stop = number(expected["new_sl"]) {
                assertClose(try XCTUnwrap(result.newStop, "\(name): a stop is proposed"), stop, absolute: 0, "\(name).new_sl")
            } else {
                XCTAssertNil(result.newStop, "\(name): no stop proposed")
            }
        }
    }

    /// The seed's incident: regime flip, ts_drop 0.24, 52 minutes old → K ≈ 0.756, a FULL_CLOSE.
    func testTheSeedIncidentCaseClosesWithKillScoreAndRegimeFlip() throws {
        let vector = try XCTUnwrap(try GoldenVectors.cases("harvest").first { $0["name"] as? String == "seed_incident_btc_k0756" })
        let expected = try XCTUnwrap(vector["expected"] as? [String: Any])
        XCTAssertEqual(expected["action"] as? String, "FULL_CLOSE")
        let k = try XCTUnwrap(number(expected["kill_score"]))
        XCTAssertEqual(k, 0.756, accuracy: 0.001)
        XCTAssertEqual(HarvestKernel.killScore(regimeFlip: 1, sigmaSpike: 0, tsDrop: 0.24, agePenalty: 52 * 60 / 86_400.0,
                                               theta: HarvestKernel.Theta()), k, accuracy: 0.001)
    }

    func testHeatVectors() throws {
        let cases = try GoldenVectors.cases("heat")
        XCTAssertGreaterThanOrEqual(cases.count, 10)
        for vector in cases {
            let name = vector["name"] as? String ?? "?"
            let positions = try XCTUnwrap(vector["positions"] as? [[String: Any]], name)
            let exposures = try positions.map {
                HeatKernel.Exposure(notional: try XCTUnwrap(number($0["notional"])), sigma: try XCTUnwrap(number($0["sigma"])))
            }
            let expected = try XCTUnwrap(vector["expected"] as? [String: Any], name)
            let heat = HeatKernel.heat(exposures, equity: try XCTUnwrap(number(vector["equity"]), name))
            assertClose(heat, try XCTUnwrap(number(expected["heat"])), "\(name).heat")
            let bucket = HeatKernel.bucket(heat)
            XCTAssertEqual(bucket, try Self.bucket(expected["bucket"]), "\(name).bucket")
            for calibration in vector["calibration"] as? [[String: Any]] ?? [] {
                let proposed = try Self.action(calibration["proposed"])
                let reasons = try (calibration["reason_codes"] as? [String] ?? []).map(Self.reason)
                XCTAssertEqual(HeatKernel.calibrate(proposed, bucket: bucket, reasons: reasons), try Self.action(calibration["calibrated"]),
                               "\(name): \(proposed) \(reasons) in \(bucket)")
            }
        }
    }

    func testGovernorOpenVectors() throws {
        let cases = try GoldenVectors.cases("governor_open")
        XCTAssertGreaterThanOrEqual(cases.count, 10)
        for (index, vector) in cases.enumerated() {
            let expected = try XCTUnwrap(vector["expected"] as? [String: Any])
            let result = GovernorKernel.openGate(
                killScore: try XCTUnwrap(number(vector["kill_score"])), regimeFlip: try XCTUnwrap(number(vector["regime_flip"])),
                confidence: try XCTUnwrap(number(vector["confidence"])), quantity: try XCTUnwrap(number(vector["qty"])))
            XCTAssertEqual(result.decision.rawValue, expected["decision"] as? String, "case \(index)")
            assertClose(result.threshold, try XCTUnwrap(number(expected["threshold"])), "case \(index).threshold")
            assertClose(result.quantity, try XCTUnwrap(number(expected["qty"])), "case \(index).qty")
            assertClose(result.scale, try XCTUnwrap(number(expected["qty_scale"])), "case \(index).qty_scale")
        }
    }

    static func action(_ value: Any?) throws -> HarvestAction {
        switch value as? String {
        case "HOLD": return .hold
        case "UPDATE_SL": return .updateSl
        case "PARTIAL_25": return .partial25
        case "PARTIAL_50": return .partial50
        case "PARTIAL_75": return .partial75
        case "FULL_CLOSE": return .fullClose
        default: throw VectorError("unknown action \(String(describing: value))")
        }
    }

    static func reason(_ name: String) throws -> ReasonCode {
        switch name {
        case "HARVEST_TRANCHE": return .harvestTranche
        case "PROFIT_LOCK": return .profitLock
        case "KILL_SCORE": return .killScore
        case "REGIME_FLIP": return .regimeFlip
        case "SIGMA_SPIKE": return .sigmaSpike
        case "TS_DROP": return .tsDrop
        case "AGE_PENALTY": return .agePenalty
        default: throw VectorError("unknown reason \(name)")
        }
    }

    static func bucket(_ value: Any?) throws -> HeatBucket {
        switch value as? String {
        case "COLD": return .cold
        case "WARM": return .warm
        case "HOT": return .hot
        default: throw VectorError("unknown bucket \(String(describing: value))")
        }
    }
}

struct VectorError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
