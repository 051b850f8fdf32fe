import Bus
import Foundation
import Messages
import Synchronization

/// What every console page shows, read once a second by one task whatever the number of open
/// pages: the pipeline's state (`PipelineState`, as `qt up`'s status view reads it), the hosts in
/// `qt_hosts`, the streams with their consumers, and the equity over time, which no bucket
/// keeps (the console samples it from the account snapshot).
final class ConsoleSampler: Sendable {
    struct EquityPoint: Sendable {
        let wallMs: Int64
        let equity: Double
        let realizedPnl: Double
    }

    struct StreamRate: Sendable {
        let stream: String
        let perSecond: Double
    }

    struct Sample: @unchecked Sendable {
        var wallMs: Int64 = 0
        var state: PipelineState?
        var hosts: [HostInfo] = []
        var streams: [StreamSummary] = []
        var rates: [StreamRate] = []
        var equity: [EquityPoint] = []
        var deadLettersByConsumer: [(consumer: String, count: Int)] = []
        var problem: String?
    }

    static let keptPoints = 600
    private let latest = Mutex(Sample())
    let activity = PipelineActivity()
    private let loop = Mutex<Task<Void, Never>?>(nil)

    var sample: Sample { latest.withLock { $0 } }

    func start(_ bus: BusConnection) {
        activity.start(bus)
        let task = Task.detached { [self] in
            var previous: (wallMs: Int64, sequences: [String: UInt64])?
            var tick = 0
            while !Task.isCancelled {
                previous = await refresh(bus, previous: previous, countDeadLetters: tick % 5 == 0)
                tick += 1
                try? await Task.sleep(nanoseconds: 1_000_000_000)
            }
        }
        loop.withLock { $0 = task }
    }

    func stop() {
        loop.withLock { $0 }?.cancel()
        activity.stop()
    }

    private func refresh(_ bus: BusConnection, previous: (wallMs: Int64, sequences: [String: UInt64])?,
                         countDeadLetters: Bool) async -> (wallMs: Int64, sequences: [String: UInt64])? {
        let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
        do {
            let state = try await PipelineState.read(bus)
            let streams = state.streams
            let hosts = try await Self.hosts(bus)
            let deadLetters = countDeadLetters ? try await Self.deadLettersByConsumer(bus) : nil
            let sequences = Dictionary(streams.map { ($0.name, $0.lastSequence) }) { first, _ in first }
            var rates: [StreamRate] = []
            if let previous, nowMs > previous.wallMs {
                let seconds = Double(nowMs - previous.wallMs) / 1000
                rates = streams.map { stream in
                    let before = previous.sequences[stream.name] ?? stream.lastSequence
                    return StreamRate(stream: stream.name, perSecond: Double(stream.lastSequence &- min(before, stream.lastSequence)) / seconds)
                }
            }
            latest.withLock { sample in
                sample.wallMs = nowMs
                sample.state = state
                sample.streams = streams
                sample.hosts = hosts
                if !rates.isEmpty { sample.rates = rates }
                if let deadLetters { sample.deadLettersByConsumer = deadLetters }
                if let equity = state.account.flatMap({ Double($0.totalMarginBalance) }) {
                    sample.equity.append(EquityPoint(wallMs: nowMs, equity: equity, realizedPnl: NSDecimalNumber(decimal: state.realizedPnl).doubleValue))
                    if sample.equity.count > Self.keptPoints { sample.equity.removeFirst(sample.equity.count - Self.keptPoints) }
                }
                sample.problem = nil
            }
            return (nowMs, sequences)
        } catch {
            latest.withLock { $0.problem = "cannot read the pipeline: \(error)" }
            return previous
        }
    }

    private static func hosts(_ bus: BusConnection) async throws -> [HostInfo] {
        let bucket = try await bus.keyValue("qt_hosts")
        var hosts: [HostInfo] = []
        for key in try await bucket.keys().sorted() {
            // A host whose record cannot be read is the topology check's to report; the console skips it.
            if let info = try? await bucket.get(HostInfo.self, key)?.value { hosts.append(info) }
        }
        return hosts
    }

    /// The newest dead letters (up to 500), counted by the consumer that gave up on them.
    private static func deadLettersByConsumer(_ bus: BusConnection) async throws -> [(consumer: String, count: Int)] {
        let counts = Mutex<[String: Int]>([:])
        try await bus.tail("qt.dlq.>", last: 500, follow: false) { message in
            let consumer = (try? DeadLetter(serializedBytes: message.payload))?.consumer ?? "(unreadable dead letter)"
            counts.withLock { $0[consumer, default: 0] += 1 }
            return true
        }
        return counts.withLock { $0 }.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { ($0.key, $0.value) }
    }
}
