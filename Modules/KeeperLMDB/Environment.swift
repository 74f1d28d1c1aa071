import CLMDB

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An LMDB environment: one memory-mapped file holding named databases, opened once per
/// process and shared by every thread.
///
/// Transactions are scoped to closures (`read`, `write`): they commit when the closure
/// returns and abort when it throws, so no transaction outlives its scope or leaks a reader
/// slot. Readers never block the writer, and there is one writer at a time (liblmdb's own
/// lock serializes `write` calls across threads).
///
/// ```swift
/// let env = try Environment(path: dir, configuration: .init(mapSize: 1 << 30, maxDatabases: 4))
/// let db = try env.openDatabase("names", flags: .create)
/// try env.write { txn in try txn.put(db, key: Array("k".utf8), value: [1, 2, 3]) }
/// let v = try env.read { txn in try txn.get(db, key: Array("k".utf8)) }
/// ```
///
/// - Important: a read may be opened inside another transaction's closure (the environment
///   uses `MDB_NOTLS` by default), but a write inside a write on the same thread deadlocks in
///   liblmdb (use `WriteTransaction.nested` for a child write), and `setMapSize(_:)` from
///   inside a transaction is a programmer error (it crashes rather than wait forever).
public final class Environment: @unchecked Sendable {
    // Sendable proof: `handle` is set once in init and freed in deinit; liblmdb documents the
    // MDB_env functions used from several threads (txn begin, copy, sync, info) as thread-safe.
    // The one exception, mdb_env_set_mapsize, needs no live transaction in this process: every
    // transaction passes through `gate`, and setMapSize runs only inside `gate.exclusive`.
    // `isOpen`'s only writer is `close()`, documented as callable only when no other thread
    // uses the environment.

    /// Flags of `mdb_env_open`.
    public struct Flags: OptionSet, Hashable, Sendable {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// `MDB_NOSUBDIR`: `path` names the data file itself, not a directory.
        public static let noSubdirectory = Flags(rawValue: UInt32(MDB_NOSUBDIR))
        /// `MDB_RDONLY`: open read-only; write transactions fail.
        public static let readOnly = Flags(rawValue: UInt32(MDB_RDONLY))
        /// `MDB_NOSYNC`: do not fsync on commit. A process crash loses nothing that was
        /// committed; an OS crash can lose or corrupt everything since the last `sync`.
        public static let noSync = Flags(rawValue: UInt32(MDB_NOSYNC))
        /// `MDB_NOMETASYNC`: fsync data on commit but not the meta page: an OS crash may undo
        /// the last committed transaction but never corrupts the file.
        public static let noMetaSync = Flags(rawValue: UInt32(MDB_NOMETASYNC))
        /// `MDB_WRITEMAP`: write through the map (no nested transactions with this flag).
        public static let writeMap = Flags(rawValue: UInt32(MDB_WRITEMAP))
        /// `MDB_MAPASYNC`: with `writeMap`, flush asynchronously.
        public static let mapAsync = Flags(rawValue: UInt32(MDB_MAPASYNC))
        /// `MDB_NOTLS`: reader slots belong to transactions, not threads (needed when read
        /// transactions run on many threads or thread pools).
        public static let noThreadLocalStorage = Flags(rawValue: UInt32(MDB_NOTLS))
        /// `MDB_NORDAHEAD`: no OS read-ahead (for databases larger than RAM).
        public static let noReadAhead = Flags(rawValue: UInt32(MDB_NORDAHEAD))
        /// `MDB_NOMEMINIT`: do not zero malloc'd pages before writing them.
        public static let noMemoryInit = Flags(rawValue: UInt32(MDB_NOMEMINIT))
    }

    /// How to open an environment. Every limit is named here.
    public struct Configuration: Hashable, Sendable {
        /// The map size in bytes: the largest the file may grow before writes fail with
        /// `isMapFull`. It is address space, not memory; round to the OS page size.
        public var mapSize: Int
        /// The most concurrent read transactions (liblmdb's default is 126).
        public var maxReaders: UInt32
        /// The most named databases (`mdb_env_set_maxdbs`).
        public var maxDatabases: UInt32
        public var flags: Flags
        /// Permission bits of the files liblmdb creates.
        public var fileMode: UInt32

