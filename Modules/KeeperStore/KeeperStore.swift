import KeeperLMDB
import KeeperModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The versioned znode store: ZooKeeper's data tree kept in LMDB, changed only by applying
/// txns at increasing zxids, read through consistent views. It depends on KeeperModel and
/// KeeperLMDB alone (no networking, no server types), so any program can keep a tree with it.
///
/// ```swift
/// import KeeperModel
/// import KeeperStore
///
/// let store = try KeeperStore(directory: "/var/lib/myservice/tree")
/// let header = TxnHeader(clientID: .none, cxid: 0, zxid: Zxid(epoch: 1, counter: 1),
///                        time: 1_700_000_000_000, type: .create)
/// let create = CreateTxn(path: "/app", data: Array("v1".utf8), acl: ACL.openUnsafe, kind: .persistent)
/// let result = try store.write { batch in
///     try batch.apply(TxnEntry(header: header, txn: .create(create)))
/// }
/// print(result.error, result.changes)            // ok [created("/app"), childrenChanged("/")]
/// let node = try store.read { view in try view.node(at: "/app") }
/// print(node?.stat.version ?? -1)                 // 0
/// try store.sync()                                // checkpoint: durable from here on
/// ```
///
/// ## Data model (ZooKeeper's, exactly)
/// - A new store holds ZooKeeper's system nodes: `/`, `/zookeeper`, `/zookeeper/quota` and
///   `/zookeeper/config` (ACL world:anyone READ, aversion -1), all at zxid 0.
/// - Stat rules (DataTree): `cversion` is stored as the number of child creates (the
///   sequential suffix counter, `StoreView.childCreateCount`) and shown as creates × 2 −
///   numChildren (creates + deletes); a create raises it to the txn's `parentCVersion`
///   (-1: one more) and moves pzxid with it; a delete moves pzxid forward only; a child's
///   setData moves neither. A recreated node starts again at version 0.
///   Containers and TTL nodes show ephemeralOwner 0 (their kind is `ZNode.kind`).
/// - Children of ephemeral nodes are refused (NoChildrenForEphemerals); data longer than
///   `StoreConfiguration.maxDataLength` is refused (BadArguments).
/// - Paths: as `ZNodePath.validate`; in addition a path may be at most `maxPathBytes` UTF-8
///   bytes (LMDB's key limit, 510 bytes by default), longer ones are refused (BadArguments).
///
/// ## On-disk layout (format 2)
/// One LMDB environment in `directory` (`data.mdb`, `lock.mdb`) with named databases:
/// - `nodes`: key = parent path, 0x00, name (the root: "/"), so the children of a node are
///   one contiguous key range in name order; value = an 88-byte little-endian header (the
///   stored stat, ACL id, ACL hash and the node's digest term) followed by the data
///   (`NodeRecord`). Format 1 had an 80-byte header without the term: a read-write open
///   upgrades such a store in place (one transaction, synced); a read-only open reads it.
/// - `acls`: key = ACL id (big-endian 64-bit, the SipHash of the list, probing on a
///   collision); value = reference count (64-bit) + the list. Equal lists are stored once.
/// - `ephemerals` (dupsort): key = session id, values = the paths of its ephemeral nodes.
/// - `containers`, `ttls`: key = path of every container / TTL node (for expiry scans).
/// - `sessions`: key = session id; value = its timeout (32-bit ms).
/// - `meta`: `format`, `lastZxid`, `digest`, `nodeCount`, all written in the same LMDB
///   transaction as the changes they describe.
///
/// ## Durability contract
/// The write-ahead log is the source of truth and the store a materialized view: recovery is
/// "open the store, replay the log after `lastAppliedZxid()`". Each `write` batch is atomic:
/// after any crash the store is at a batch boundary, its last applied zxid matching its tree.
/// - `.checkpointed` (default, `MDB_NOSYNC`): `write` does not fsync; `sync()` is the
///   checkpoint. A process crash (SIGKILL, a trap) loses nothing committed: the OS page cache
///   holds it. An OS crash or power loss may lose or tear everything since the last `sync()`;
///   an `unsynced` marker file (fsynced before the first unsynced commit, removed after
///   `sync()`) records the boot id, and opening after another boot with the marker present
///   fails with `StoreError.unsyncedAtSystemCrash`: rebuild from a snapshot or a peer.
///   Purge log segments only up to the zxid of the last `sync()`, and call `sync()` before a
///   clean shutdown (otherwise the marker makes the next boot rebuild the store).
/// - `.syncData` (`MDB_NOMETASYNC`): an OS crash may undo the last batches, never tears.
/// - `.syncEachCommit`: every batch is durable when `write` returns.
///
/// ## Threads
/// Any number of threads may `read` at once (readers never block the writer); `write` calls
/// are serialized. Do not call `write`, `sync` or `close` from inside a `read` or `write`
/// closure.
public final class KeeperStore: @unchecked Sendable {
    // Sendable proof: every stored property is a `let` of a Sendable type except
    // `markerPresent` and `commits`, which are only read and written while holding `writeLock`,
    // and `afterFlushForTesting`, which tests set before any concurrent use.

