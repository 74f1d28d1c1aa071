import KeeperModel

/// The operating errors of backup, restore, verify, export and import. Each says what went
/// wrong, where (file and byte offset for damaged backup files), and what to do.
public enum BackupError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A system call failed.
    case io(operation: String, path: String, errno: Int32)
    /// A backup file's bytes fail their checks at `offset` (a frame's CRC32, a bad header,
    /// zlib refusing the data, a record that does not decode).
    case corrupt(file: String, offset: Int64, detail: String)
    /// A backup file ends at `offset`, before the end its format or manifest promises.
    case truncated(file: String, offset: Int64, detail: String)
    /// A manifest is missing, unreadable, or contradicts its files or the chain.
    case badManifest(file: String, detail: String)
    /// The incremental chain has a hole: no backup or log holds the txns after `after` up to
    /// and including `through` (nil: up to the next record, whatever its zxid).
    case gap(after: Zxid, through: Zxid?, detail: String)
    /// A server (or another tool) holds the store open: these commands work on stopped data
    /// directories only.
    case inUse(path: String, pid: Int32)
    /// The target must be empty (restore) or hold a store (backup, export, import).
    case badDataDirectory(path: String, detail: String)
    /// The requested point in time is not covered by the backups.
    case targetNotCovered(detail: String)
    /// The restored tree's digest differs from the one the backup recorded.
    case digestMismatch(at: Zxid, expected: String, found: String)
    /// The data directory's files disagree (database ids, a damaged log, a store the log does
    /// not reach).
    case inconsistentSource(detail: String)
    /// An export file line is malformed or an import would clash with the tree.
    case badExport(file: String, line: Int, detail: String)
    /// A txn of an import failed to apply.
    case importRefused(path: String, code: KeeperErrorCode)
    /// The admin server could not be reached, or answered something that is not what the
    /// online backup protocol promises.
    case badServer(url: String, detail: String)
    /// The admin server refused the request (`status` is its HTTP status: 401 no or wrong
    /// credentials, 403 not authorized, 410 the log no longer holds the txns asked for).
    case refused(url: String, status: Int, message: String)

    public var description: String {
        switch self {
        case .io(let op, let path, let code):
            return "\(op) \(path) failed: errno \(code)"
        case .corrupt(let file, let offset, let detail):
            return "backup file \(file) is corrupt at offset \(offset): \(detail); restore from another backup copy"
        case .truncated(let file, let offset, let detail):
            return "backup file \(file) is truncated at offset \(offset): \(detail); restore from another backup copy"
        case .badManifest(let file, let detail):
            return "backup manifest \(file): \(detail)"
        case .gap(let after, let through, let detail):
            let range = through.map { "after \(after) through \($0)" } ?? "after \(after)"
            return "gap in the backup chain: the txns \(range) are missing (\(detail)); take a full backup"
        case .inUse(let path, let pid):
            return "\(path) is held open by process \(pid) (a running server?): stop it first, "
                + "or back up the running server through its admin server (keeperctl backup full --server http://host:port)"
        case .badDataDirectory(let path, let detail):
            return "data directory \(path): \(detail)"
        case .targetNotCovered(let detail):
            return "cannot restore to that point: \(detail)"
        case .digestMismatch(let zxid, let expected, let found):
            return "restored tree at \(zxid) has \(found), but the backup recorded \(expected): the backup or this program is wrong; nothing was kept"
        case .inconsistentSource(let detail):
            return "the data directory is inconsistent: \(detail)"
        case .badExport(let file, let line, let detail):
            return "export \(file) line \(line): \(detail)"
        case .importRefused(let path, let code):
            return "import of \(path) failed with \(code); nothing was imported"
        case .badServer(let url, let detail):
            return "admin server \(url): \(detail)"
        case .refused(let url, let status, let message):
            let hint: String
            switch status {
            case 401: hint = "give --auth user:password of a user with ALL permission on / (or the super user)"
            case 403: hint = "that user lacks ALL permission on /: use the super user or change the root ACL"
            case 404: hint = "is this a SwiftKeeper server with online backups?"
            case 410: hint = "the server purged those txns: take a full backup"
            case 429: hint = "another backup is running on the server: try again when it ends"
            default: hint = "see the server's log"
            }
            return "admin server \(url) refused with HTTP \(status): \(message); \(hint)"
        }
    }
}
