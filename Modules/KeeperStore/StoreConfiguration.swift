import KeeperModel

/// How the store trades durability for speed. The write-ahead log is the source of truth
/// and the store a materialized view of it (recovery = open the store, replay the log after
/// `lastAppliedZxid`), so the store need not sync on every commit.
public enum StoreDurability: Hashable, Sendable {
    /// `MDB_NOSYNC`: commits reach the OS page cache only; `KeeperStore.sync()` is the
    /// checkpoint (call it before purging log segments the store no longer needs).
    /// A process crash (SIGKILL) loses nothing committed. An OS crash may lose or tear
    /// everything since the last `sync()`: the store keeps an `unsynced` marker file (with
    /// the boot id) while such writes are pending, and refuses to open after an OS restart
    /// with `StoreError.unsyncedAtSystemCrash`, so a torn store is detected, never served.
    case checkpointed
    /// `MDB_NOMETASYNC`: data is synced on each commit, the meta page is not: an OS crash may
    /// undo the last commits but never tears the file. One fdatasync per write batch.
    case syncData
    /// liblmdb's default: every commit is durable when `write` returns (two fsyncs a batch).
    case syncEachCommit
}

/// How to open a store. Every limit is named here.
public struct StoreConfiguration: Hashable, Sendable {
    public var durability: StoreDurability
    /// The largest znode data accepted (`jute.maxbuffer`); larger data is refused with
    /// `.badArguments`.
    public var maxDataLength: Int
    /// The map size the store opens with: address space, not memory or disk (liblmdb maps
    /// the file shared and read-only, and the file grows only as data is written). Large by
    /// default (16 GiB), because growing the map waits until no read transaction of the
    /// process is open.
    public var initialMapSize: Int
    /// The map size the store may grow to when it fills (doubling each time); past it,
    /// `StoreError.mapFull`.
    public var maxMapSize: Int
    /// Concurrent read transactions (liblmdb reader slots).
    public var maxReaders: UInt32
    /// Open without writing anything (`MDB_RDONLY`): for tools that inspect or verify a
    /// store, even one a running server writes. `write` is then a programmer error.
    public var readOnly: Bool = false

    public init(
        durability: StoreDurability = .checkpointed, maxDataLength: Int = Limits.default.maxBuffer,
        initialMapSize: Int = 16 << 30, maxMapSize: Int = 1 << 40, maxReaders: UInt32 = 256
    ) {
        self.durability = durability
        self.maxDataLength = maxDataLength
        self.initialMapSize = initialMapSize
        self.maxMapSize = maxMapSize
        self.maxReaders = maxReaders
    }
}
