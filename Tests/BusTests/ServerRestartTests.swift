import Bus
import Foundation
import Synchronization
import Messages
import XCTest

final class ServerRestartTests: BusTestCase {
    /// Publishes batches with retries (a retried batch keeps its `Nats-Msg-Id`s) while another
    /// task kills the server (SIGKILL) and starts it again on the same port and store: every id
    /// ends up in the stream exactly once.
    func testEveryMessageIDIsStoredExactlyOnceAcrossAServerRestart() async throws {
        bus.close()
        var options = options(for: server)
        options.jetStreamWaitMs = 1_000
        let publisher = try BusConnection(options)
        bus = publisher

        let total = 3_000
        let chunk = 50
        let progress = Progress()
        let server = self.server!
        let restarter = Task.detached {
            while progress.acked < 500 { try await Task.sleep(nanoseconds: 1_000_000) }
            server.kill()
            try server.restart()
            progress.markRestarted()
        }

        var failedAttempts = 0
        var duplicates = 0
        for start in stride(from: 0, to: total, by: chunk) {
            let messages = try (start..<min(total, start + chunk)).map {
                try outgoing(kline("XRPUSDT", close: "0.\($0)", at: Int64($0)), id: "restart-\($0)")
            }
            while true {
                do {
                    let acks = try await publisher.publishBatch(messages)
                    duplicates += acks.filter(\.duplicate).count
                    progress.add(acks.count)
                    break
                } catch {
                    failedAttempts += 1
                    XCTAssertLessThan(failedAttempts, 200, "server did not come back: \(error)")
                    try await Task.sleep(nanoseconds: 50_000_000)
                }
            }
        }
        try await restarter.value
        XCTAssertTrue(progress.restarted)
        print("restart test: \(failedAttempts) failed batch attempts, \(duplicates) duplicates reported")

        let info = try await publisher.streamInfo("QT_MARKET")
        XCTAssertEqual(info.messages, UInt64(total))

        let spec = try ConsumerSpec(plugin: "audit", input: "klines", filterSubject: "qt.market.kline.XRPUSDT")
        try await publisher.ensureConsumer(spec)
        let consumer = try publisher.consume(Kline.self, spec: spec, producer: "audit@test")
        let ids = try await take(total, from: consumer, seconds: 30).map(\.message.meta.id)
        consumer.stop()
        XCTAssertEqual(ids.count, total)
        XCTAssertEqual(Set(ids).count, total)
        XCTAssertEqual(Set(ids), Set((0..<total).map { "restart-\($0)" }))
    }
}

private final class Progress: Sendable {
    private let ackedCount = Atomic<Int>(0)
    private let didRestart = Atomic<Bool>(false)

    var acked: Int { ackedCount.load(ordering: .relaxed) }
    var restarted: Bool { didRestart.load(ordering: .relaxed) }
    func add(_ count: Int) { ackedCount.add(count, ordering: .relaxed) }
    func markRestarted() { didRestart.store(true, ordering: .relaxed) }
}