        public init(
            mapSize: Int = 1 << 30, maxReaders: UInt32 = 126, maxDatabases: UInt32 = 16,
            flags: Flags = [.noThreadLocalStorage], fileMode: UInt32 = 0o640
        ) {
            self.mapSize = mapSize
            self.maxReaders = maxReaders
            self.maxDatabases = maxDatabases
            self.flags = flags
            self.fileMode = fileMode
        }
    }

    /// What `mdb_env_info` and `mdb_env_stat` report.
    public struct Info: Hashable, Sendable {
        public var mapSize: Int
        public var lastPageNumber: Int
        public var lastTransactionID: Int
        public var maxReaders: Int
        public var readersInUse: Int
        public var pageSize: Int
        /// Bytes of the map in use: (last page + 1) × page size.
        public var usedBytes: Int { (lastPageNumber + 1) * pageSize }
    }

    let handle: OpaquePointer
    /// The path the environment was opened at.
    public let path: String
    public let configuration: Configuration
    let gate = TransactionGate()
    private var isOpen = true

    /// Opens (creating if needed) the environment at `path`, a directory that must exist
    /// (or the data file itself with `.noSubdirectory`).
    public init(path: String, configuration: Configuration = Configuration()) throws(LMDBError) {
        var env: OpaquePointer?
        try LMDBError.check(mdb_env_create(&env), "mdb_env_create", path)
        guard let env else { throw LMDBError(code: ENOMEM, operation: "mdb_env_create", context: path) }
        do {
            try LMDBError.check(mdb_env_set_mapsize(env, configuration.mapSize), "mdb_env_set_mapsize",
                "\(configuration.mapSize) bytes")
            try LMDBError.check(mdb_env_set_maxreaders(env, configuration.maxReaders), "mdb_env_set_maxreaders")
            try LMDBError.check(mdb_env_set_maxdbs(env, configuration.maxDatabases), "mdb_env_set_maxdbs")
            try LMDBError.check(
                mdb_env_open(env, path, configuration.flags.rawValue, mdb_mode_t(configuration.fileMode)),
                "mdb_env_open", path)
        } catch {
            mdb_env_close(env)
            throw error
        }
        self.handle = env
        self.path = path
        self.configuration = configuration
    }

    deinit {
        if isOpen { mdb_env_close(handle) }
    }

    /// Closes the environment now rather than at deinit. Call it only when no other thread
    /// uses the environment; any use afterwards is a programmer error.
    public func close() {
        precondition(isOpen, "Environment.close called twice")
        isOpen = false
        mdb_env_close(handle)
    }

    /// The longest key (and dupsort value) liblmdb accepts, in bytes (511 by default).
    public var maxKeySize: Int { Int(mdb_env_get_maxkeysize(handle)) }

    /// Runs `body` in a read transaction: a consistent snapshot as of its start, which never
    /// blocks the writer. The transaction ends when `body` returns or throws.
    public func read<R>(_ body: (ReadTransaction) throws -> R) throws -> R {
        precondition(isOpen, "Environment used after close")
        lockShared()
        defer { unlock() }
        let txn = try ReadTransaction(environment: self)
        defer { txn.end() }
        return try body(txn)
    }

    /// Runs `body` in the write transaction: it commits when `body` returns and aborts when
    /// `body` throws or the commit fails (the error is rethrown; nothing was written).
    /// `isMapFull` errors leave the environment usable: grow the map and run `body` again.
    public func write<R>(_ body: (WriteTransaction) throws -> R) throws -> R {
        precondition(isOpen, "Environment used after close")
        precondition(!configuration.flags.contains(.readOnly), "write transaction on a read-only environment")
        lockShared()
        defer { unlock() }
        let txn = try WriteTransaction(environment: self, parent: nil)
        let result: R
        do {
            result = try body(txn)
        } catch {
            txn.abort()
            throw error
        }
        try txn.commit()
        return result
    }

    /// Opens (with `.create`: creates) the named database `name` (nil: the unnamed main one).
    /// Handles are valid for the environment's lifetime and shared by all transactions.
    public func openDatabase(_ name: String?, flags: Database.Flags = []) throws -> Database {
        precondition(
            !flags.contains(.create) || !configuration.flags.contains(.readOnly),
            "cannot create a database in a read-only environment")
        return try openingDatabases { txn in try txn.openDatabase(name, flags: flags) }
    }

