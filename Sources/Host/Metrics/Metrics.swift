import Foundation
import Synchronization

/// Counters, gauges and a latency histogram per plugin, rendered as Prometheus text. Small on
/// purpose: the host needs a handful of series, not a metrics framework.
public final class MetricCounter: Sendable {
    private let count = Atomic<Int>(0)
    public func increment() { add(1) }
    public func add(_ amount: Int) { count.add(amount, ordering: .relaxed) }
    public var value: Double { Double(count.load(ordering: .relaxed)) }
}

public final class MetricGauge: Sendable {
    private let current = Mutex<Double>(0)
    public func set(_ value: Double) { current.withLock { $0 = value } }
    public var value: Double { current.withLock { $0 } }
}

public final class MetricHistogram: Sendable {
    /// Handler latency bounds in milliseconds.
    public static let bounds: [Double] = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 5_000]

    struct Snapshot {
        var buckets = [Double](repeating: 0, count: MetricHistogram.bounds.count)
        var sum: Double = 0
        var count: Double = 0
    }

    private let state = Mutex(Snapshot())

    public func observe(_ milliseconds: Double) {
        state.withLock { state in
            for (index, bound) in Self.bounds.enumerated() where milliseconds <= bound { state.buckets[index] += 1 }
            state.sum += milliseconds
            state.count += 1
        }
    }

    var snapshot: Snapshot { state.withLock { $0 } }

    public var meanMilliseconds: Double { state.withLock { $0.count > 0 ? $0.sum / $0.count : 0 } }
}

public final class PluginMetrics: Sendable {
    public let messagesIn = MetricCounter()
    public let messagesOut = MetricCounter()
    public let errors = MetricCounter()
    public let deadLettered = MetricCounter()
    public let timerTicks = MetricCounter()
    public let pending = MetricGauge()
    public let latency = MetricHistogram()
    private let events = Mutex<[String: MetricCounter]>([:])

    /// A plugin's own counter (e.g. ai-agent's HOLD signals), created on first use.
    public func event(_ name: String) -> MetricCounter {
        events.withLock { events in
            if let existing = events[name] { return existing }
            let counter = MetricCounter()
            events[name] = counter
            return counter
        }
    }

    var eventCounts: [(String, Double)] { events.withLock { $0.map { ($0.key, $0.value.value) } }.sorted { $0.0 < $1.0 } }
}

public final class HostMetrics: Sendable {
    private let plugins = Mutex<[(String, PluginMetrics)]>([])

    public init() {}

    public func plugin(_ name: String) -> PluginMetrics {
        plugins.withLock { plugins in
            if let existing = plugins.first(where: { $0.0 == name }) { return existing.1 }
            let metrics = PluginMetrics()
            plugins.append((name, metrics))
            return metrics
        }
    }

    /// Prometheus text exposition format 0.0.4.
    public func render(hostID: String) -> String {
        let all = plugins.withLock { $0 }
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ value: (PluginMetrics) -> Double) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (plugin, metrics) in all {
                out += "\(name){host=\"\(hostID)\",plugin=\"\(plugin)\"} \(format(value(metrics)))\n"
            }
        }
        family("qt_messages_in_total", "counter", "Input messages handed to the plugin.") { $0.messagesIn.value }
        family("qt_messages_out_total", "counter", "Outputs published and acknowledged by JetStream.") { $0.messagesOut.value }
        family("qt_handler_errors_total", "counter", "Transient handler or publish failures (NAKed).") { $0.errors.value }
        family("qt_dlq_total", "counter", "Inputs dead-lettered by the plugin.") { $0.deadLettered.value }
        family("qt_timer_ticks_total", "counter", "Timer ticks run.") { $0.timerTicks.value }
        family("qt_consumer_pending", "gauge", "Messages pending on the plugin's consumer at the last fetch.") { $0.pending.value }
        out += "# HELP qt_plugin_events_total Events a plugin counts but does not publish.\n# TYPE qt_plugin_events_total counter\n"
        for (plugin, metrics) in all {
            for (event, count) in metrics.eventCounts {
                out += "qt_plugin_events_total{host=\"\(hostID)\",plugin=\"\(plugin)\",event=\"\(event)\"} \(format(count))\n"
            }
        }
        out += "# HELP qt_handler_latency_ms Handler latency in milliseconds.\n# TYPE qt_handler_latency_ms histogram\n"
        for (plugin, metrics) in all {
            let labels = "host=\"\(hostID)\",plugin=\"\(plugin)\""
            let snapshot = metrics.latency.snapshot
            for (index, bound) in MetricHistogram.bounds.enumerated() {
                out += "qt_handler_latency_ms_bucket{\(labels),le=\"\(format(bound))\"} \(format(snapshot.buckets[index]))\n"
            }
            out += "qt_handler_latency_ms_bucket{\(labels),le=\"+Inf\"} \(format(snapshot.count))\n"
            out += "qt_handler_latency_ms_sum{\(labels)} \(format(snapshot.sum))\n"
            out += "qt_handler_latency_ms_count{\(labels)} \(format(snapshot.count))\n"
        }
        return out
    }

    private func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