    /// The on-disk format this code reads and writes (see "On-disk layout").
    public static let formatVersion = "2"
    /// The format before the digest term joined the node header (see "On-disk layout").
    static let legacyFormatVersion = "1"
    /// The data file of a store directory: a snapshot stream (`snapshot(toFileDescriptor:)`)
    /// saved under this name in an empty directory is a store that directory opens as.
    public static let dataFileName = "data.mdb"

    public let directory: String
    public let configuration: StoreConfiguration
    let environment: Environment
    let dbs: Databases
    let writeLock = Lock()
    private var markerPresent: Bool
    /// Write batches committed since open (under `writeLock`): `sync` learns from it whether
    /// a batch came in while it flushed.
    private var commits: UInt64 = 0
    /// Tests: runs in `sync` after the flush, before the marker is considered (set before any
    /// concurrent use).
    var afterFlushForTesting: (() -> Void)?
    private let marker: UnsyncedMarker

    /// The longest path the store accepts, in UTF-8 bytes (LMDB's key size limit − 1).
    public var maxPathBytes: Int { environment.maxKeySize - 1 }

    /// Opens the store in `directory` (created if missing, its parent must exist), creating
    /// a fresh tree with ZooKeeper's system nodes when the directory holds no store.
    public init(directory: String, configuration: StoreConfiguration = StoreConfiguration()) throws {
        self.directory = directory
        self.configuration = configuration
        if !configuration.readOnly && mkdir(directory, 0o750) != 0 && errno != EEXIST {
            throw StoreError.io(operation: "mkdir", path: directory, errno: errno)
        }
        marker = UnsyncedMarker(directory: directory)
        if let recorded = try marker.recordedBootID() {
            let current = UnsyncedMarker.currentBootID()
            guard let current, !recorded.isEmpty, recorded == current else {
                throw StoreError.unsyncedAtSystemCrash(directory: directory)
            }
            markerPresent = true
        } else {
            markerPresent = false
        }
        var flags: Environment.Flags = [.noThreadLocalStorage]
        switch configuration.durability {
        case .checkpointed: flags.insert(.noSync)
        case .syncData: flags.insert(.noMetaSync)
        case .syncEachCommit: break
        }
        if configuration.readOnly { flags.insert(.readOnly) }
        let env: Environment
        do {
            env = try Environment(
                path: directory,
                configuration: .init(
                    mapSize: configuration.initialMapSize, maxReaders: configuration.maxReaders, maxDatabases: 8,
                    flags: flags))
        } catch {
            if configuration.readOnly && error.code == ENOENT {
                throw StoreError.incompatibleFormat(directory: directory, found: "no \(KeeperStore.dataFileName)")
            }
            throw error
        }
        // Reader slots of processes that died holding them would pin old pages forever.
        try env.clearStaleReaders()
        // A store grown past initialMapSize reopens at its current size: liblmdb keeps the
        // larger of the file's and the configured size.
        environment = env
        var opened: Databases
        do {
            let create: Database.Flags = configuration.readOnly ? [] : .create
            opened = try env.openingDatabases { txn in try KeeperStore.openDatabases(txn, create: create) }
        } catch let error as LMDBError where error.isNotFound {
            throw StoreError.incompatibleFormat(directory: directory, found: "no store databases")
        }
        let format = try env.read { txn in try txn.get(opened.meta, key: MetaKey.format) }
        if let format, String(decoding: format, as: UTF8.self) == KeeperStore.legacyFormatVersion {
            if configuration.readOnly {
                opened.legacyRecords = true
            } else {
                try KeeperStore.upgradeFromLegacyFormat(
                    env, opened, directory: directory, marker: marker, markerPresent: markerPresent,
                    configuration: configuration)
            }
        }
        dbs = opened
        try initializeIfNew()
    }

