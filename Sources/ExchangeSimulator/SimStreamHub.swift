import Exchange
import Foundation
import Synchronization

/// The simulator's WebSocket sessions and what each subscribed to. Paths as Binance serves them
/// (optionally under `/public`, `/market` or `/private`): `/ws/<stream>`, `/ws` with SUBSCRIBE
/// requests, `/stream?streams=a/b/c` (combined: every payload wrapped in `{"stream","data"}`).
/// A stream name that is a valid listenKey is that account's user data stream.
final class SimStreamHub: Sendable {
    final class Session: Sendable {
        let id: Int
        let combined: Bool
        let outbox: AsyncStream<String>.Continuation
        let streams: Mutex<Set<String>>

        init(id: Int, combined: Bool, streams: Set<String>, outbox: AsyncStream<String>.Continuation) {
            self.id = id
            self.combined = combined
            self.streams = Mutex(streams)
            self.outbox = outbox
        }

        func send(stream: String, payload: String) {
            outbox.yield(combined ? "{\"stream\":\"\(stream)\",\"data\":\(payload)}" : payload)
        }
    }

    private let sessions = Mutex<[Int: Session]>([:])
    private let nextID = Atomic<Int>(1)
    private let exchange: SimExchange

    init(exchange: SimExchange) {
        self.exchange = exchange
    }

    /// Where a request for a stream connection goes, or nil when the path is not a stream endpoint.
    static func route(path: String, query: String?) -> (combined: Bool, streams: Set<String>)? {
        var path = path
        for prefix in ["/public", "/market", "/private"] where path.hasPrefix(prefix + "/") { path.removeFirst(prefix.count) }
        let parameters = Dictionary(QueryString.decode(query ?? ""), uniquingKeysWith: { $1 })
        if path == "/stream" {
            return (true, Set((parameters["streams"] ?? "").split(separator: "/").map(String.init)))
        }
        if path == "/ws" { return (false, Set([parameters["listenKey"]].compactMap { $0 })) }
        if path.hasPrefix("/ws/") { return (false, Set(path.dropFirst(4).split(separator: "/").map(String.init))) }
        return nil
    }

    func open(combined: Bool, streams: Set<String>) -> (Session, AsyncStream<String>) {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(100_000))
        let session = Session(id: nextID.add(1, ordering: .relaxed).oldValue, combined: combined, streams: streams, outbox: continuation)
        sessions.withLock { $0[session.id] = session }
        return (session, stream)
    }

    func close(_ session: Session) {
        sessions.withLock { _ = $0.removeValue(forKey: session.id) }
        session.outbox.finish()
    }

    /// Closes every session (fault knob: the network dropped them); clients must reconnect.
    func dropAll() -> Int {
        let all = sessions.withLock { sessions in
            defer { sessions.removeAll() }
            return Array(sessions.values)
        }
        for session in all { session.outbox.finish() }
        return all.count
    }

    var sessionCount: Int { sessions.withLock { $0.count } }

    /// Answers a request a client sent on its connection (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS).
    func request(_ text: String, from session: Session) {
        struct Request: Decodable {
            let method: String
            let params: [String]?
            let id: Int64?
        }
        guard let request = try? JSONDecoder().decode(Request.self, from: Data(text.utf8)) else {
            session.outbox.yield("{\"error\":{\"code\":2,\"msg\":\"Invalid request: the frame must be a JSON object with method, params and id\"},\"id\":null}")
            return
        }
        let id = request.id.map(String.init) ?? "null"
        switch request.method {
        case "SUBSCRIBE":
            session.streams.withLock { $0.formUnion(request.params ?? []) }
            session.outbox.yield("{\"result\":null,\"id\":\(id)}")
        case "UNSUBSCRIBE":
            session.streams.withLock { $0.subtract(request.params ?? []) }
            session.outbox.yield("{\"result\":null,\"id\":\(id)}")
        case "LIST_SUBSCRIPTIONS":
            let names = session.streams.withLock { $0.sorted() }.map { "\"\($0)\"" }.joined(separator: ",")
            session.outbox.yield("{\"result\":[\(names)],\"id\":\(id)}")
        default:
            session.outbox.yield("{\"error\":{\"code\":1,\"msg\":\"Unknown method \(request.method)\"},\"id\":\(id)}")
        }
    }

    /// One step of the market: collects what is due and sends it to the sessions that want it.
    func pump() {
        let all = sessions.withLock { Array($0.values) }
        guard !all.isEmpty else {
            _ = exchange.streamStep(klineSymbols: [], wantsMarks: false)  // the account's event outbox must not grow
            return
        }
        var klineSymbols = Set<String>()
        var wantsMarks = false
        let symbolsByLower = exchange.symbolsByLowercase
        for session in all {
            for name in session.streams.withLock({ $0 }) {
                if name.hasSuffix("@kline_1m"), let symbol = symbolsByLower[String(name.dropLast(9))] { klineSymbols.insert(symbol) }
                if name.contains("@markPrice") || name.hasPrefix("!markPrice") { wantsMarks = true }
            }
        }
        let batch = exchange.streamStep(klineSymbols: klineSymbols, wantsMarks: wantsMarks)
        guard !batch.isEmpty else { return }
        let encoder = JSONEncoder()
        let markPayloads = Dictionary(uniqueKeysWithValues: batch.marks.compactMap { mark in
            (try? encoder.encode(mark)).map { (mark.symbol.lowercased(), String(decoding: $0, as: UTF8.self)) }
        })
        let allMarks = batch.marks.isEmpty ? nil : "[" + batch.marks.compactMap { markPayloads[$0.symbol.lowercased()] }.joined(separator: ",") + "]"
        for session in all {
            for name in session.streams.withLock({ $0 }).sorted() {
                if name.hasSuffix("@kline_1m"), let symbol = symbolsByLower[String(name.dropLast(9))] {
                    for payload in batch.klines[symbol] ?? [] { session.send(stream: name, payload: payload) }
                } else if name.hasPrefix("!markPrice@arr") {
                    if let allMarks { session.send(stream: name, payload: allMarks) }
                } else if let at = name.range(of: "@markPrice") {
                    if let payload = markPayloads[String(name[..<at.lowerBound])] { session.send(stream: name, payload: payload) }
                } else if let events = batch.user[name] {
                    for payload in events { session.send(stream: name, payload: payload) }
                }
            }
        }
    }
}
