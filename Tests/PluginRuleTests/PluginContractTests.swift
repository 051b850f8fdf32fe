import Host
import InMemoryHost
import Messages
import Plugins
import XCTest

/// What the in-memory host and the node config refuse before a plugin runs: the same errors a
/// real host gives at start.
final class PluginContractTests: XCTestCase {
    /// A plugin whose code reads a setting its manifest does not declare (a typo in the code).
    final class Misspelled: Plugin {
        static let registration = PluginRegistration(
            manifest: PluginManifest(name: "misspelled", version: "1.0.0",
                                     config: [ConfigKey("max_leverage", .int, default: .int(10))]),
            make: { setup in
                _ = try setup.settings.int("max_leverge")
                return Misspelled()
            })

        func handle(_ input: Input, context: HandlerContext) async throws {}
    }

    /// A plugin that writes another plugin's key in the shared `qt_state` bucket.
    final class Trespasser: Plugin {
        static let registration = PluginRegistration(
            manifest: PluginManifest(name: "trespasser", version: "1.0.0", kvReads: ["qt_state"], kvWrites: ["qt_state"],
                                     timers: [TimerSpec("write", intervalMs: 1_000, singleton: false)]),
            make: { _ in Trespasser() })

        func handle(_ input: Input, context: HandlerContext) async throws {}

        func tick(_ timer: String, context: HandlerContext) async throws {
            var state = PluginState()
            state.values = ["k": "v"]
            _ = try await context.kv("qt_state").put("trespasser.own", state)
            _ = try await context.kv("qt_state").put("executor.slots", state)
        }
    }

    /// Counts bars in its own state with a write that goes out with its outputs; the bar's open
    /// time says how the handler ends (1 well, 2 by throwing, 3 with a stale revision) (for the test of `updateWithOutputs`).
    final class BarCounter: Plugin {
        static let registration = PluginRegistration(
            manifest: PluginManifest(name: "bar-counter", version: "1.0.0",
                                     inputs: [InputSpec("bars", subject: "qt.market.kline.*", type: Kline.self)],
                                     outputs: [OutputSpec("decisions", subject: "qt.decision.bar-counter.*", type: Decision.self)],
                                     kvReads: ["qt_state"], kvWrites: ["qt_state"]),
            make: { _ in BarCounter() })

        func handle(_ input: Input, context: HandlerContext) async throws {
            guard let bar = input.message(as: Kline.self) else { throw PluginError.permanent("expected a Kline") }
            let stored = try await context.loadState("count")
            var state = stored?.state ?? PluginState()
            state.plugin = "bar-counter"
            state.name = "count"
            state.values["bars"] = String(Int(state.values["bars"] ?? "0")! + 1)
            try context.decide(.pass, reason: .passed, about: bar.meta.id, kind: .plan, symbol: bar.symbol)
            // A revision from before any write: a stale compare-and-set.
            let revision = bar.openTimeMs == 3 ? 1_000 : stored?.revision ?? 0
            if revision == 0 {
                try await context.saveState("count", state, expectedRevision: 0)
            } else {
                try await context.updateWithOutputs("qt_state", "bar-counter.count", state, expectedRevision: revision)
            }
            if bar.openTimeMs == 2 { throw PluginError.transient("failed after queueing the write") }
        }
    }

    /// A write that goes out with the outputs lands when they are published, not when it is
    /// queued: a handler that throws after queueing it writes nothing, and a stale revision sends
    /// the input back like a refused publish. Declared buckets and own keys are checked at once.
    func testAWriteWithTheOutputsLandsOnlyWithThemAndAConflictSendsTheInputBack() async throws {
        let host = InMemoryHost()
        try await host.start(BarCounter.registration)
        func bar(_ openTimeMs: Int64, _ symbol: String = "AAAUSDT") async throws {
            var bar = Kline()
            bar.symbol = symbol
            bar.openTimeMs = openTimeMs
            bar.closeTimeMs = 60_000
            bar.open = "1"; bar.high = "1"; bar.low = "1"; bar.close = "1"
            bar.volume = "1"
            try await host.publish(bar, subject: Subjects.kline(symbol))
        }
        func count() async throws -> String? {
            try await host.kv("qt_state").get(PluginState.self, "bar-counter.count")?.value.values["bars"]
        }
        try await bar(1)
        try await bar(1)
        await host.run()
        let counted = try await count()
        XCTAssertEqual(counted, "2", "the second bar's write went out with its decision")
        let decided = await host.decisions("bar-counter").count
        XCTAssertEqual(decided, 2)

        try await bar(2)
        await host.run()
        let afterFailure = try await count()
        XCTAssertEqual(afterFailure, "2", "a handler that threw wrote nothing")
        let decidedAfterFailure = await host.decisions("bar-counter").count
        XCTAssertEqual(decidedAfterFailure, 2, "and published nothing")
        let retried = await host.retries["bar-counter"]
        XCTAssertEqual(retried, 1)

        // Another symbol: AAAUSDT's next bar waits behind the one being retried.
        try await bar(3, "BBBUSDT")
        await host.run()
        let afterConflict = try await count()
        XCTAssertEqual(afterConflict, "2", "a stale revision wrote nothing")
        let retriedAgain = await host.retries["bar-counter"]
        XCTAssertEqual(retriedAgain, 2, "the conflict sent the input back")
        let pending = await host.pending
        XCTAssertEqual(pending, 2, "both wait out their retry, in order")
    }

