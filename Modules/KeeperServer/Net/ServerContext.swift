import KeeperModel
import KeeperStore
import Logging
import Synchronization

/// What every client connection shares: configuration, the replica, the store (for reads),
/// watches, the registry of connections and the counters.
final class ServerContext: Sendable {
    let config: ServerConfig
    let replica: Replica
    let storeSlot: StoreSlot
    /// The store reads are served from (a SNAP may replace it; a read keeps the one it took).
    var store: KeeperStore { storeSlot.store }
    let watches: WatchManager
    let registry: ConnectionRegistry
    let stats: ServerStats
    let metrics = ServerMetrics()
    let logger: Logger
    /// Writes submitted and not yet answered, across all connections (globalOutstandingLimit).
    let outstanding = Atomic<Int>(0)
    let monotonicMillis: @Sendable () -> Int64
    let wallClock: @Sendable () -> Int64
    let report: @Sendable () -> ServerReport
    let mode: String

    init(
        config: ServerConfig, replica: Replica, store: StoreSlot, watches: WatchManager, registry: ConnectionRegistry,
        stats: ServerStats, logger: Logger, mode: String, monotonicMillis: @escaping @Sendable () -> Int64,
        wallClock: @escaping @Sendable () -> Int64, report: @escaping @Sendable () -> ServerReport
    ) {
        self.config = config
        self.replica = replica
        self.storeSlot = store
        self.watches = watches
        self.registry = registry
        self.stats = stats
        self.logger = logger
        self.mode = mode
        self.monotonicMillis = monotonicMillis
        self.wallClock = wallClock
        self.report = report
    }

    /// The session password: a digest of the session id under the ensemble's secret, so any
    /// server of the ensemble can check it without storing it (ZooKeeper derives it the same
    /// way, from the id and a fixed secret).
    static func password(for session: SessionID) -> [UInt8] {
        var bytes = Array("SwiftKeeper-session-secret-0xB3415C00".utf8)
        withUnsafeBytes(of: session.rawValue.bigEndian) { bytes.append(contentsOf: $0) }
        return Array(SHA1.hash(bytes).prefix(16))
    }
}
