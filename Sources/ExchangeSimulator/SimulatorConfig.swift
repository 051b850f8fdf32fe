import Exchange
import Foundation

/// What the simulator lists and how it behaves; `qt sim` and the tests fill this in.
public struct SimulatorConfig: Sendable {
    public var symbols = 20
    /// Wall milliseconds per simulated 1m bar.
    public var barMs = 250
    public var seed: UInt64 = 1
    /// The simulated time of the first bar (a whole minute); nil starts at the wall clock's minute.
    /// Two simulators with the same seed and start serve the same bars at the same times.
    public var simulatedStartMs: Int64?
    /// Closed bars that exist before the simulation starts (for backfill).
    public var historyBars = 1_000
    public var startingBalance: Decimal = 10_000
    /// Binance's default USDⓈ-M taker fee (0.05 %).
    public var takerFeeRate: Decimal = 0.0005
    public var slippageBps: Decimal = 2
    public var credentials: Credentials
    /// Request weight per minute before 429 (Binance: 2400).
    public var weightLimitPerMinute = 2_400
    public var faults = SimulatorFaults()

    public init(credentials: Credentials) {
        self.credentials = credentials
    }
}

/// Failures the simulator injects, so the client's and the executor's handling can be shown.
public struct SimulatorFaults: Sendable {
    /// Added to every response.
    public var latencyMs = 0
    /// Fraction of requests answered HTTP 503 before anything is executed.
    public var serverErrorRate = 0.0
    /// Fraction of new orders that fill and then lose their response (the connection drops).
    public var dropResponseAfterFillRate = 0.0
    /// The exchange's clock runs this far ahead of the machine's (server time, recvWindow checks).
    public var clockSkewMs = 0

    public init(latencyMs: Int = 0, serverErrorRate: Double = 0, dropResponseAfterFillRate: Double = 0, clockSkewMs: Int = 0) {
        self.latencyMs = latencyMs
        self.serverErrorRate = serverErrorRate
        self.dropResponseAfterFillRate = dropResponseAfterFillRate
        self.clockSkewMs = clockSkewMs
    }
}
