import KeeperModel

/// A state-changing request as prep sees it: the fields of ZooKeeper's request records that
/// prep validates, independent of how they arrived (a client frame, a forwarded request, the
/// session expirer, the container and TTL reaper).
public indirect enum WriteRequest: Hashable, Sendable {
    /// create (1), create2 (15), createContainer (19), createTTL (21); `flags` is the raw
    /// CreateMode flag so prep can refuse unknown modes as ZooKeeper does; `ttl` is -1 when the
    /// request record has no TTL field.
    /// `data` nil is a null buffer, which ZooKeeper keeps apart from an empty one.
    case create(opCode: OpCode, path: String, data: [UInt8]?, acl: [ACL], flags: Int32, ttl: Int64)
    /// delete (2) and deleteContainer (20, only from the server itself).
    case delete(opCode: OpCode, path: String, version: Int32)
    case setData(path: String, data: [UInt8]?, version: Int32)
    case setACL(path: String, acl: [ACL], version: Int32)
    case check(path: String, version: Int32)
    case multi([WriteRequest])
    case createSession(timeout: Int32)
    case closeSession
    /// A write whose record could not be decoded: ZooKeeper still logs an error txn for it
    /// (MarshallingError; BadArguments for a setData without a path), consuming a zxid.
    case malformed(OpCode, KeeperErrorCode)

    public var opCode: OpCode {
        switch self {
        case .create(let op, _, _, _, _, _): op
        case .delete(let op, _, _): op
        case .setData: .setData
        case .setACL: .setACL
        case .check: .check
        case .multi: .multi
        case .createSession: .createSession
        case .closeSession: .closeSession
        case .malformed(let op, _): op
        }
    }
}

/// What prep knows about one node: ZooKeeper's ChangeRecord. `stat.cversion` is unused here;
/// `childCreates` is ZooKeeper's stored cversion (child creates only), the sequence counter.
public struct NodeRecord: Hashable, Sendable {
    public var stat: Stat
    public var childCreates: Int32
    public var acl: [ACL]

    public init(stat: Stat, childCreates: Int32, acl: [ACL]) {
        self.stat = stat
        self.childCreates = childCreates
        self.acl = acl
    }
}

/// The committed tree as prep reads it (the store, through one read transaction).
public protocol CommittedTree {
    func record(_ path: String) -> NodeRecord?
    func ephemerals(of session: SessionID) -> [String]
}

/// Who sent a request: prep checks ACLs against these ids.
public struct RequestContext: Hashable, Sendable {
    public var session: SessionID
    public var cxid: Int32
    public var authIds: [Id]
    public init(session: SessionID, cxid: Int32, authIds: [Id]) {
        self.session = session
        self.cxid = cxid
        self.authIds = authIds
    }
}
