import CLMDB

/// A handle to a named database inside an `Environment` (`MDB_dbi`). Valid for the
/// environment's lifetime; cheap to copy and share between threads.
public struct Database: Hashable, Sendable {
    /// Flags of `mdb_dbi_open`.
    public struct Flags: OptionSet, Hashable, Sendable {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// `MDB_CREATE`: create the database if it does not exist.
        public static let create = Flags(rawValue: UInt32(MDB_CREATE))
        /// `MDB_DUPSORT`: a key may hold several sorted values (each at most `maxKeySize`).
        public static let duplicateSort = Flags(rawValue: UInt32(MDB_DUPSORT))
        /// `MDB_REVERSEKEY`: compare keys from their last byte.
        public static let reverseKey = Flags(rawValue: UInt32(MDB_REVERSEKEY))
        /// `MDB_INTEGERKEY`: keys are native unsigned ints of one size.
        public static let integerKey = Flags(rawValue: UInt32(MDB_INTEGERKEY))
        /// `MDB_DUPFIXED`: with `duplicateSort`, all values of a key have one size.
        public static let duplicateFixed = Flags(rawValue: UInt32(MDB_DUPFIXED))
    }

    /// The liblmdb handle.
    public let handle: MDB_dbi
    /// The name it was opened with (nil: the main database), for error messages.
    public let name: String?

    init(handle: MDB_dbi, name: String?) {
        self.handle = handle
        self.name = name
    }

    var label: String { name ?? "<main>" }
}

/// Entry counts and tree shape of a database (`mdb_stat`).
public struct DatabaseStatistics: Hashable, Sendable {
    public var entries: Int
    public var depth: Int
    public var branchPages: Int
    public var leafPages: Int
    public var overflowPages: Int
    public var pageSize: Int
}
