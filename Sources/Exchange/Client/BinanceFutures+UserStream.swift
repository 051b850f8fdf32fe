import Foundation

/// The user data stream's key (`USER_STREAM` security: API key, no signature). A key lives 60
/// minutes from its last keep-alive; Binance answers a POST while one is valid with that same key.
extension BinanceFutures {
    public func newListenKey() async throws -> String {
        try await call("POST", "/fapi/v1/listenKey", security: .apiKey, retry: .readOrQuery, as: ListenKey.self).listenKey
    }

    /// Extends the key's life by 60 minutes; `-1125` (no such key) means it expired: make a new one.
    public func keepAliveListenKey() async throws {
        _ = try await call("PUT", "/fapi/v1/listenKey", security: .apiKey, retry: .readOrQuery, as: ListenKey.self)
    }

    public func closeListenKey() async throws {
        _ = try await call("DELETE", "/fapi/v1/listenKey", security: .apiKey, retry: .readOrQuery, as: EmptyObject.self)
    }
}
