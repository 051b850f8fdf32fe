import Host
import Messages
import XCTest

/// The topology check on fleets described as data (what hosts write to `qt_hosts`).
final class TopologyCheckTests: XCTestCase {
    private func binding(_ name: String, _ subject: String, _ type: String) -> SubjectBinding {
        var binding = SubjectBinding()
        binding.name = name
        binding.subject = subject
        binding.type = type
        return binding
    }

    private func plugin(_ name: String, inputs: [SubjectBinding] = [], outputs: [SubjectBinding] = [],
                        reads: [String] = [], writes: [String] = [], shadow: Bool = false) -> PluginManifestInfo {
        var manifest = PluginManifestInfo()
        manifest.name = name
        manifest.inputs = inputs
        manifest.outputs = outputs
        manifest.kvReads = reads
        manifest.kvWrites = writes
        manifest.shadow = shadow
        return manifest
    }

    private func host(_ id: String, _ plugins: [PluginManifestInfo], fingerprint: String = "f1") -> HostInfo {
        var info = HostInfo()
        info.hostID = id
        info.plugins = plugins
        info.schemaFingerprint = fingerprint
        info.typeFingerprints = ["qt.v1.Plan": fingerprint, "qt.v1.Kline": "k1"]
        return info
    }

    func testACompleteGraphHasNoProblems() {
        let fleet = [
            host("a", [plugin("feed", outputs: [binding("klines", "qt.market.kline.*", "qt.v1.Kline")], writes: ["qt_marketstate"])]),
            host("b", [plugin("state", inputs: [binding("klines", "qt.market.kline.*", "qt.v1.Kline")], reads: ["qt_marketstate", "qt_control"])]),
        ]
        XCTAssertEqual(TopologyCheck.problems(in: fleet), [])
    }

    func testADarkProducerIsNamedBySubject() {
        // The incident's R3: the consumer runs, the producer does not.
        let fleet = [host("a", [plugin("heat-gate", inputs: [binding("proposed", "qt.harvest.proposed.*", "qt.v1.HarvestProposal")])])]
        let problems = TopologyCheck.problems(in: fleet)
        XCTAssertEqual(problems.map(\.kind), [.noProducer])
        XCTAssertEqual(problems.first?.subject, "qt.harvest.proposed.*")
        XCTAssertTrue(problems.first?.detail.contains("heat-gate@a") ?? false)
    }

    func testAlertsAndDeadLettersAlwaysHaveAProducerTheHostsThemselves() {
        // Every host publishes dead letters and its own alerts: a relay of them alone is no gap.
        let fleet = [host("a", [plugin("alert-relay", inputs: [binding("alerts", "qt.alert.*", "qt.v1.Alert")], reads: ["qt_control"])])]
        XCTAssertEqual(TopologyCheck.problems(in: fleet), [])
        let narrower = [host("a", [plugin("lag-pager", inputs: [binding("lag", "qt.alert.consumer_lag", "qt.v1.Alert")], reads: ["qt_control"])])]
        XCTAssertEqual(TopologyCheck.problems(in: narrower), [])
    }

    func testAShadowPluginIsNoProducer() {
        let fleet = [host("a", [
            plugin("proposer", outputs: [binding("proposed", "qt.harvest.proposed.*", "qt.v1.HarvestProposal")], shadow: true),
            plugin("heat-gate", inputs: [binding("proposed", "qt.harvest.proposed.*", "qt.v1.HarvestProposal")]),
        ])]
        XCTAssertEqual(TopologyCheck.problems(in: fleet).map(\.kind), [.noProducer])
    }

    func testOutputsWithoutStreamsBucketsWithoutWritersAndSchemaSplitsAreReported() {
        let fleet = [
            host("a", [plugin("odd", outputs: [binding("x", "qt.nowhere.*", "qt.v1.Plan")], reads: ["qt_ledger"])], fingerprint: "f1"),
            host("b", [plugin("other")], fingerprint: "f2"),
        ]
        let problems = TopologyCheck.problems(in: fleet)
        XCTAssertEqual(Set(problems.map(\.kind)), [.noStream, .bucketNotWritten, .schemaMismatch])
        XCTAssertEqual(problems.first { $0.kind == .noStream }?.subject, "qt.nowhere.*")
        XCTAssertEqual(problems.first { $0.kind == .bucketNotWritten }?.subject, "qt_ledger")
        let split = problems.filter { $0.kind == .schemaMismatch }
        XCTAssertEqual(split.map(\.subject), ["qt.v1.Plan"], "only the type whose fingerprints differ")
        XCTAssertTrue(split.first?.detail.contains("f1 on a vs f2 on b") ?? false, split.first?.detail ?? "")
    }
}
