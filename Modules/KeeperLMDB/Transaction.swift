import CLMDB

/// Turns bytes into the `MDB_val` liblmdb reads (it never writes through a key or value it
/// is given, so the mutable cast is sound).
@inlinable
func withValue<R>(_ bytes: UnsafeRawBufferPointer, _ body: (inout MDB_val) throws -> R) rethrows -> R {
    var v = MDB_val(mv_size: bytes.count, mv_data: UnsafeMutableRawPointer(mutating: bytes.baseAddress))
    return try body(&v)
}

extension MDB_val {
    /// The bytes liblmdb returned; valid until the transaction ends or the next write.
    var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: mv_data, count: mv_size) }
}

/// What read and write transactions share: lookups, cursors and range scans.
///
/// A transaction is only valid inside the closure that received it (`Environment.read`,
/// `Environment.write`, `WriteTransaction.nested`); using it afterwards, or from another
/// thread, is a programmer error. Buffers handed to closures (`withValue`, scans) point into
/// the map and are valid only during that closure call.
public class Transaction {
    let handle: OpaquePointer
    public let environment: Environment
    var isActive = true
    /// A nested child is running: the parent must not be used until it ends.
    var hasActiveChild = false

    init(handle: OpaquePointer, environment: Environment) {
        self.handle = handle
        self.environment = environment
    }

    func checkUsable() {
        precondition(isActive, "LMDB transaction used outside its closure")
        precondition(!hasActiveChild, "LMDB parent transaction used while a nested transaction runs")
    }

    /// Opens a database in this transaction (see `Environment.openDatabase`).
    public func openDatabase(_ name: String?, flags: Database.Flags = []) throws(LMDBError) -> Database {
        checkUsable()
        var dbi: MDB_dbi = 0
        try LMDBError.check(mdb_dbi_open(handle, name, flags.rawValue, &dbi), "mdb_dbi_open", name ?? "<main>")
        return Database(handle: dbi, name: name)
    }

    /// Calls `body` with the value stored under `key` (nil if absent). The buffer points into
    /// the map: copy what you keep.
    public func withValue<R>(
        _ db: Database, key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) throws -> R
    ) throws -> R {
        checkUsable()
        var data = MDB_val()
        let rc = KeeperLMDB.withValue(key) { k in mdb_get(handle, db.handle, &k, &data) }
        if rc == MDB_NOTFOUND { return try body(nil) }
        try LMDBError.check(rc, "mdb_get", "\(db.label), key of \(key.count) bytes")
        return try body(data.buffer)
    }

    /// The value stored under `key`, copied, or nil.
    public func get(_ db: Database, key: [UInt8]) throws -> [UInt8]? {
        try key.withUnsafeBytes { k in try withValue(db, key: k) { v in v.map { Array($0) } } }
    }

    /// Whether `key` is present.
    public func contains(_ db: Database, key: [UInt8]) throws -> Bool {
        try key.withUnsafeBytes { k in try withValue(db, key: k) { $0 != nil } }
    }

    /// Runs `body` with a cursor on `db`, closed when `body` ends.
    public func withCursor<R>(_ db: Database, _ body: (Cursor) throws -> R) throws -> R {
        checkUsable()
        var cursor: OpaquePointer?
        try LMDBError.check(mdb_cursor_open(handle, db.handle, &cursor), "mdb_cursor_open", db.label)
        guard let cursor else { preconditionFailure("mdb_cursor_open returned no cursor") }
        let c = Cursor(handle: cursor, transaction: self, database: db)
        defer {
            c.isOpen = false
            mdb_cursor_close(cursor)
        }
        return try body(c)
    }

    /// Visits, in key order, every entry whose key starts with `prefix` (a contiguous key
    /// range: one seek, then `next` until the prefix ends). `body` returns false to stop.
    /// For dupsort databases every value of every key is visited.
    public func forEach(
        _ db: Database, prefix: UnsafeRawBufferPointer,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try withCursor(db) { cursor in
            var entry = prefix.isEmpty ? try cursor.get(.first) : try cursor.get(.setRange(prefix))
            while let (k, v) = entry {
                guard k.starts(with: prefix) else { return }
                guard try body(k, v) else { return }
                entry = try cursor.get(.next)
            }
        }
    }

    /// `forEach(_:prefix:_:)` with an array prefix.
    public func forEach(
        _ db: Database, prefix: [UInt8],
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try prefix.withUnsafeBytes { p in try forEach(db, prefix: p, body) }
    }

    /// Visits the entries with `lower <= key < upper` (upper nil: to the end) in key order.
    public func forEach(
        _ db: Database, from lower: [UInt8], to upper: [UInt8]?,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try withCursor(db) { cursor in
            var entry = try lower.withUnsafeBytes { l in
                l.isEmpty ? try cursor.get(.first) : try cursor.get(.setRange(l))
            }
            while let (k, v) = entry {
                if let upper, !k.lexicographicallyPrecedes(upper) { return }
                guard try body(k, v) else { return }
                entry = try cursor.get(.next)
            }
        }
    }

    /// Entry count and shape of `db`.
    public func statistics(_ db: Database) throws(LMDBError) -> DatabaseStatistics {
        checkUsable()
        var s = MDB_stat()
        try LMDBError.check(mdb_stat(handle, db.handle, &s), "mdb_stat", db.label)
        return DatabaseStatistics(
            entries: s.ms_entries, depth: Int(s.ms_depth), branchPages: s.ms_branch_pages,
            leafPages: s.ms_leaf_pages, overflowPages: s.ms_overflow_pages, pageSize: Int(s.ms_psize))
    }
}

