import KeeperBackup
import KeeperLMDB
import KeeperLog
import KeeperModel
import KeeperStore
import KeeperWire
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// The SwiftKeeper server as a library: a standalone server (an ensemble of one) with its
/// store in `dataDir/store`, its write-ahead log in `dataLogDir/log`, the client port, and the
/// admin HTTP server.
public final class KeeperServer: Sendable {
    public let config: ServerConfig
    let logger: Logger
    let clientGroup: MultiThreadedEventLoopGroup
    let replicaGroup: MultiThreadedEventLoopGroup
    let storeSlot: StoreSlot
    /// The store served now (a learner's SNAP replaces it).
    var store: KeeperStore { storeSlot.store }
    let log: KeeperLogAdapter
    let replica: Replica
    let context: ServerContext
    let clientChannel: any Channel
    let admin: AdminServer?
    /// Online backup commands, scheduled backups, log archiving and purging.
    let backups: BackupService

    /// The address clients connect to (the port is the real one when `clientPort` was 0).
    public var clientAddress: SocketAddress? { clientChannel.localAddress }
    public var adminAddress: SocketAddress? { admin?.address }

    /// Opens the data, replays the log, and starts serving.
    public init(config: ServerConfig, logger: Logger = Logger(label: "swiftkeeper")) throws {
        self.config = config
        self.logger = logger
        try Self.makeDirectory(config.dataDir)
        try Self.makeDirectory(config.effectiveDataLogDir)
        let databaseID = try DatabaseIdentity.load(orCreateIn: config.dataDir)
        let storeConfiguration = StoreConfiguration(durability: .checkpointed, maxDataLength: config.juteMaxBuffer)
        let logConfiguration = LogConfiguration(
            directory: config.effectiveDataLogDir + "/log", databaseID: databaseID,
            preallocationSize: max(4096, config.preAllocSizeKB * 1024), segmentMaxRecords: config.snapCount,
            maxPayloadBytes: max(config.juteMaxBuffer * 2, 1 << 20))
        var opened: (StoreSlot, KeeperLogAdapter)
        do {
            opened = (
                StoreSlot(try Self.openStore(config, configuration: storeConfiguration, logger: logger)),
                try KeeperLogAdapter(configuration: logConfiguration)
            )
        } catch where config.servers.count > 1 && Self.isDamage(error) {
            // Never serve damaged data, and never let it spread: move it aside and rejoin
            // empty; the server abstains from elections until a leader has synchronized it.
            let aside = try Self.moveDamagedData(config, logger: logger, because: error)
            logger.error(
                "damaged data moved aside; rejoining the ensemble empty to recover from the other servers",
                metadata: ["error": "\(error)", "movedTo": "\(aside)"])
            opened = (
                StoreSlot(try Self.openStore(config, configuration: storeConfiguration, logger: logger)),
                try KeeperLogAdapter(configuration: logConfiguration)
            )
        }
        (storeSlot, log) = opened
        let store = storeSlot
        if !config.forceSync {
            logger.warning("forceSync=no is not supported: every write is still fdatasynced before it is acknowledged")
        }
        let ensemble = try Ensemble(config: config)
        clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        replicaGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let watches = WatchManager()
        let registry = ConnectionRegistry()
        let stats = ServerStats()
        var prepOptions = Prep.Options()
        prepOptions.extendedTypesEnabled = config.extendedTypesEnabled
        prepOptions.maxDataLength = config.juteMaxBuffer
        let replica = try Replica(
            loop: replicaGroup.next(), store: store, storeConfiguration: storeConfiguration, dataDir: config.dataDir, log: log,
            watches: watches, ensemble: ensemble,
            options: {
                var o = Replica.Options(
                    tickTime: config.tickTime, serverID: config.myid ?? 0, prep: prepOptions, maxBuffer: config.juteMaxBuffer)
                o.checkpointInterval = config.snapCount
                return o
            }(),
            wallClock: Clock.wallMillis, monotonicMillis: Clock.monotonicMillis,
            deliver: { deliveries in
                for entry in registry.post(deliveries) { entry.wake() }
            },
            onSessionClosed: { session in registry.connection(for: session)?.close() },
            onServingChanged: { serving in
                // Clients of a server that lost its quorum reconnect elsewhere (ZooKeeper closes
                // them too); their sessions live on in the ensemble.
                if !serving { for entry in registry.all() { entry.close() } }
            })
        self.replica = replica
        let configCopy = config
        let storeRef = store
        let reportBuilder: @Sendable () -> ServerReport = {
            ReportBuilder.build(
                config: configCopy, store: storeRef.store, replica: replica, watches: watches, registry: registry, stats: stats)
        }
        let ctx = ServerContext(
            config: config, replica: replica, store: store, watches: watches, registry: registry, stats: stats,
            logger: logger, mode: ensemble.isStandalone ? "standalone" : "ensemble", monotonicMillis: Clock.monotonicMillis,
            wallClock: Clock.wallMillis, report: reportBuilder)
        context = ctx
        try replica.start(tickTime: config.tickTime)
        ContainerReaper.start(on: replicaGroup.next(), replica: replica, store: store, interval: config.containerCheckInterval)

        let maxFrame = config.juteMaxBuffer
        clientChannel = try ServerBootstrap(group: clientGroup)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ClientFrameDecoder(maxFrameLength: maxFrame)))
                    try channel.pipeline.syncOperations.addHandler(ClientHandler(server: ctx))
                }
            }
            .bind(host: config.clientPortAddress, port: config.clientPort).wait()
        if config.adminEnableServer {
            do {
                admin = try AdminServer(group: clientGroup, host: config.adminServerAddress, port: config.adminServerPort, server: ctx)
            } catch {
                // ZooKeeper too keeps serving clients when its admin server cannot start.
                logger.error("admin server not started on \(config.adminServerAddress):\(config.adminServerPort): \(error)")
                admin = nil
            }
        } else {
            admin = nil
        }
        // Last, once nothing else can fail: a started service stays registered for its dataDir.
        let logAdapter = log
        backups = try BackupService.start(
            config: config, store: { store.store }, log: { logAdapter.log }, logger: Logger(label: "swiftkeeper.backup"))
        logger.info(
            "serving", metadata: ["client": "\(clientChannel.localAddress.map { "\($0)" } ?? "?")", "dataDir": "\(config.dataDir)"])
    }

    /// Stops accepting clients, closes connections, finishes the log and the store.
    public func shutdown() throws {
        do { try clientChannel.close().wait() } catch ChannelError.alreadyClosed {}
        try admin?.close()
        backups.stop()
        replica.shutdown()
        try clientGroup.syncShutdownGracefully()
        try replicaGroup.syncShutdownGracefully()
        try log.close()
        try storeSlot.store.sync()
    }

    /// Opens the store; one that an OS crash may have torn (writes after its last checkpoint
    /// were in flight) is moved aside and rebuilt from the log, never served.
    static func openStore(_ config: ServerConfig, configuration: StoreConfiguration, logger: Logger) throws -> KeeperStore {
        let directory = config.dataDir + "/store"
        // A SNAP install cut short by a crash: `store.incoming` is complete (it is renamed into
        // place only after its data is synced), so finish moving it in.
        if access(directory + ".incoming/" + KeeperStore.dataFileName, F_OK) == 0 {
            logger.notice("finishing the installation of a snapshot received from the leader")
            try Replica.swapInIncomingStore(dataDir: config.dataDir)
        }
        try removeDirectory(directory + ".old")
        // An admin restore's upload, decoded but not yet installed when the server stopped.
        try removeDirectory(directory + ".restore")
        do {
            return try KeeperStore(directory: directory, configuration: configuration)
        } catch StoreError.unsyncedAtSystemCrash {
            let aside = directory + ".unsynced-\(Clock.wallMillis())"
            guard rename(directory, aside) == 0 else {
                throw ServerStartError(message: "cannot move \(directory) aside: \(String(cString: strerror(errno)))")
            }
            logger.warning("the store was not checkpointed before an OS crash; rebuilding it from the log", metadata: ["moved": "\(aside)"])
            return try KeeperStore(directory: directory, configuration: configuration)
        }
    }

    /// Errors that mean the bytes on disk are damaged (as opposed to a missing permission or
    /// a full disk): a log record that fails its checksum before the tail, an LMDB file that
    /// is corrupted or not LMDB at all.
    static func isDamage(_ error: any Error) -> Bool {
        if let e = error as? KeeperLogError, case .corruption = e { return true }
        if let e = error as? StoreError, case .damaged = e { return true }
        if let e = error as? LMDBError { return e.isCorrupted || e.isInvalidFile }
        return false
    }

    /// Moves the store and the log into `dataDir/damaged-<time>/` (kept for the operator) and
    /// marks the data directory as recovering (`Replica.recoveringMarker`).
    static func moveDamagedData(_ config: ServerConfig, logger: Logger, because error: any Error) throws -> String {
        let aside = config.dataDir + "/damaged-\(Clock.wallMillis())"
        try makeDirectory(aside)
        for (path, name) in [(config.dataDir + "/store", "store"), (config.effectiveDataLogDir + "/log", "log")] {
            if rename(path, aside + "/" + name) != 0 && errno != ENOENT {
                throw ServerStartError(message: "cannot move damaged \(path) aside: \(String(cString: strerror(errno)))")
            }
        }
        try Replica.markRecovering(dataDir: config.dataDir)
        try syncDirectory(config.dataDir)
        if config.effectiveDataLogDir != config.dataDir { try syncDirectory(config.effectiveDataLogDir) }
        return aside
    }

    static func makeDirectory(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o750) != 0 && errno != EEXIST {
                throw ServerStartError(message: "cannot create directory \(current): \(String(cString: strerror(errno)))")
            }
        }
    }
}

