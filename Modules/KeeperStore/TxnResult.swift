import KeeperModel

/// A change to the tree, for watch triggering (ZooKeeper's DataTree triggers): a create
/// fires `created(path)` and `childrenChanged(parent)`, a delete `deleted(path)` and
/// `childrenChanged(parent)`, a setData `dataChanged(path)`; setACL fires nothing.
public enum Change: Hashable, Sendable {
    case created(String)
    case deleted(String)
    case dataChanged(String)
    case childrenChanged(String)
}

/// What applying one txn did. A txn that cannot apply is not a Swift error: it consumes its
/// zxid and reports ZooKeeper's code in `error`, as ZooKeeper's `ProcessTxnResult` does.
public struct TxnResult: Hashable, Sendable {
    public var zxid: Zxid
    /// The txn's type; `.error` for error txns and for every op of a failed multi.
    public var type: OpCode
    /// `.ok`, or why nothing changed (for a multi: the first failing op's code).
    public var error: KeeperErrorCode
    /// The node the txn acted on (for creates: the name created).
    public var path: String?
    /// The node's Stat after a create, setData or setACL.
    public var stat: Stat?
    /// What changed, in order (for a multi: every op's changes; empty if it failed).
    public var changes: [Change]
    /// Per-op results of a multi (empty for other txns). When a multi fails, the ops before
    /// the failing one report `.ok`, the failing op its code, the ops after it
    /// `.runtimeInconsistency`, and nothing is applied.
    public var multi: [TxnResult]

    public init(
        zxid: Zxid, type: OpCode, error: KeeperErrorCode = .ok, path: String? = nil, stat: Stat? = nil,
        changes: [Change] = [], multi: [TxnResult] = []
    ) {
        self.zxid = zxid
        self.type = type
        self.error = error
        self.path = path
        self.stat = stat
        self.changes = changes
        self.multi = multi
    }

    public var succeeded: Bool { error == .ok }
}
