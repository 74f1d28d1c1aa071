import CLMDB

/// A position in a database, for ordered scans (`Transaction.withCursor`). Only valid inside
/// the closure that received it; the buffers it returns are valid until its next move.
public final class Cursor {
    /// Where to move (`MDB_cursor_op`).
    public enum Move {
        case first
        case last
        case next
        case previous
        case current
        /// The first key >= the given bytes.
        case setRange(UnsafeRawBufferPointer)
        /// Exactly the given key.
        case set(UnsafeRawBufferPointer)
        /// The next value of the current key (dupsort).
        case nextDuplicate
        /// The first value of the next key (dupsort).
        case nextKey
    }

    let handle: OpaquePointer
    let transaction: Transaction
    public let database: Database
    var isOpen = true

    init(handle: OpaquePointer, transaction: Transaction, database: Database) {
        self.handle = handle
        self.transaction = transaction
        self.database = database
    }

    /// Moves and returns the entry there, or nil past either end / when the key is absent.
    public func get(_ move: Move) throws(LMDBError) -> (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)? {
        precondition(isOpen, "LMDB cursor used outside its closure")
        transaction.checkUsable()
        var key = MDB_val()
        var data = MDB_val()
        let rc: Int32
        switch move {
        case .first: rc = mdb_cursor_get(handle, &key, &data, MDB_FIRST)
        case .last: rc = mdb_cursor_get(handle, &key, &data, MDB_LAST)
        case .next: rc = mdb_cursor_get(handle, &key, &data, MDB_NEXT)
        case .previous: rc = mdb_cursor_get(handle, &key, &data, MDB_PREV)
        case .current: rc = mdb_cursor_get(handle, &key, &data, MDB_GET_CURRENT)
        case .nextDuplicate: rc = mdb_cursor_get(handle, &key, &data, MDB_NEXT_DUP)
        case .nextKey: rc = mdb_cursor_get(handle, &key, &data, MDB_NEXT_NODUP)
        case .setRange(let bytes):
            key = MDB_val(mv_size: bytes.count, mv_data: UnsafeMutableRawPointer(mutating: bytes.baseAddress))
            rc = mdb_cursor_get(handle, &key, &data, MDB_SET_RANGE)
        case .set(let bytes):
            key = MDB_val(mv_size: bytes.count, mv_data: UnsafeMutableRawPointer(mutating: bytes.baseAddress))
            rc = mdb_cursor_get(handle, &key, &data, MDB_SET_KEY)
        }
        if rc == MDB_NOTFOUND { return nil }
        try LMDBError.check(rc, "mdb_cursor_get", database.label)
        return (key.buffer, data.buffer)
    }

    /// The number of values of the current key (dupsort databases).
    public func duplicateCount() throws(LMDBError) -> Int {
        precondition(isOpen, "LMDB cursor used outside its closure")
        var n = 0
        try LMDBError.check(mdb_cursor_count(handle, &n), "mdb_cursor_count", database.label)
        return n
    }

    /// Deletes the entry at the cursor (write transactions only).
    public func deleteCurrent() throws(LMDBError) {
        precondition(isOpen, "LMDB cursor used outside its closure")
        precondition(transaction is WriteTransaction, "deleteCurrent in a read transaction")
        transaction.checkUsable()
        try LMDBError.check(mdb_cursor_del(handle, 0), "mdb_cursor_del", database.label)
    }
}
