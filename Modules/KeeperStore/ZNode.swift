import KeeperModel

/// What kind of znode a node is (ZooKeeper's CreateMode without the sequential bit, which
/// only shapes the name). Stored in ZooKeeper's `ephemeralOwner` encodings; clients see
/// `ephemeralOwner` 0 for containers and TTL nodes (DataNode.getClientEphemeralOwner).
public enum NodeKind: Hashable, Sendable {
    case persistent
    /// Deleted when the owning session closes.
    case ephemeral(SessionID)
    /// Deleted by the server's container scan once it had children and has none left.
    case container
    /// Deleted by the server's TTL scan once it has no children and `mtime + ttl` passed.
    case ttl(milliseconds: Int64)
}

/// A znode as read from the store: its data, the Stat clients see, and its kind.
public struct ZNode: Hashable, Sendable {
    public var path: String
    public var data: [UInt8]
    /// The node holds a null buffer (set without data), which ZooKeeper reports as null rather
    /// than empty; `data` is then empty.
    public var dataIsNull: Bool
    public var stat: Stat
    public var kind: NodeKind
    public init(path: String, data: [UInt8], dataIsNull: Bool = false, stat: Stat, kind: NodeKind) {
        self.path = path
        self.data = data
        self.dataIsNull = dataIsNull
        self.stat = stat
        self.kind = kind
    }
}

/// A container or TTL node with what the server's expiry scan needs to decide
/// (ZooKeeper's ContainerManager: a container with no children whose cversion > 0 is
/// deleted; a TTL node with no children whose `mtime + ttl` is past is deleted).
public struct ExpiryCandidate: Hashable, Sendable {
    public var path: String
    public var kind: NodeKind
    public var numChildren: Int32
    /// The cversion clients see (creates + deletes of children).
    public var cversion: Int32
    public var mtime: Int64
    /// The node's version, for a conditional delete by the scan.
    public var version: Int32
    /// The TTL in milliseconds (nil for containers).
    public var ttl: Int64? {
        if case .ttl(let ms) = kind { return ms }
        return nil
    }
}

/// A session as replicated state: recorded by createSession, removed by closeSession, listed
/// on open so a restarted server revives its sessions.
public struct SessionRecord: Hashable, Sendable {
    public var sessionID: SessionID
    /// The negotiated timeout in milliseconds (CreateSessionTxn.timeOut).
    public var timeout: Int32
    public init(sessionID: SessionID, timeout: Int32) {
        self.sessionID = sessionID
        self.timeout = timeout
    }
}

/// An order-independent digest of the whole tree at `zxid`.
///
/// `value` = Σ over every znode (the system nodes included) of SipHash-2-4(path, 0xff×8,
/// czxid, mzxid, ctime, mtime, pzxid, stored ephemeralOwner, ACL-list hash, version,
/// stored cversion, aversion, numChildren, dataLength, data) mod 2^64, every integer as
/// 8 little-endian bytes (32-bit fields zero-extended, bit pattern kept), with the fixed key
/// "SwiftKeeperDigst" (two little-endian words, `SipHash24.key0/key1`). The ACL-list hash is SipHash-2-4 of
/// the list's encoding (count, then perms, scheme, id per entry). Because it is a sum, it is
/// kept up to date on every change (O(1) to read) and two stores with the same tree have the
/// same digest whatever order they were built in. Sessions are not part of it.
public struct TreeDigest: Hashable, Sendable, CustomStringConvertible {
    public var value: UInt64
    public var nodeCount: Int64
    public var zxid: Zxid
    public init(value: UInt64, nodeCount: Int64, zxid: Zxid) {
        self.value = value
        self.nodeCount = nodeCount
        self.zxid = zxid
    }
    public var description: String {
        "digest 0x\(String(value, radix: 16)) over \(nodeCount) znodes at \(zxid)"
    }
}
