import Exchange
import Foundation
import Synchronization

/// A `StreamSet` that runs only while its plugin's timer keeps touching it. A singleton timer
/// ticks on one host at a time; when the lease moves, the old host's ticks stop and its
/// connections close after `idleTimeout`, so exactly one host holds the exchange's streams.
final class StreamLease: Sendable {
    private let make: @Sendable () -> StreamSet
    private let idleTimeout: Duration
    private let state = Mutex<(streams: StreamSet?, lastTouch: ContinuousClock.Instant, watchdog: Task<Void, Never>?)>(
        (nil, .now, nil))

    init(idleTimeout: Duration = .seconds(15), make: @escaping @Sendable () -> StreamSet) {
        self.make = make
        self.idleTimeout = idleTimeout
    }

    /// The running stream set (started on first use) with `wanted` streams.
    @discardableResult
    func touch(wanted: Set<String>? = nil) -> StreamSet {
        let streams = state.withLock { state -> StreamSet in
            state.lastTouch = .now
            if let running = state.streams { return running }
            let streams = make()
            state.streams = streams
            state.watchdog = Task { [weak self] in await self?.watch() }
            return streams
        }
        if let wanted { streams.update(wanted) }
        return streams
    }

    var isRunning: Bool { state.withLock { $0.streams != nil } }

    /// Closes the connections now (the host is stopping); a later `touch` opens them again.
    func close() async {
        let (streams, watchdog) = state.withLock { state in
            defer { state.streams = nil; state.watchdog = nil }
            return (state.streams, state.watchdog)
        }
        watchdog?.cancel()
        await streams?.stop()
    }

    private func watch() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let idle = state.withLock { state -> StreamSet? in
                guard let streams = state.streams, ContinuousClock.now - state.lastTouch > idleTimeout else { return nil }
                state.streams = nil
                state.watchdog = nil
                return streams
            }
            if let idle {
                await idle.stop()
                return
            }
        }
    }
}
