import KeeperModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where and how a log file was found damaged: enough for an operator to look at the bytes
/// (`keeperctl log inspect`) and decide, because the log never guesses past a damaged record.
public struct LogCorruption: Hashable, Sendable, CustomStringConvertible {
    /// The segment file's path.
    public var file: String
    /// The byte offset in the file where the damage starts.
    public var offset: Int64
    /// The zxid of the damaged record, when its header was still readable.
    public var zxid: Zxid?
    /// What a sound file holds there.
    public var expected: String
    /// What the file holds there instead.
    public var found: String

    public init(file: String, offset: Int64, zxid: Zxid? = nil, expected: String, found: String) {
        self.file = file
        self.offset = offset
        self.zxid = zxid
        self.expected = expected
        self.found = found
    }

    public var description: String {
        var text = "\(file) at offset \(offset)"
        if let zxid { text += " (zxid \(zxid))" }
        return text + ": expected \(expected), found \(found)"
    }
}

/// The operating errors of the log. Programmer errors (zxids out of order, oversized payloads)
/// are preconditions instead; these are the ones a running server must report and survive.
public enum KeeperLogError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A system call failed. `errno` is the C error (EIO, ENOSPC, ...).
    case io(operation: String, path: String, errno: Int32)
    /// A record or segment header before the tail failed verification; the log refuses to open
    /// rather than drop a record that may have been acknowledged.
    case corruption(LogCorruption)
    /// The directory holds a segment of another database (a different `databaseID`).
    case foreignDatabase(file: String, expected: UInt64, found: UInt64)
    /// The log is closed.
    case closed
    /// A write or sync failed: the records after `lastDurable` were not written and never
    /// will be. Appends are refused until `KeeperLog.resume()` acknowledges that.
    indirect case stalled(lastDurable: Zxid, cause: KeeperLogError)
    /// The log could not restore a consistent file after a failure; it must be reopened (which
    /// runs recovery).
    indirect case failed(cause: KeeperLogError)

    /// True when the root cause is a full device (ENOSPC): the log recovers once space returns.
    public var isNoSpace: Bool {
        switch self {
        case .io(_, _, let code): code == ENOSPC
        case .stalled(_, let cause), .failed(let cause): cause.isNoSpace
        case .corruption, .foreignDatabase, .closed: false
        }
    }

    public var description: String {
        switch self {
        case .io(let operation, let path, let code):
            let reason = String(cString: strerror(code))
            let advice = code == ENOSPC
                ? "free space on the log device, then resume the log"
                : "check the device and the kernel log (dmesg)"
            return "log I/O error: \(operation) \(path) failed: \(reason) (errno \(code)); \(advice)"
        case .corruption(let where_):
            return "log corruption in \(where_); the log will not open past it: inspect it with "
                + "`keeperctl log verify`, then restore this server from a peer or a backup"
        case .foreignDatabase(let file, let expected, let found):
            return "log segment \(file) belongs to database \(found), not \(expected): "
                + "point dataLogDir at this server's own log directory"
        case .closed:
            return "the log is closed"
        case .stalled(let lastDurable, let cause):
            return "log stalled after \(lastDurable): records after it were not written (\(cause)); "
                + "call resume() once the cause is fixed"
        case .failed(let cause):
            return "log failed and must be reopened: \(cause)"
        }
    }
}
