import KeeperLMDB
import KeeperModel

/// Operating errors of the store (ZooKeeper result codes are not among them: they travel
/// in `TxnResult.error`). liblmdb failures surface as `KeeperLMDB.LMDBError`.
public enum StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A txn's zxid is not above the store's last applied zxid. Replay starts after
    /// `lastApplied`; skip entries at or below it.
    case zxidNotAfterLastApplied(zxid: Zxid, lastApplied: Zxid)
    /// The map reached `StoreConfiguration.maxMapSize` and the batch could not be written.
    /// Raise maxMapSize (or free disk) and retry the batch.
    case mapFull(directory: String, mapSize: Int, maxMapSize: Int)
    /// The OS stopped (crash, power loss, reboot) while writes made since the last `sync()`
    /// were pending under `.checkpointed` durability: the file may be torn. Rebuild the
    /// store from a snapshot or a peer, then replay the log.
    case unsyncedAtSystemCrash(directory: String)
    /// The directory holds something that is not a store of this format.
    case incompatibleFormat(directory: String, found: String)
    /// A record failed its checks after reading: the store is damaged; rebuild it.
    case damaged(directory: String, detail: String)
    /// A file-system call failed.
    case io(operation: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case .zxidNotAfterLastApplied(let zxid, let last):
            "txn \(zxid) is not after the store's last applied zxid \(last): replay only the log after it"
        case .mapFull(let dir, let size, let max):
            "store \(dir) is full: map of \(size) bytes reached maxMapSize \(max); raise maxMapSize and retry"
        case .unsyncedAtSystemCrash(let dir):
            "store \(dir) had unsynced writes when the OS stopped: it may be torn; rebuild it from a snapshot or peer and replay the log"
        case .incompatibleFormat(let dir, let found):
            "\(dir) is not a SwiftKeeper store of format \(KeeperStore.formatVersion) (found \(found))"
        case .damaged(let dir, let detail):
            "store \(dir) is damaged (\(detail)): rebuild it from a snapshot or peer"
        case .io(let op, let path, let errno):
            "\(op) \(path) failed: errno \(errno)"
        }
    }
}