/// Why the server could not start.
public struct ServerStartError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

enum Clock {
    @Sendable static func wallMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
    @Sendable static func monotonicMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// The database id shared by the store and the log of one data directory, so a log directory
/// of another database is refused instead of replayed into this one.
enum DatabaseIdentity {
    static func load(orCreateIn dataDir: String) throws -> UInt64 {
        let path = dataDir + "/database-id"
        if let fd = Optional(open(path, O_RDONLY)), fd >= 0 {
            defer { close(fd) }
            var buf = [UInt8](repeating: 0, count: 32)
            let n = read(fd, &buf, 32)
            guard n > 0, let id = UInt64(String(decoding: buf[0..<n], as: UTF8.self).trimmingWhitespace(), radix: 16) else {
                throw ServerStartError(message: "\(path): not a database id (16 hex digits expected)")
            }
            return id
        }
        guard errno == ENOENT else { throw ServerStartError(message: "\(path): \(String(cString: strerror(errno)))") }
        let id = UInt64.random(in: 1...UInt64.max)
        let text = String(id, radix: 16) + "\n"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o640)
        guard fd >= 0 else { throw ServerStartError(message: "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let written = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, text.utf8.count) }
        guard written == text.utf8.count, fsync(fd) == 0 else {
            throw ServerStartError(message: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        return id
    }
}
