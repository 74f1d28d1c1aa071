/// The txn records ZooKeeper writes to its log and replicates (zookeeper.jute, module
/// `org.apache.zookeeper.txn`). Prep turns a request into a txn with everything resolved (the
/// sequential name, the new version, the parent's new cversion), so applying a txn is
/// deterministic on every replica.

/// `TxnHeader{long clientId, int cxid, long zxid, long time, int type}`.
public struct TxnHeader: Hashable, Sendable {
    public var clientID: SessionID
    public var cxid: Int32
    public var zxid: Zxid
    /// Milliseconds since the Unix epoch, chosen by the leader; it becomes ctime/mtime.
    public var time: Int64
    public var type: OpCode

    public init(clientID: SessionID, cxid: Int32, zxid: Zxid, time: Int64, type: OpCode) {
        self.clientID = clientID
        self.cxid = cxid
        self.zxid = zxid
        self.time = time
        self.type = type
    }
}

/// `CreateTxn{path, data, acl, ephemeral, parentCVersion}`, used by create (1) and create2 (15).
/// `CreateContainerTxn` and `CreateTTLTxn` are the same record without `ephemeral` (and with
/// `ttl`), expressed here through `kind`.
public struct CreateTxn: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        case persistent
        case ephemeral
        case container
        /// A TTL node; the TTL in milliseconds.
        case ttl(Int64)
    }
    public var path: String
    public var data: [UInt8]
    /// ZooKeeper keeps a null data buffer (zkCli's `create /x` without data) apart from an
    /// empty one: getData answers null again. When true, `data` is empty.
    public var dataIsNull: Bool
    public var acl: [ACL]
    public var kind: Kind
    /// The parent's cversion after this create as ZooKeeper's prep computed it (creates only,
    /// see Stat), or -1 to let apply compute it.
    public var parentCVersion: Int32

    public init(path: String, data: [UInt8], dataIsNull: Bool = false, acl: [ACL], kind: Kind, parentCVersion: Int32 = -1) {
        precondition(!dataIsNull || data.isEmpty, "null data must be empty")
        self.path = path
        self.data = data
        self.dataIsNull = dataIsNull
        self.acl = acl
        self.kind = kind
        self.parentCVersion = parentCVersion
    }
}

/// `DeleteTxn{path}`.
public struct DeleteTxn: Hashable, Sendable {
    public var path: String
    public init(path: String) { self.path = path }
}

/// `SetDataTxn{path, data, version}`: `version` is the node's version after the change.
public struct SetDataTxn: Hashable, Sendable {
    public var path: String
    public var data: [UInt8]
    /// A null data buffer, kept apart from an empty one (see `CreateTxn.dataIsNull`).
    public var dataIsNull: Bool
    public var version: Int32
    public init(path: String, data: [UInt8], dataIsNull: Bool = false, version: Int32) {
        precondition(!dataIsNull || data.isEmpty, "null data must be empty")
        self.path = path
        self.data = data
        self.dataIsNull = dataIsNull
        self.version = version
    }
}

/// `SetACLTxn{path, acl, version}`: `version` is the node's aversion after the change.
public struct SetACLTxn: Hashable, Sendable {
    public var path: String
    public var acl: [ACL]
    public var version: Int32
    public init(path: String, acl: [ACL], version: Int32) {
        self.path = path
        self.acl = acl
        self.version = version
    }
}

/// `CheckVersionTxn{path, version}`.
public struct CheckVersionTxn: Hashable, Sendable {
    public var path: String
    public var version: Int32
    public init(path: String, version: Int32) {
        self.path = path
        self.version = version
    }
}

/// `CreateSessionTxn{timeOut}`: the negotiated session timeout in milliseconds.
public struct CreateSessionTxn: Hashable, Sendable {
    public var timeOut: Int32
    public init(timeOut: Int32) { self.timeOut = timeOut }
}

/// `CloseSessionTxn{vector<ustring> paths2Delete}` (ZooKeeper 3.6+); older logs carry no record.
public struct CloseSessionTxn: Hashable, Sendable {
    public var paths2Delete: [String]?
    public init(paths2Delete: [String]? = nil) { self.paths2Delete = paths2Delete }
}

/// A txn: the record together with its type. The type selects the jute record and, for creates,
/// tells create (1) from create2 (15), which apply treats alike but the log keeps apart.
public indirect enum Txn: Hashable, Sendable {
    case create(CreateTxn)
    case create2(CreateTxn)
    case createContainer(CreateTxn)
    case createTTL(CreateTxn)
    case delete(DeleteTxn)
    case deleteContainer(DeleteTxn)
    case setData(SetDataTxn)
    case setACL(SetACLTxn)
    case check(CheckVersionTxn)
    /// All-or-nothing: a multi whose ops failed is logged as a multi of error txns (ZooKeeper).
    case multi([Txn])
    case createSession(CreateSessionTxn)
    case closeSession(CloseSessionTxn)
    /// A failed request still consumes a zxid (`ErrorTxn{err}`).
    case error(KeeperErrorCode)

    /// The opcode ZooKeeper writes in the TxnHeader (or a multi's per-op `Txn.type`).
    public var opCode: OpCode {
        switch self {
        case .create: .create
        case .create2: .create2
        case .createContainer: .createContainer
        case .createTTL: .createTTL
        case .delete: .delete
        case .deleteContainer: .deleteContainer
        case .setData: .setData
        case .setACL: .setACL
        case .check: .check
        case .multi: .multi
        case .createSession: .createSession
        case .closeSession: .closeSession
        case .error: .error
        }
    }
}

/// A txn as the log holds it: header and record.
public struct TxnEntry: Hashable, Sendable {
    public var header: TxnHeader
    public var txn: Txn
    public init(header: TxnHeader, txn: Txn) {
        self.header = header
        self.txn = txn
    }
    public var zxid: Zxid { header.zxid }
}
