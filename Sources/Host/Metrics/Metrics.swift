package import Bus
import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// A plugin's counters, gauge and latency histogram. Each is recorded through swift-metrics into
/// its host's Prometheus registry (swift-prometheus renders `/metrics`), and keeps the value this
/// process reads itself (benchmarks, tests) in an atomic, since swift-metrics has no read side.
public final class MetricCounter: Sendable {
    private let count = Atomic<Int>(0)
    private let exported: CoreMetrics.Counter

    init(_ name: String, _ dimensions: [(String, String)], factory: any MetricsFactory) {
        exported = CoreMetrics.Counter(label: name, dimensions: dimensions, factory: factory)
    }

    public func increment() { add(1) }

    public func add(_ amount: Int) {
        count.add(amount, ordering: .relaxed)
        exported.increment(by: amount)
    }

    public var value: Double { Double(count.load(ordering: .relaxed)) }
}

public final class MetricGauge: Sendable {
    private let current = Mutex<Double>(0)
    private let exported: CoreMetrics.Gauge

    init(_ name: String, _ dimensions: [(String, String)], factory: any MetricsFactory) {
        exported = CoreMetrics.Gauge(label: name, dimensions: dimensions, factory: factory)
    }

    public func set(_ value: Double) {
        current.withLock { $0 = value }
        exported.record(value)
    }

    public var value: Double { current.withLock { $0 } }
}

public final class MetricHistogram: Sendable {
    /// Handler latency bounds in milliseconds.
    public static let bounds: [Double] = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 5_000]

    private let total = Mutex<(sum: Double, count: Double)>((0, 0))
    private let exported: CoreMetrics.Recorder

    init(_ name: String, _ dimensions: [(String, String)], factory: any MetricsFactory) {
        exported = CoreMetrics.Recorder(label: name, dimensions: dimensions, aggregate: true, factory: factory)
    }

    public func observe(_ milliseconds: Double) {
        total.withLock { $0 = ($0.sum + milliseconds, $0.count + 1) }
        exported.record(milliseconds)
    }

    public var meanMilliseconds: Double { total.withLock { $0.count > 0 ? $0.sum / $0.count : 0 } }
}

public final class PluginMetrics: Sendable {
    public let messagesIn: MetricCounter
    public let messagesOut: MetricCounter
    public let errors: MetricCounter
    public let deadLettered: MetricCounter
    public let timerTicks: MetricCounter
    public let pending: MetricGauge
    public let latency: MetricHistogram
    /// KV reads and writes, publishes and fetches the plugin made (`qt_bus_operations_total{operation}`).
    package let busOperations: BusOperationCounter
    private let dimensions: [(String, String)]
    private let factory: any MetricsFactory
    private let events = Mutex<[String: MetricCounter]>([:])
    private let values = Mutex<[String: MetricGauge]>([:])

    init(dimensions: [(String, String)], factory: any MetricsFactory) {
        self.dimensions = dimensions
        self.factory = factory
        messagesIn = MetricCounter(HostMetrics.Name.messagesIn, dimensions, factory: factory)
        messagesOut = MetricCounter(HostMetrics.Name.messagesOut, dimensions, factory: factory)
        errors = MetricCounter(HostMetrics.Name.errors, dimensions, factory: factory)
        deadLettered = MetricCounter(HostMetrics.Name.deadLettered, dimensions, factory: factory)
        timerTicks = MetricCounter(HostMetrics.Name.timerTicks, dimensions, factory: factory)
        pending = MetricGauge(HostMetrics.Name.pending, dimensions, factory: factory)
        latency = MetricHistogram(HostMetrics.Name.latency, dimensions, factory: factory)
        let exported = Dictionary(uniqueKeysWithValues: BusOperationCounter.Kind.allCases.map { kind in
            (kind, MetricCounter(HostMetrics.Name.busOperations, dimensions + [("operation", kind.rawValue)], factory: factory))
        })
        busOperations = BusOperationCounter { kind, amount in exported[kind]?.add(amount) }
    }

    /// The plugin's round trips so far, by kind (`kv_read`, `kv_write`, `publish`, `fetch`).
    public var roundTrips: [String: Int] {
        Dictionary(uniqueKeysWithValues: busOperations.snapshot.map { ($0.key.rawValue, $0.value) })
    }

    /// A plugin's own counter (e.g. ai-agent's HOLD signals), created on first use.
    public func event(_ name: String) -> MetricCounter {
        events.withLock { events in
            if let existing = events[name] { return existing }
            let counter = MetricCounter(HostMetrics.Name.events, dimensions + [("event", name)], factory: factory)
            events[name] = counter
            return counter
        }
    }

    /// A plugin's own gauge (e.g. the exchange weight its client spent this minute), created on first use.
    public func value(_ name: String) -> MetricGauge {
        values.withLock { values in
            if let existing = values[name] { return existing }
            let gauge = MetricGauge(HostMetrics.Name.values, dimensions + [("value", name)], factory: factory)
            values[name] = gauge
            return gauge
        }
    }
}

/// One host's metrics: a Prometheus registry of its own (several hosts share a process in
/// `qt up` and the tests), every series labelled with the host and the plugin.
public final class HostMetrics: Sendable {
    /// The series names; what each means is in docs/operations.md ("Metrics").
    enum Name {
        static let messagesIn = "qt_messages_in_total"
        static let messagesOut = "qt_messages_out_total"
        static let errors = "qt_handler_errors_total"
        static let deadLettered = "qt_dlq_total"
        static let timerTicks = "qt_timer_ticks_total"
        static let pending = "qt_consumer_pending"
        static let events = "qt_plugin_events_total"
        static let values = "qt_plugin_value"
        static let latency = "qt_handler_latency_ms"
        static let busOperations = "qt_bus_operations_total"
        static let connectionRefusals = "qt_nats_permission_violations_total"
    }

    public let hostID: String
    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let plugins = Mutex<[String: PluginMetrics]>([:])
    private let refusals = Mutex<[String: MetricCounter]>([:])

    public init(hostID: String) {
        self.hostID = hostID
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.valueHistogramBuckets = [Name.latency: MetricHistogram.bounds]
        self.factory = factory
    }

    public func plugin(_ name: String) -> PluginMetrics {
        plugins.withLock { plugins in
            if let existing = plugins[name] { return existing }
            let metrics = PluginMetrics(dimensions: [("host", hostID), ("plugin", name)], factory: factory)
            plugins[name] = metrics
            return metrics
        }
    }

    /// Every plugin's round trips so far (`PluginMetrics.roundTrips`), by plugin name.
    public var roundTrips: [String: [String: Int]] {
        plugins.withLock { $0 }.mapValues(\.roundTrips)
    }

    /// Publishes and subscriptions the server refused on one identity's connection.
    public func connectionRefusals(identity: String) -> MetricCounter {
        refusals.withLock { refusals in
            if let existing = refusals[identity] { return existing }
            let counter = MetricCounter(Name.connectionRefusals, [("host", hostID), ("identity", identity)], factory: factory)
            refusals[identity] = counter
            return counter
        }
    }

    /// Prometheus text exposition format 0.0.4.
    public func render() -> String {
        registry.emitToString()
    }
}
