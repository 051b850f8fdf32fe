import Bus
import Foundation
import Host
import Messages
import SwiftProtobuf
import TestPlugins
import XCTest

/// Issue 18: a host whose schema differs from the one the cluster was provisioned with starts on
/// a compatible addition and is refused on a break, naming the message type.
final class SchemaEvolutionTests: HostTestCase {
    /// Provisions, then records a fleet schema that is this build's with `change` made to it.
    private func provisionFleetSchema(_ change: (inout Google_Protobuf_FileDescriptorSet) -> Void) async throws -> NodeConfig {
        let config = try NodeConfig.parse(configYAML(host: "schema-a", plugins: ["relay-a": [:]]), file: "schema-a.yaml",
                                          registry: TestPlugins.registry)
        try await provision(for: config, registry: TestPlugins.registry)
        var schema = try SchemaCompatibility.current
        change(&schema)
        let bucket = try await bus.keyValue(BusConnection.layoutBucket)
        let read = try await bus.readLayout()
        let (layout, revision) = try XCTUnwrap(read)
        var fleet = layout
        fleet.schemaFingerprint = "fleet-" + layout.schemaFingerprint.prefix(20)
        fleet.schemaDescriptor = try schema.serializedBytes()
        _ = try await bucket.update(BusConnection.layoutKey, message: fleet, expectedRevision: revision)
        return config
    }

    private func plan(_ set: inout Google_Protobuf_FileDescriptorSet, _ edit: (inout Google_Protobuf_DescriptorProto) -> Void) {
        for file in set.file.indices {
            for message in set.file[file].messageType.indices where set.file[file].messageType[message].name == "Plan" {
                edit(&set.file[file].messageType[message])
            }
        }
    }

    func testAHostWithACompatibleAdditionStarts() async throws {
        let config = try await provisionFleetSchema { plan(&$0) { $0.field.removeAll { $0.name == "reduce_percent" } } }
        let host = PluginHost(config: config, registry: TestPlugins.registry)
        try await host.start()
        await host.shutdown()
    }

    func testAHostWithABreakingChangeIsRefusedNamingTheType() async throws {
        let config = try await provisionFleetSchema {
            plan(&$0) { plan in
                if let index = plan.field.firstIndex(where: { $0.name == "quantity" }) { plan.field[index].type = .double }
            }
        }
        let host = PluginHost(config: config, registry: TestPlugins.registry)
        do {
            try await host.start()
            await host.shutdown()
            XCTFail("a host whose Plan.quantity means something else than the fleet's started")
        } catch {
            let text = "\(error)"
            XCTAssertTrue(text.contains("qt.v1.Plan") && text.contains("field 6 quantity"), text)
            XCTAssertTrue(text.contains("breaking"), text)
            await host.shutdown()
        }
    }
}
