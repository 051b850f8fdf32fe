import Bus
import Messages
import XCTest

final class KeyValueTests: BusTestCase {
    private func entry(_ amount: String) -> LedgerEntry {
        var entry = LedgerEntry()
        entry.symbol = "BTCUSDT"
        entry.positionAmt = amount
        return entry
    }

    func testStaleRevisionUpdateFailsWithTypedConflict() async throws {
        let ledger = try await bus.keyValue("qt_ledger")
        let first = try await ledger.create("BTCUSDT", message: entry("0.010"))
        let second = try await ledger.update("BTCUSDT", message: entry("0.020"), expectedRevision: first)
        XCTAssertGreaterThan(second, first)
        do {
            try await ledger.update("BTCUSDT", message: entry("0.030"), expectedRevision: first)
            XCTFail("a stale revision must not write")
        } catch let error as BusError {
            XCTAssertEqual(error, .conflict(bucket: "qt_ledger", key: "BTCUSDT", expectedRevision: first))
        }
        let current = try await ledger.get(LedgerEntry.self, "BTCUSDT")
        XCTAssertEqual(current?.value.positionAmt, "0.020")
        XCTAssertEqual(current?.revision, second)
    }

    func testCreateOnAnExistingKeyConflicts() async throws {
        let leases = try await bus.keyValue("qt_leases")
        var lease = Lease()
        lease.name = "universe"
        lease.holder = "node-a"
        try await leases.create("universe", message: lease)
        lease.holder = "node-b"
        do {
            try await leases.create("universe", message: lease)
            XCTFail("second create must conflict")
        } catch let error as BusError {
            XCTAssertEqual(error, .conflict(bucket: "qt_leases", key: "universe", expectedRevision: 0))
        }
        let holder = try await leases.get(Lease.self, "universe")?.value.holder
        XCTAssertEqual(holder, "node-a")
    }

    /// Writes go out as JetStream publishes (no `kvStore_*` call): a create over a delete marker
    /// still writes, as `kvStore_Create` does, and a key the bucket's subjects cannot carry is
    /// refused by name before anything is sent.
    func testCreateWritesOverADeleteMarkerAndAnInvalidKeyIsRefusedByName() async throws {
        let leases = try await bus.keyValue("qt_leases")
        var lease = Lease()
        lease.name = "universe"
        lease.holder = "node-a"
        let first = try await leases.create("universe", message: lease)
        try await leases.delete("universe")
        let afterDelete = try await leases.get("universe")
        XCTAssertNil(afterDelete)
        lease.holder = "node-b"
        let second = try await leases.create("universe", message: lease)
        XCTAssertEqual(second, first + 2, "the create lands right after the delete marker")
        let holder = try await leases.get(Lease.self, "universe")?.value.holder
        XCTAssertEqual(holder, "node-b")

        for key in ["", ".universe", "universe.", "a b", "uni*"] {
            do {
                try await leases.put(key, message: lease)
                XCTFail("key \"\(key)\" must be refused")
            } catch BusError.invalidArgument(let text) {
                XCTAssertTrue(text.contains("\"\(key)\"") && text.contains("qt_leases"), text)
            }
        }
    }