    private static func openDatabases(_ txn: Transaction, create: Database.Flags) throws -> Databases {
        Databases(
            nodes: try txn.openDatabase("nodes", flags: create),
            acls: try txn.openDatabase("acls", flags: create),
            ephemerals: try txn.openDatabase("ephemerals", flags: create.union(.duplicateSort)),
            containers: try txn.openDatabase("containers", flags: create),
            ttls: try txn.openDatabase("ttls", flags: create),
            sessions: try txn.openDatabase("sessions", flags: create),
            meta: try txn.openDatabase("meta", flags: create))
    }

    /// Format 1 to 2: every node record gets its digest term in the header, in one write
    /// transaction (the tree, its digest and zxid are unchanged: the terms are the ones the
    /// digest already sums; when they do not add up to it, the transaction is abandoned and
    /// nothing is written). The upgrade is synced before the store is used, under the
    /// unsynced marker like any other write.
    private static func upgradeFromLegacyFormat(
        _ env: Environment, _ dbs: Databases, directory: String, marker: UnsyncedMarker, markerPresent: Bool,
        configuration: StoreConfiguration
    ) throws {
        if !markerPresent { try marker.create() }
        var legacy = dbs
        legacy.legacyRecords = true
        // Every record grows by 8 bytes: the map may have to grow.
        try growingMapWhenFull(env, configuration: configuration, directory: directory) {
            try env.write { txn in try rewriteLegacyRecords(legacy, in: txn, directory: directory) }
        }
        try env.sync(force: true)
        if !markerPresent { try marker.remove() }
    }

    /// Rewrites every format 1 record of `legacy.nodes` with its term and checks that the
    /// terms sum to the maintained digest (one scan).
    private static func rewriteLegacyRecords(_ legacy: Databases, in txn: WriteTransaction, directory: String) throws {
        let maintained = try StoreView(txn: txn, dbs: legacy, directory: directory, maxKeySize: txn.environment.maxKeySize)
            .digest()
        var sum: UInt64 = 0
        var count: Int64 = 0
        // In chunks (at most 4,096 nodes or 16 MiB of data in memory): the cursor reads a
        // range, then the chunk is rewritten.
        var from: [UInt8] = []
        while true {
            var chunk: [([UInt8], NodeRecord, String)] = []
            var bytes = 0
            var more = false
            try txn.forEach(legacy.nodes, from: from, to: nil) { k, v in
                let path = NodeKey.path(k)
                guard let r = NodeRecord(decoding: v, legacy: true) else {
                    throw StoreError.damaged(directory: directory, detail: "node record of \(v.count) bytes under \(path)")
                }
                chunk.append((Array(k), r, path))
                bytes += v.count
                more = chunk.count < 4096 && bytes < 16 << 20
                return more
            }
            for (key, r, path) in chunk {
                let term = r.digestTerm(path: path)
                try WriteBatch.put(r, term: term, key: key, in: legacy.nodes, txn)
                sum &+= term
                count += 1
            }
            // `more` stays true only when the cursor ran out of nodes.
            guard !more, let last = chunk.last?.0 else { break }
            from = last + [0]
        }
        let recomputed = TreeDigest(value: sum, nodeCount: count, zxid: maintained.zxid)
        guard maintained == recomputed else {
            throw StoreError.damaged(
                directory: directory,
                detail: "format 1 store: its digest says \(maintained) but its nodes sum to \(recomputed); not upgraded")
        }
        try txn.put(legacy.meta, key: MetaKey.format, value: Array(KeeperStore.formatVersion.utf8))
    }

