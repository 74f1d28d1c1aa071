import CLMDB
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed liblmdb call: the C return code, `mdb_strerror`'s text, the call that failed and
/// what it was working on, so an operator can tell what went wrong, where, and what to do.
///
/// Every liblmdb return code in KeeperLMDB goes through `LMDBError.check`; nothing is ignored.
/// Callers act on the code through the predicates (`isMapFull`, ...): a full map is an
/// operating condition (grow the map with `Environment.setMapSize(_:)` and retry the write),
/// never a crash.
public struct LMDBError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The C return code (an errno value or one of liblmdb's `MDB_*` codes).
    public var code: Int32
    /// `mdb_strerror(code)`.
    public var message: String
    /// The liblmdb function that failed, e.g. `mdb_put`.
    public var operation: String
    /// What the call was working on: the environment path, a database name, a key length.
    public var context: String

    public init(code: Int32, operation: String, context: String = "") {
        self.code = code
        self.message = String(cString: mdb_strerror(code))
        self.operation = operation
        self.context = context
    }

    /// The map (the environment's size limit) is full: grow it and retry the write txn.
    public var isMapFull: Bool { code == MDB_MAP_FULL }
    /// Another process grew the map: reopen or call `setMapSize(0)` to adopt the new size.
    public var isMapResized: Bool { code == MDB_MAP_RESIZED }
    /// The reader table is full: raise `maxReaders` or end idle read transactions.
    public var isReadersFull: Bool { code == MDB_READERS_FULL }
    /// A key or value is empty or longer than `Environment.maxKeySize` allows.
    public var isBadValueSize: Bool { code == MDB_BAD_VALSIZE }
    /// The named database does not exist (and `.create` was not asked for).
    public var isNotFound: Bool { code == MDB_NOTFOUND }
    /// The file is not an LMDB environment, or its version does not match liblmdb's.
    public var isInvalidFile: Bool { code == MDB_INVALID || code == MDB_VERSION_MISMATCH }
    /// The file is damaged (a page or meta page failed liblmdb's checks).
    public var isCorrupted: Bool { code == MDB_CORRUPTED || code == MDB_PAGE_NOTFOUND }

    /// What an operator or caller should do about it.
    public var hint: String {
        switch code {
        case MDB_MAP_FULL: "grow the map (Environment.setMapSize) and retry the write transaction"
        case MDB_MAP_RESIZED: "another process grew the map: call setMapSize(0) or reopen the environment"
        case MDB_READERS_FULL: "raise maxReaders or end idle read transactions"
        case MDB_DBS_FULL: "raise maxDatabases"
        case MDB_TXN_FULL: "split the write transaction into smaller ones"
        case MDB_BAD_VALSIZE: "keys must be 1...maxKeySize bytes (values of dupsort databases too)"
        case MDB_CORRUPTED, MDB_PAGE_NOTFOUND: "the file is damaged: rebuild it from a backup or a peer"
        case MDB_INVALID, MDB_VERSION_MISMATCH: "the file is not an LMDB environment of this liblmdb version"
        case ENOSPC: "the disk is full: free space and retry"
        case EACCES, EPERM: "check the permissions of the environment directory"
        case ENOENT: "the environment directory does not exist: create it first"
        default: "see the message; the operation was not carried out"
        }
    }

    public var description: String {
        let what = context.isEmpty ? "" : " (\(context))"
        return "\(operation) failed\(what): \(message) [code \(code)]; \(hint)"
    }

    /// Throws unless `rc` is `MDB_SUCCESS`.
    @inlinable
    static func check(_ rc: Int32, _ operation: String, _ context: @autoclosure () -> String = "")
        throws(LMDBError)
    {
        if rc != 0 { throw LMDBError(code: rc, operation: operation, context: context()) }
    }
}