    /// Issue 18: the in-memory host refuses what the server's generated permissions refuse.
    func testAPluginWritesOnlyItsOwnKeysInTheSharedStateBucket() async throws {
        let host = InMemoryHost()
        try await host.start(Trespasser.registration)
        do {
            try await host.tick("trespasser", "write")
            XCTFail("wrote another plugin's qt_state key")
        } catch let error as PluginError {
            XCTAssertEqual(error, .contract("trespasser writes qt_state/executor.slots: a plugin writes only its own keys, qt_state/trespasser.<name>"))
        }
        let own = try await host.kv("qt_state").get(PluginState.self, "trespasser.own")
        XCTAssertEqual(own?.value.values["k"], "v", "its own key was written")
        let other = try await host.kv("qt_state").get(PluginState.self, "executor.slots")
        XCTAssertNil(other)
    }

    func testAPluginReadingAnUndeclaredSettingIsRefusedAtStartNotATrap() async throws {
        let host = InMemoryHost()
        do {
            try await host.start(Misspelled.registration)
            XCTFail("started a plugin that reads an undeclared setting")
        } catch let error as PluginError {
            XCTAssertEqual(error, .contract("setting max_leverge is not declared as an integer; declared: max_leverage"))
        }
    }

    func testASettingTypoIsAConfigErrorWithFileLineKeyAndChoices() async throws {
        let host = InMemoryHost()
        do {
            try await host.start(IntentBridgePlugin.registration, settings: ["min_confidense": "0.6"])
            XCTFail("started with a misspelled setting")
        } catch let error as ConfigError {
            XCTAssertEqual(error.key, "plugins.intent-bridge.min_confidense")
            XCTAssertEqual(error.message, "unknown key")
            XCTAssertEqual(error.choices, ["ack_wait_s", "max_intent_age_s", "min_confidence", "shadow"])
            XCTAssertNotNil(error.line)
        }
    }

    func testANumberThatIsNotFiniteIsAConfigError() async throws {
        let host = InMemoryHost()
        do {
            try await host.start(IntentBridgePlugin.registration, settings: ["min_confidence": ".inf"])
            XCTFail("started with an infinite setting")
        } catch let error as ConfigError {
            XCTAssertEqual(error.key, "plugins.intent-bridge.min_confidence")
            XCTAssertTrue(error.message.contains("finite"), error.message)
        }
    }

    /// Every numeric setting of every built-in plugin has a range, and its default lies in it.
    func testEveryNumericSettingDeclaresARangeHoldingItsDefault() {
        let registrations = PluginCatalog.registrations(exchanges: ExchangeClients(connect: { _ in throw PluginError.permanent("no exchange") }))
        var checked = 0
        for registration in registrations {
            for key in registration.manifest.config where key.kind == .int || key.kind == .double {
                guard let range = key.range else {
                    XCTFail("\(registration.manifest.name).\(key.name) has no range")
                    continue
                }
                switch key.defaultValue {
                case .int(let value): XCTAssertTrue(range.contains(Double(value)), "\(registration.manifest.name).\(key.name)")
                case .double(let value): XCTAssertTrue(range.contains(value), "\(registration.manifest.name).\(key.name)")
                default: XCTFail("\(registration.manifest.name).\(key.name): a number with default \(key.defaultValue)")
                }
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 30)
    }

    func testANumberOutsideItsRangeIsAConfigErrorNamingTheRange() async throws {
        for (value, expected) in [("0.0001", "got 0.0001"), ("1e19", "got 1e19"), ("-5", "got -5")] {
            let host = InMemoryHost()
            do {
                try await host.start(GovernorPlugin.registration(exchanges: ExchangeClients(connect: { _ in throw PluginError.permanent("none") })),
                                     settings: ["stop_dist_pct": value], exchange: ExchangeSettings(baseURL: "http://127.0.0.1:9"))
                XCTFail("started with stop_dist_pct \(value)")
            } catch let error as ConfigError {
                XCTAssertEqual(error.key, "plugins.governor.stop_dist_pct")
                XCTAssertTrue(error.message.contains("between 0.001 and 0.5") && error.message.contains(expected), error.message)
                XCTAssertNotNil(error.line)
            }
        }
    }

    func testADuplicateYAMLKeyIsAConfigErrorNotLastWins() throws {
        let manifest = IntentBridgePlugin.registration.manifest
        XCTAssertThrowsError(try NodeConfig.settings("min_confidence: 0.6\nmin_confidence: 0.9\n", for: manifest, file: "node-a.yaml")) { error in
            guard let error = error as? ConfigError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.file, "node-a.yaml")
            XCTAssertEqual(error.key, "plugins.intent-bridge.min_confidence")
            XCTAssertTrue(error.message.contains("appears twice (first at line 1)"), error.message)
            XCTAssertEqual(error.line, 2)
        }
    }
}
