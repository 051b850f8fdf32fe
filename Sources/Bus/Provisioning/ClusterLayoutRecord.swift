import Foundation
import Messages

/// `qt_cluster/layout`: the partition count, replicas and schema fingerprint provisioning set up
/// (DESIGN.md §3.3). Written only by `provision`; read by hosts at start and by every publisher
/// of keyed subjects.
extension BusConnection {
    public static let layoutBucket = "qt_cluster"
    public static let layoutKey = "layout"

    /// The layout and its revision, or nil when the server was never provisioned.
    public func readLayout() async throws -> (layout: ClusterLayout, revision: UInt64)? {
        let bucket: KeyValueBucket
        do {
            bucket = try await keyValue(Self.layoutBucket)
        } catch BusError.notFound {
            return nil
        }
        return try await bucket.get(ClusterLayout.self, Self.layoutKey).map { (layout: $0.value, revision: $0.revision) }
    }

    /// Reads P from the layout and keeps it for publishing keyed subjects.
    @discardableResult
    public func loadPartitioning() async throws -> Partitioning {
        if let partitioning { return partitioning }
        guard let (layout, _) = try await readLayout() else {
            throw BusError.notProvisioned("\(Self.layoutBucket)/\(Self.layoutKey) is missing: run `qt streams provision`")
        }
        let partitioning = try Partitioning(count: Int(layout.partitions))
        usePartitioning(partitioning)
        return partitioning
    }
}
