import Messages
import XCTest

final class TopologyTests: XCTestCase {
    func testSubjectPatternsFollowNATSWildcards() {
        let star = SubjectPattern("qt.market.kline.*")
        XCTAssertTrue(star.matches("qt.market.kline.BTCUSDT"))
        XCTAssertFalse(star.matches("qt.market.kline"))
        XCTAssertFalse(star.matches("qt.market.kline.BTCUSDT.x"))
        XCTAssertFalse(star.matches("qt.market.state.BTCUSDT"))
        let tail = SubjectPattern("qt.shadow.>")
        XCTAssertTrue(tail.matches("qt.shadow.qt.plan.sized.BTCUSDT"))
        XCTAssertFalse(tail.matches("qt.shadow"))
        XCTAssertTrue(SubjectPattern("qt.market.kline.BTCUSDT").isCovered(by: star))
        XCTAssertTrue(star.isCovered(by: star))
        XCTAssertFalse(star.isCovered(by: SubjectPattern("qt.market.kline.BTCUSDT")))
        XCTAssertTrue(SubjectPattern("qt.shadow.qt.plan.sized.*").isCovered(by: tail))
        XCTAssertTrue(SubjectPattern("qt.market.>").overlaps(star))
        XCTAssertTrue(SubjectPattern("qt.*.kline.BTCUSDT").overlaps(star))
        XCTAssertFalse(SubjectPattern("qt.plan.>").overlaps(star))
        XCTAssertFalse(SubjectPattern("qt.market").overlaps(star))
    }

    func testEverySubjectOfTheDesignHasExactlyOneTypeAndStream() throws {
        let expected: [(String, String, String)] = [
            (Subjects.kline("BTCUSDT"), "QT_MARKET", "qt.v1.Kline"),
            (Subjects.marketState("BTCUSDT"), "QT_MARKET", "qt.v1.MarketState"),
            (Subjects.intent("BTCUSDT"), "QT_SIGNAL", "qt.v1.TradeIntent"),
            (Subjects.harvestProposed("BTCUSDT"), "QT_EXIT", "qt.v1.HarvestProposal"),
            (Subjects.harvestCalibrated("BTCUSDT"), "QT_EXIT", "qt.v1.CalibratedProposal"),
            (Subjects.planProposed("BTCUSDT"), "QT_PLAN", "qt.v1.Plan"),
            (Subjects.planSized("BTCUSDT"), "QT_PLAN", "qt.v1.Plan"),
            (Subjects.planApproved("BTCUSDT"), "QT_PLAN", "qt.v1.Plan"),
            (Subjects.execResult("BTCUSDT"), "QT_EXEC", "qt.v1.OrderResult"),
            (Subjects.execFill("BTCUSDT"), "QT_EXEC", "qt.v1.Fill"),
            (Subjects.decision(plugin: "governor", symbol: "BTCUSDT"), "QT_AUDIT", "qt.v1.Decision"),
            (Subjects.alert(.deadLetter), "QT_AUDIT", "qt.v1.Alert"),
            (Subjects.deadLetter(consumer: "governor__plans"), "QT_DLQ", "qt.v1.DeadLetter"),
            (Subjects.shadow(Subjects.planSized("BTCUSDT")), "QT_SHADOW", "qt.v1.Plan"),
        ]
        let partitioning = try Partitioning(count: 8)
        for (subject, stream, type) in expected {
            let route = try XCTUnwrap(Topology.route(for: subject), subject)
            XCTAssertEqual(route.stream, stream, subject)
            XCTAssertEqual(route.typeName, type, subject)
            // Streams own the wire subject: a keyed one carries its partition token.
            let wire = partitioning.wireSubject(subject)
            let owners = Topology.streams.filter { $0.subjects.contains { SubjectPattern($0).matches(wire) } }
            XCTAssertEqual(owners.map(\.name), [stream], "\(wire) must be owned by exactly one stream")
            XCTAssertEqual(Partitioning.logicalSubject(wire), subject)
        }
        XCTAssertNil(Topology.route(for: "qt.market.kline"))
        XCTAssertNil(Topology.route(for: "qt.shadow.qt.nothing.X"))
    }

    func testBucketsMatchTheDesign() throws {
        let byName = Dictionary(uniqueKeysWithValues: Topology.buckets.map { ($0.name, $0) })
        XCTAssertEqual(byName["qt_ledger"]?.history, 64)
        XCTAssertEqual(byName["qt_permits"]?.ttlSeconds, 60)
        XCTAssertEqual(byName["qt_orders"]?.ttlSeconds, 0, "DESIGN.md §3.2: no TTL; the executor sweeps finished records after 24 h")
        XCTAssertEqual(byName["qt_hosts"]?.ttlSeconds, 30)
        XCTAssertEqual(byName["qt_leases"]?.ttlSeconds, 15)
        XCTAssertEqual(byName["qt_state"]?.history, 8)
        XCTAssertTrue(byName["qt_snapshot"]?.valueType(forKey: "_account") == AccountSnapshot.self)
        XCTAssertTrue(byName["qt_snapshot"]?.valueType(forKey: "BTCUSDT") == PositionSnapshot.self)
        XCTAssertEqual(byName["qt_cluster"]?.ttlSeconds, 0)
        XCTAssertEqual(Topology.buckets.count, 11)
        XCTAssertTrue(Topology.buckets.allSatisfy { $0.history >= 1 && $0.history <= 64 })
    }

    func testEveryMessageTypeIsNamedAndStartsWithMeta() throws {
        XCTAssertEqual(MessageTypes.all.count, 22)
        for type in MessageTypes.all {
            XCTAssertTrue(MessageTypes.named(type.protoMessageName) == type)
            // Field 1 is Meta: a message with only meta set encodes as tag 0x0a (field 1, length-delimited).
            var message = type.init()
            message.meta.id = "x"
            XCTAssertEqual((try message.serializedBytes() as [UInt8]).first, 0x0a, type.protoMessageName)
        }
    }
}

final class SchemaFingerprintTests: XCTestCase {
    func testEveryBusMessageTypeHasItsOwnFingerprint() {
        for type in MessageTypes.all {
            let fingerprint = SchemaFingerprint.types[type.protoMessageName]
            XCTAssertEqual(fingerprint?.count, 64, type.protoMessageName)
        }
        XCTAssertNotEqual(SchemaFingerprint.types["qt.v1.Kline"], SchemaFingerprint.types["qt.v1.MarketState"])
        XCTAssertEqual(SchemaFingerprint.value.count, 64)
    }
}