    /// A write that rides in a publish batch (`HandlerContext.updateWithOutputs`) is stored as the
    /// KV handle's own write would be: an update at the expected revision, a delete marker; and
    /// the batch is one publish round trip, the writes counted in it.
    func testWritesInAPublishBatchLandAsKeyValueWrites() async throws {
        let counter = BusOperationCounter()
        let ledger = try await bus.keyValue("qt_ledger")
        let permits = try await bus.keyValue("qt_permits")
        let first = try await ledger.create("BTCUSDT", message: entry("0.010"))
        var permit = Permit()
        permit.planID = "plan-1"
        permit.symbol = "BTCUSDT"
        try await permits.put("plan-1", message: permit)
        let watch = try await permits.watch("plan-1")
        var seen = watch.makeAsyncIterator()
        _ = try await XCTUnwrapAsync(await seen.next())

        let acks = try await bus.publishBatch([
            try outgoing(kline("BTCUSDT", close: "100", at: 1), id: "bar-1"),
            OutgoingMessage(KeyValueWrite(bucket: "qt_ledger", key: "BTCUSDT", operation: .update(expectedRevision: first)),
                            value: try entry("0.020").serializedBytes()),
            OutgoingMessage(KeyValueWrite(bucket: "qt_permits", key: "plan-1", operation: .delete), value: []),
        ], countingIn: counter)
        XCTAssertEqual(acks.map(\.stream), ["QT_MARKET", "KV_qt_ledger", "KV_qt_permits"])
        let current = try await ledger.get(LedgerEntry.self, "BTCUSDT")
        XCTAssertEqual(current?.value.positionAmt, "0.020")
        XCTAssertEqual(current?.revision, acks[1].sequence, "the PubAck's sequence is the key's new revision")
        let gone = try await permits.get(Permit.self, "plan-1")
        XCTAssertNil(gone, "a delete marker reads as no value")
        let deletion = try await XCTUnwrapAsync(await seen.next())
        watch.stop()
        XCTAssertEqual(deletion.key, "plan-1")
        XCTAssertNil(try deletion.decoded(as: Permit.self), "watchers see the delete")
        XCTAssertEqual(counter.snapshot, [.publish: 1])

        // A moved revision refuses the write and fails the batch, as a refused publish does.
        do {
            _ = try await bus.publishBatch([
                OutgoingMessage(KeyValueWrite(bucket: "qt_ledger", key: "BTCUSDT", operation: .update(expectedRevision: first)),
                                value: try entry("0.030").serializedBytes())])
            XCTFail("a stale revision must not write")
        } catch let error as BusError {
            XCTAssertTrue("\(error)".contains("wrong last sequence"), "\(error)")
        }
        let unchanged = try await ledger.get(LedgerEntry.self, "BTCUSDT")
        XCTAssertEqual(unchanged?.value.positionAmt, "0.020")
    }

    func testWatchSeesAPut() async throws {
        let control = try await bus.keyValue("qt_control")
        let watch = try await control.watch("trading_state")
        var state = Control()
        state.tradingState = .reducing
        state.reason = "margin ratio"
        let revision = try await control.put("trading_state", message: state)

        var iterator = watch.makeAsyncIterator()
        let seen = try await XCTUnwrapAsync(await iterator.next())
        watch.stop()
        XCTAssertEqual(seen.key, "trading_state")
        XCTAssertEqual(seen.revision, revision)
        XCTAssertEqual(try seen.decoded(as: Control.self)?.tradingState, .reducing)
    }

    func testKeysGetDeleteAndTypeCheck() async throws {
        let snapshots = try await bus.keyValue("qt_snapshot")
        var position = PositionSnapshot()
        position.symbol = "ETHUSDT"
        try await snapshots.put("ETHUSDT", message: position)
        var account = AccountSnapshot()
        account.marginRatio = 0.12
        try await snapshots.put("_account", message: account)
        let keys = try await snapshots.keys()
        XCTAssertEqual(Set(keys), ["ETHUSDT", "_account"])
        let ratio = try await snapshots.get(AccountSnapshot.self, "_account")?.value.marginRatio
        XCTAssertEqual(ratio, 0.12)

        // R1 for KV: qt_snapshot/_account holds an AccountSnapshot, not a PositionSnapshot.
        do {
            try await snapshots.put("_account", message: position)
            XCTFail("wrong value type must be refused")
        } catch let error as BusError {
            XCTAssertEqual(error, .wrongType(subject: "qt_snapshot/_account", expected: "qt.v1.AccountSnapshot",
                                             actual: "qt.v1.PositionSnapshot"))
        }
        try await snapshots.delete("ETHUSDT")
        let deleted = try await snapshots.get("ETHUSDT")
        XCTAssertNil(deleted)
        let remaining = try await snapshots.keys()
        XCTAssertEqual(remaining, ["_account"])
    }
}