/// A read-only snapshot of the environment (`MDB_RDONLY`). See `Environment.read`.
public final class ReadTransaction: Transaction {
    init(environment: Environment) throws(LMDBError) {
        var txn: OpaquePointer?
        try LMDBError.check(
            mdb_txn_begin(environment.handle, nil, UInt32(MDB_RDONLY), &txn), "mdb_txn_begin(read)",
            environment.path)
        guard let txn else { preconditionFailure("mdb_txn_begin returned no transaction") }
        super.init(handle: txn, environment: environment)
    }

    func end() {
        isActive = false
        // mdb_txn_abort returns nothing: ending a read transaction cannot fail.
        mdb_txn_abort(handle)
    }

    /// Ends the transaction keeping the database handles it opened.
    func commit() throws(LMDBError) {
        isActive = false
        try LMDBError.check(mdb_txn_commit(handle), "mdb_txn_commit(read)", environment.path)
    }
}

/// The write transaction (or a nested child of it). See `Environment.write`.
public final class WriteTransaction: Transaction {
    weak var parent: WriteTransaction?

    init(environment: Environment, parent: WriteTransaction?) throws(LMDBError) {
        var txn: OpaquePointer?
        try LMDBError.check(
            mdb_txn_begin(environment.handle, parent?.handle, 0, &txn), "mdb_txn_begin(write)", environment.path)
        guard let txn else { preconditionFailure("mdb_txn_begin returned no transaction") }
        self.parent = parent
        super.init(handle: txn, environment: environment)
    }

    func commit() throws(LMDBError) {
        checkUsable()
        isActive = false
        // On failure liblmdb has already freed the transaction (mdb_txn_commit aborts it).
        try LMDBError.check(mdb_txn_commit(handle), "mdb_txn_commit", environment.path)
    }

    func abort() {
        precondition(isActive, "LMDB transaction aborted twice")
        isActive = false
        mdb_txn_abort(handle)
    }

    /// Stores `value` under `key`, replacing an existing value (for dupsort databases: adds
    /// `value` to the key's set). Throws `isMapFull` when the map is full: the whole write
    /// transaction must then be abandoned (throw out of the `write` closure), the map grown,
    /// and the transaction run again.
    public func put(_ db: Database, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(LMDBError) {
        checkUsable()
        let rc = KeeperLMDB.withValue(key) { k in
            KeeperLMDB.withValue(value) { v in mdb_put(handle, db.handle, &k, &v, 0) }
        }
        try LMDBError.check(rc, "mdb_put", "\(db.label), key \(key.count) bytes, value \(value.count) bytes")
    }

    /// `put` with arrays.
    public func put(_ db: Database, key: [UInt8], value: [UInt8]) throws {
        try key.withUnsafeBytes { k in try value.withUnsafeBytes { v in try put(db, key: k, value: v) } }
    }

    /// Reserves `count` bytes under `key` and lets `body` fill them in place (`MDB_RESERVE`):
    /// one copy less for large values. Not for dupsort databases.
    public func put(
        _ db: Database, key: UnsafeRawBufferPointer, reservingCount count: Int,
        _ body: (UnsafeMutableRawBufferPointer) throws -> Void
    ) throws {
        checkUsable()
        var data = MDB_val(mv_size: count, mv_data: nil)
        let rc = KeeperLMDB.withValue(key) { k in mdb_put(handle, db.handle, &k, &data, UInt32(MDB_RESERVE)) }
        try LMDBError.check(rc, "mdb_put(reserve)", "\(db.label), key \(key.count) bytes, value \(count) bytes")
        try body(UnsafeMutableRawBufferPointer(start: data.mv_data, count: count))
    }

    /// Deletes `key` (for dupsort databases: all its values). Returns false if it was absent.
    @discardableResult
    public func delete(_ db: Database, key: UnsafeRawBufferPointer) throws(LMDBError) -> Bool {
        checkUsable()
        let rc = KeeperLMDB.withValue(key) { k in mdb_del(handle, db.handle, &k, nil) }
        if rc == MDB_NOTFOUND { return false }
        try LMDBError.check(rc, "mdb_del", "\(db.label), key \(key.count) bytes")
        return true
    }

    /// `delete` with an array key.
    @discardableResult
    public func delete(_ db: Database, key: [UInt8]) throws -> Bool {
        try key.withUnsafeBytes { k in try delete(db, key: k) }
    }

    /// Deletes one value of a dupsort key. Returns false if that pair was absent.
    @discardableResult
    public func delete(_ db: Database, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(LMDBError)
        -> Bool
    {
        checkUsable()
        let rc = KeeperLMDB.withValue(key) { k in
            KeeperLMDB.withValue(value) { v in mdb_del(handle, db.handle, &k, &v) }
        }
        if rc == MDB_NOTFOUND { return false }
        try LMDBError.check(rc, "mdb_del(dup)", "\(db.label), key \(key.count) bytes")
        return true
    }

    /// Empties `db` (`mdb_drop` without deleting the database itself).
    public func removeAll(_ db: Database) throws(LMDBError) {
        checkUsable()
        try LMDBError.check(mdb_drop(handle, db.handle, 0), "mdb_drop", db.label)
    }

    /// Runs `body` in a nested write transaction: its changes join this transaction when
    /// `body` returns and are undone alone when it throws (this transaction goes on).
    /// Not available with `.writeMap`.
    public func nested<R>(_ body: (WriteTransaction) throws -> R) throws -> R {
        checkUsable()
        let child = try WriteTransaction(environment: environment, parent: self)
        hasActiveChild = true
        defer { hasActiveChild = false }
        let result: R
        do {
            result = try body(child)
        } catch {
            child.abort()
            throw error
        }
        try child.commit()
        return result
    }
}
