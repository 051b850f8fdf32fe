import Host
import InMemoryHost
import Messages
import XCTest

// The example of docs/plugin-api.md, compiled and run so the guide cannot rot.

/// Skips intents below a confidence floor; passes the rest on as they are.
public final class ConfidenceFloor: Plugin {
    public static let registration = PluginRegistration(
        manifest: PluginManifest(
            name: "confidence-floor", version: "1.0.0",
            inputs: [InputSpec("intents", subject: "qt.signal.intent.*", type: TradeIntent.self)],
            outputs: [OutputSpec("decisions", subject: "qt.decision.confidence-floor.*", type: Decision.self)],
            config: [ConfigKey("floor", .double, default: .double(0.6), help: "intents below this are skipped")]),
        make: { setup in ConfidenceFloor(floor: try setup.settings.double("floor")) })

    let floor: Double
    init(floor: Double) { self.floor = floor }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        guard let intent = input.message(as: TradeIntent.self) else { throw PluginError.permanent("expected a TradeIntent") }
        let verdict: Verdict = intent.confidence < floor ? .skip : .pass
        try context.decide(verdict, reason: verdict == .skip ? .lowConfidence : .passed, about: intent.intentID,
                           kind: .intent, symbol: intent.symbol)
    }
}

final class ConfidenceFloorTests: XCTestCase {
    func testAnIntentBelowTheFloorIsSkipped() async throws {
        let host = InMemoryHost()
        try await host.start(ConfidenceFloor.registration, settings: ["floor": "0.7"])
        var intent = TradeIntent()
        intent.intentID = "i-1"
        intent.symbol = "BTCUSDT"
        intent.confidence = 0.65
        try await host.publish(intent, subject: Subjects.intent("BTCUSDT"))
        await host.run()
        let reasons = await host.decisions("confidence-floor", symbol: "BTCUSDT").map(\.reason)
        XCTAssertEqual(reasons, [.lowConfidence])
    }
}
