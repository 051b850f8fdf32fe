import ArgumentParser
import Bus
import Foundation
import Host
import Messages

/// `qt fleet`: the live hosts, which partitions of which plugin each owns, and the backlog of
/// every partition (DESIGN.md §3.3). Exits non-zero when a running plugin has an unowned partition.
struct FleetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Live hosts, the partitions each owns, and the lag per partition; non-zero exit when a partition has no owner.")
    @OptionGroup var connection: ConnectionArguments

    func run() async throws {
        try await reportingErrors {
            let bus = try connection.connect()
            defer { bus.close() }
            let view = try await PartitionView.read(bus)
            for line in Self.render(view, nowMs: Int64(Date().timeIntervalSince1970 * 1000)) { printLine(line) }
            // No live host owns nothing and leaves nothing unowned: that is no fleet, not a healthy one.
            if !view.unowned.isEmpty || view.hosts.isEmpty { throw ExitCode(1) }
        }
    }

    static func render(_ view: PartitionView, nowMs: Int64) -> [String] {
        var lines = ["hosts: \(view.hosts.count) live, P = \(view.partitions)"]
        for host in view.hosts {
            let owned = view.owners.values.flatMap(\.values).filter { $0 == host.hostID }.count
            lines.append("  \(host.hostID)  heartbeat \(max(0, nowMs - host.heartbeatAtMs) / 1000) s ago  \(owned) partition leases  "
                         + "plugins: \(host.plugins.map { $0.shadow ? "\($0.name) [shadow]" : $0.name }.joined(separator: ", "))")
        }
        guard view.partitions > 0 else { return lines + ["no cluster layout: run `qt streams provision`"] }
        let width = max(8, (view.hosts.map(\.hostID.count).max() ?? 0) + 1)
        func cell(_ text: String) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
        let nameWidth = max(18, (view.instances.map(\.count).max() ?? 0) + 2)
        lines.append("")
        lines.append("owner".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + (0..<view.partitions).map { cell("p\($0)") }.joined())
        for instance in view.instances {
            lines.append(instance.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                         + (0..<view.partitions).map { cell(view.owners[instance]?[$0] ?? "-") }.joined())
        }
        lines.append("")
        lines.append("lag".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + (0..<view.partitions).map { cell("p\($0)") }.joined())
        for instance in view.instances {
            let lag = Dictionary(grouping: view.backlogs[instance] ?? [], by: \.partition).mapValues { $0.map(\.lag).reduce(0, +) }
            lines.append(instance.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                         + (0..<view.partitions).map { cell(lag[$0].map(String.init) ?? "?") }.joined())
        }
        let unowned = view.unowned
        lines.append("")
        if view.hosts.isEmpty {
            lines.append("NO LIVE HOST: nothing in qt_hosts (no host running, or heartbeats older than the 30 s TTL)")
        } else {
            lines.append(unowned.isEmpty ? "every partition has an owner"
                         : "UNOWNED: " + unowned.map { "\($0.instance).p\($0.partition)" }.joined(separator: ", "))
        }
        return lines
    }
}
