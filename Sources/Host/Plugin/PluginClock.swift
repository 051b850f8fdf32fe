import Foundation

/// Wall-clock time as a plugin reads it (permit and plan expiry, cache ages, exchange patience).
/// Trading logic runs on event time; this is for the few rules that are about real time. A host
/// passes the system clock, the in-memory host a manual one.
public protocol PluginClock: Sendable {
    func nowMs() -> Int64
}

public struct SystemClock: PluginClock {
    public init() {}

    public func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
