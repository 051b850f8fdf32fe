import Exchange
import Foundation
import Synchronization

/// Closed bars from the kline streams, held until market-feed's next drain publishes them, and
/// the symbols whose stream (re)connected: bars sent while it was down are lost, so those
/// symbols are backfilled over REST before their next stream bar is published.
final class KlineStreamBuffer: Sendable {
    private struct State {
        var bars: [String: [BinanceKline]] = [:]
        var resync: Set<String> = []
    }

    /// Bars kept per symbol between drains; more means the drain is stuck, and REST refetches the rest.
    static let maxBarsPerSymbol = 1_000
    private let state = Mutex(State())

    static func streamName(_ symbol: String) -> String { symbol.lowercased() + "@kline_1m" }

    static func symbol(ofStream name: String) -> String? {
        name.hasSuffix("@kline_1m") ? String(name.dropLast(9)).uppercased() : nil
    }

    func receive(_ event: StreamEvent) {
        guard case .kline(let kline) = event, kline.bar.closed else { return }
        state.withLock { state in
            var bars = state.bars[kline.symbol, default: []]
            bars.append(kline.bar.kline)
            if bars.count > Self.maxBarsPerSymbol {
                bars.removeFirst(bars.count - Self.maxBarsPerSymbol)
                state.resync.insert(kline.symbol)
            }
            state.bars[kline.symbol] = bars
        }
    }

    func connected(_ streams: Set<String>) {
        let symbols = streams.compactMap(Self.symbol(ofStream:))
        state.withLock { $0.resync.formUnion(symbols) }
    }

    /// Marks `symbol` for a REST backfill at the next drain (a drain that failed for it).
    func resync(_ symbol: String) {
        state.withLock { _ = $0.resync.insert(symbol) }
    }

    /// Everything received since the last call, and the symbols to backfill.
    func take() -> (bars: [String: [BinanceKline]], resync: Set<String>) {
        state.withLock { state in
            defer { state = State() }
            return (state.bars, state.resync)
        }
    }
}