    /// Runs `body` in a transaction for opening databases whose handles outlive it: the
    /// write transaction, or on a read-only environment a read transaction that is
    /// committed (liblmdb closes handles opened in an aborted transaction).
    public func openingDatabases<R>(_ body: (Transaction) throws -> R) throws -> R {
        guard configuration.flags.contains(.readOnly) else { return try write(body) }
        precondition(isOpen, "Environment used after close")
        lockShared()
        defer { unlock() }
        let txn = try ReadTransaction(environment: self)
        let result: R
        do {
            result = try body(txn)
        } catch {
            txn.end()
            throw error
        }
        try txn.commit()
        return result
    }

    /// Flushes the data buffers to disk (`mdb_env_sync`). With `force`, even under
    /// `.noSync`/`.mapAsync`: this is the checkpoint of an environment opened without
    /// per-commit syncs.
    public func sync(force: Bool = true) throws(LMDBError) {
        precondition(isOpen, "Environment used after close")
        try LMDBError.check(mdb_env_sync(handle, force ? 1 : 0), "mdb_env_sync", path)
    }

    /// Changes the map size (grow after `isMapFull`; 0 adopts a size another process set).
    /// Waits until no transaction of this process is open, holding new ones back meanwhile;
    /// calling it from inside a transaction is a programmer error.
    public func setMapSize(_ bytes: Int) throws(LMDBError) {
        precondition(isOpen, "Environment used after close")
        try gate.exclusive { () throws(LMDBError) in
            try LMDBError.check(mdb_env_set_mapsize(handle, bytes), "mdb_env_set_mapsize", "\(bytes) bytes at \(path)")
        }
    }

    /// The current map size, usage and reader count.
    public func info() throws(LMDBError) -> Info {
        var i = MDB_envinfo()
        try LMDBError.check(mdb_env_info(handle, &i), "mdb_env_info", path)
        var s = MDB_stat()
        try LMDBError.check(mdb_env_stat(handle, &s), "mdb_env_stat", path)
        return Info(
            mapSize: i.me_mapsize, lastPageNumber: i.me_last_pgno, lastTransactionID: i.me_last_txnid,
            maxReaders: Int(i.me_maxreaders), readersInUse: Int(i.me_numreaders), pageSize: Int(s.ms_psize))
    }

    /// Clears reader slots left by dead processes (`mdb_reader_check`); returns how many.
    @discardableResult
    public func clearStaleReaders() throws(LMDBError) -> Int {
        var dead: Int32 = 0
        try LMDBError.check(mdb_reader_check(handle, &dead), "mdb_reader_check", path)
        return Int(dead)
    }

    /// Writes a consistent copy of the environment to `fileDescriptor` (a file or a pipe)
    /// while writers continue: liblmdb copies from one read transaction. With `compact`
    /// (`MDB_CP_COMPACT`) free pages are omitted and pages renumbered. The copy is a valid
    /// data file: open it with `.noSubdirectory`, or as `data.mdb` in a directory.
    public func copy(toFileDescriptor fileDescriptor: Int32, compact: Bool = true) throws(LMDBError) {
        precondition(isOpen, "Environment used after close")
        lockShared()
        defer { unlock() }
        try LMDBError.check(
            mdb_env_copyfd2(handle, fileDescriptor, compact ? UInt32(MDB_CP_COMPACT) : 0), "mdb_env_copyfd2",
            "copy of \(path) to fd \(fileDescriptor)")
    }

    /// Writes a consistent copy into `directory`, which must exist and be empty (`data.mdb`).
    public func copy(toDirectory directory: String, compact: Bool = true) throws(LMDBError) {
        precondition(isOpen, "Environment used after close")
        lockShared()
        defer { unlock() }
        try LMDBError.check(
            mdb_env_copy2(handle, directory, compact ? UInt32(MDB_CP_COMPACT) : 0), "mdb_env_copy2",
            "copy of \(path) to \(directory)")
    }

    func lockShared() { gate.enter() }

    func unlock() { gate.leave() }
}