    /// Runs `body` (one LMDB write transaction) again after doubling the map, up to
    /// `maxMapSize`, whenever it fills the map.
    private static func growingMapWhenFull<R>(
        _ env: Environment, configuration: StoreConfiguration, directory: String, _ body: () throws -> R
    ) throws -> R {
        while true {
            do {
                return try body()
            } catch let error as LMDBError where error.isMapFull {
                let size = try env.info().mapSize
                guard size < configuration.maxMapSize else {
                    throw StoreError.mapFull(directory: directory, mapSize: size, maxMapSize: configuration.maxMapSize)
                }
                try env.setMapSize(min(configuration.maxMapSize, size * 2))
            }
        }
    }

    private func initializeIfNew() throws {
        let format = try environment.read { txn in try txn.get(dbs.meta, key: MetaKey.format) }
        if let format {
            let found = String(decoding: format, as: UTF8.self)
            guard found == KeeperStore.formatVersion || (found == KeeperStore.legacyFormatVersion && dbs.legacyRecords) else {
                throw StoreError.incompatibleFormat(directory: directory, found: found)
            }
            return
        }
        if configuration.readOnly {
            throw StoreError.incompatibleFormat(directory: directory, found: "no format record")
        }
        let nodeCount = try environment.read { txn in try txn.statistics(dbs.nodes).entries }
        guard nodeCount == 0 else {
            throw StoreError.incompatibleFormat(directory: directory, found: "nodes without a format record")
        }
        try write(initializing: true) { batch in
            let t = batch.txn
            // The root, /zookeeper (children quota and config), /zookeeper/quota and
            // /zookeeper/config, as a fresh ZooKeeper DataTree has them: every zxid and time
            // 0; the root's create counter does not count /zookeeper.
            func add(_ path: String, children: Int32, acl: [ACL], aversion: Int32) throws {
                let (id, hash) = try batch.acquireACL(acl, in: t)
                let r = NodeRecord(
                    czxid: 0, mzxid: 0, ctime: 0, mtime: 0, pzxid: 0, ephemeralOwner: 0, aclID: id, aclHash: hash,
                    version: 0, cversion: 0, aversion: aversion, numChildren: children, data: [])
                batch.digest &+= try batch.putRecord(NodeKey.key(path), r, path: path, in: t)
                batch.nodeCount += 1
            }
            batch.digest = 0
            batch.nodeCount = 0
            try add("/", children: 1, acl: ACL.openUnsafe, aversion: 0)
            try add("/zookeeper", children: 2, acl: ACL.openUnsafe, aversion: 0)
            try add("/zookeeper/quota", children: 0, acl: ACL.openUnsafe, aversion: 0)
            try add("/zookeeper/config", children: 0, acl: ACL.readUnsafe, aversion: -1)
            try t.put(dbs.meta, key: MetaKey.format, value: Array(KeeperStore.formatVersion.utf8))
            batch.changed = true
        }
        // A new store is durable before anyone relies on it.
        try sync()
    }

    /// Runs `body` with a write batch: every txn it applies lands in one LMDB write
    /// transaction with the last applied zxid and the digest, atomically; when `body` throws,
    /// none of them does. When the map fills, it is doubled (up to `maxMapSize`) and `body`
    /// runs again from the start, so keep `body` free of effects outside the batch (collect
    /// results, act on them after `write` returns).
    public func write<R>(_ body: (WriteBatch) throws -> R) throws -> R {
        try write(initializing: false, body)
    }

