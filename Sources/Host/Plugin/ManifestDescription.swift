import Messages

extension PluginManifest {
    /// The plugin's contract as an operator reads it (`qt plugins describe`): inputs, outputs,
    /// buckets, timers and every setting with its type, default and help, all from the manifest
    /// the host binds and validates from, so the text cannot drift from what runs.
    public var contractDescription: String {
        var lines = ["\(name) \(version)"]
        for input in inputs {
            let keyed = Topology.route(forFilter: input.subject)?.keyed == true ? ", partitioned by symbol" : ""
            lines.append("  in     \(pad(input.name, 12)) \(pad(input.subject, 26)) \(input.type.protoMessageName)"
                         + "  (ack wait \(input.ackWaitMs / 1000) s\(keyed))")
        }
        for output in outputs {
            lines.append("  out    \(pad(output.name, 12)) \(pad(output.subject, 26)) \(output.type.protoMessageName)")
        }
        if !kvReads.isEmpty { lines.append("  reads  \(kvReads.joined(separator: ", "))") }
        if !kvWrites.isEmpty { lines.append("  writes \(kvWrites.joined(separator: ", "))") }
        for timer in timers {
            var traits = [timer.singleton ? "one host of the fleet" : "every host"]
            if let setting = timer.intervalSecondsSetting { traits.append("period from \(setting)") }
            if timer.firesAtStart { traits.append("fires at start") }
            if timer.firesOnPartitionAcquired { traits.append("fires on each partition taken") }
            lines.append("  timer  \(pad(timer.name, 12)) every \(Double(timer.intervalMs) / 1000) s (\(traits.joined(separator: ", ")))")
        }
        lines.append("  settings:")
        let host = [
            ConfigKey("shadow", .bool, default: .bool(false), help: "outputs go to qt.shadow.*, KV writes are skipped"),
            ConfigKey("ack_wait_s", .double, default: .string("manifest"), range: 1...3600, help: "AckWait of every input's durable in seconds"),
        ]
        for key in config + host {
            let range = key.rangeDescription.map { " (\($0))" } ?? ""
            lines.append("    \(pad(key.name, 24)) \(pad(key.kind.description, 16)) default \(pad(key.defaultValue.description, 8)) \(key.help)\(range)")
        }
        return lines.joined(separator: "\n")
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}