    private func write<R>(initializing: Bool, _ body: (WriteBatch) throws -> R) throws -> R {
        precondition(!configuration.readOnly, "write on a store opened read-only")
        return try writeLock.withLock {
            if configuration.durability == .checkpointed && !markerPresent {
                try marker.create()
                markerPresent = true
            }
            return try KeeperStore.growingMapWhenFull(environment, configuration: configuration, directory: directory) {
                defer { commits &+= 1 }
                return try environment.write { txn in
                    let batch: WriteBatch
                    if initializing {
                        batch = try WriteBatch(
                            txn: txn, dbs: dbs, configuration: configuration, directory: directory, fresh: true)
                    } else {
                        batch = try WriteBatch(
                            txn: txn, dbs: dbs, configuration: configuration, directory: directory)
                    }
                    let result = try body(batch)
                    try batch.finish()
                    return result
                }
            }
        }
    }

    /// Applies `entries` in one batch and returns their results (see `WriteBatch.apply`).
    @discardableResult
    public func apply(_ entries: [TxnEntry]) throws -> [TxnResult] {
        try write { batch in try entries.map { try batch.apply($0) } }
    }

    /// Applies one entry in its own batch.
    @discardableResult
    public func apply(_ entry: TxnEntry) throws -> TxnResult {
        try write { batch in try batch.apply(entry) }
    }

    /// Runs `body` with a consistent view of the tree (one LMDB read transaction).
    public func read<R>(_ body: (StoreView) throws -> R) throws -> R {
        try environment.read { txn in
            try body(StoreView(txn: txn, dbs: dbs, directory: directory, maxKeySize: environment.maxKeySize))
        }
    }

    /// The zxid of the last applied txn (replay the log after it).
    public func lastAppliedZxid() throws -> Zxid { try read { try $0.lastAppliedZxid() } }

    /// The maintained digest at the last applied zxid (O(1)).
    public func digest() throws -> TreeDigest { try read { try $0.digest() } }

    /// Recomputes the digest from every node and checks it against the maintained one.
    /// Throws `StoreError.damaged` when they differ; returns the digest otherwise.
    @discardableResult
    public func verifyDigest() throws -> TreeDigest {
        try read { view in
            let kept = try view.digest()
            let computed = try view.recomputeDigest()
            guard kept == computed else {
                throw StoreError.damaged(directory: directory, detail: "maintained \(kept) but recomputed \(computed)")
            }
            return kept
        }
    }

    /// The checkpoint: flushes every batch committed before the call to disk
    /// (`mdb_env_sync`). Writes go on while it flushes (it may run on any thread): once it
    /// returns, `lastAppliedZxid()` as of the call is durable, and if no batch was committed
    /// meanwhile the `unsynced` marker is removed, so the store survives an OS crash as it is.
    public func sync() throws {
        if configuration.readOnly { return }
        let before = writeLock.withLock { commits }
        try environment.sync(force: true)
        afterFlushForTesting?()
        try writeLock.withLock {
            if markerPresent && commits == before {
                try marker.remove()
                markerPresent = false
            }
        }
    }

    /// Streams a compacted, consistent copy of the store to `fileDescriptor` (a file, pipe or
    /// socket) while writes go on (`mdb_env_copyfd2` with `MDB_CP_COMPACT`, from one read
    /// transaction). Saved as `dataFileName` in an empty directory, it opens as a store at
    /// the zxid it was taken at.
    public func snapshot(toFileDescriptor fileDescriptor: Int32) throws {
        try environment.copy(toFileDescriptor: fileDescriptor, compact: true)
    }

    /// Writes a compacted, consistent copy into `directory` (which must exist and be empty):
    /// a store directory of its own.
    public func snapshot(toDirectory directory: String) throws {
        try environment.copy(toDirectory: directory, compact: true)
    }

    /// Map size and usage.
    public func storageInfo() throws -> Environment.Info { try environment.info() }
}
