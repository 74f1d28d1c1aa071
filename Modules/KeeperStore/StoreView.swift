import KeeperLMDB
import KeeperModel

/// The named databases of a store (see `KeeperStore`, "On-disk layout").
struct Databases: Sendable {
    var nodes: Database
    var acls: Database
    var ephemerals: Database
    var containers: Database
    var ttls: Database
    var sessions: Database
    var meta: Database
    /// The store is format 1 (opened read-only): node records have the legacy header.
    var legacyRecords = false
}

/// Keys of the `meta` database.
enum MetaKey {
    static let format: [UInt8] = Array("format".utf8)
    static let lastZxid: [UInt8] = Array("lastZxid".utf8)
    static let digest: [UInt8] = Array("digest".utf8)
    static let nodeCount: [UInt8] = Array("nodeCount".utf8)
}

/// A consistent view of the tree: everything read through one view comes from one LMDB
/// read transaction (or, inside `KeeperStore.write`, from the batch's own transaction, so
/// it sees the batch's changes). Only valid inside the closure that received it.
///
/// Paths are not validated here (the server validates requests first): a string that is
/// not a znode path simply names no node.
public struct StoreView {
    let txn: Transaction
    let dbs: Databases
    let directory: String
    let maxKeySize: Int
    /// Set for a view of a write batch: its last zxid and digest are not in `meta` yet.
    var batch: WriteBatch? = nil

    /// The `nodes` key of `path`, or nil when no node can have that path.
    func lookupKey(_ path: String) -> [UInt8]? {
        guard path.utf8.first == UInt8(ascii: "/"), path.utf8.count < maxKeySize else { return nil }
        // (At most maxKeySize − 1 bytes: `KeeperStore.maxPathBytes`, so every key fits.)
        if path.utf8.count > 1 && path.utf8.last == UInt8(ascii: "/") { return nil }
        return NodeKey.key(path)
    }

    func damaged(_ detail: String) -> StoreError { .damaged(directory: directory, detail: detail) }

    func record(key: [UInt8], withData: Bool = true) throws -> NodeRecord? {
        try key.withUnsafeBytes { k in
            try txn.withValue(dbs.nodes, key: k) { v -> NodeRecord? in
                guard let v else { return nil }
                guard let r = NodeRecord(decoding: v, withData: withData, legacy: dbs.legacyRecords) else {
                    throw damaged("node record of \(v.count) bytes under \(NodeKey.path(k))")
                }
                return r
            }
        }
    }

    func record(_ path: String, withData: Bool = true) throws -> NodeRecord? {
        guard let key = lookupKey(path) else { return nil }
        return try record(key: key, withData: withData)
    }

    /// The node at `path` (data, Stat, kind), or nil.
    public func node(at path: String) throws -> ZNode? {
        guard let r = try record(path) else { return nil }
        return ZNode(path: path, data: r.data, dataIsNull: r.dataIsNull, stat: r.clientStat, kind: r.kind)
    }

    /// The Stat of the node at `path`, or nil when there is none (ZooKeeper's exists).
    public func stat(at path: String) throws -> Stat? {
        try record(path, withData: false)?.clientStat
    }

    /// Whether a node exists at `path`.
    public func exists(_ path: String) throws -> Bool {
        guard let key = lookupKey(path) else { return false }
        return try txn.contains(dbs.nodes, key: key)
    }

    /// The node's kind, or nil.
    public func kind(at path: String) throws -> NodeKind? {
        try record(path, withData: false)?.kind
    }

    /// The names of the children of `path` in UTF-8 order, with the parent's Stat
    /// (getChildren2), or nil when there is no such node. One contiguous key range.
    public func children(of path: String) throws -> (names: [String], stat: Stat)? {
        guard let parent = try record(path, withData: false) else { return nil }
        var names: [String] = []
        names.reserveCapacity(Int(parent.numChildren))
        try txn.forEach(dbs.nodes, prefix: NodeKey.childPrefix(path)) { k, _ in
            names.append(NodeKey.name(k))
            return true
        }
        return (names, parent.clientStat)
    }

    /// The children of `path` with each child's Stat, in UTF-8 order, or nil.
    public func childStats(of path: String) throws -> [(name: String, stat: Stat)]? {
        guard try exists(path) else { return nil }
        var out: [(name: String, stat: Stat)] = []
        try txn.forEach(dbs.nodes, prefix: NodeKey.childPrefix(path)) { k, v in
            guard let r = NodeRecord(decoding: v, withData: false, legacy: dbs.legacyRecords) else {
                throw damaged("node record of \(v.count) bytes under \(NodeKey.path(k))")
            }
            out.append((NodeKey.name(k), r.clientStat))
            return true
        }
        return out
    }

    /// The number of children of `path` (O(1): kept in the node), or nil.
    public func childCount(of path: String) throws -> Int? {
        try record(path, withData: false).map { Int($0.numChildren) }
    }

    /// The number of descendants of `path` (getAllChildrenNumber), or nil. For "/", every
    /// node but the root (O(1)); otherwise two contiguous key ranges are counted.
    public func allChildrenNumber(of path: String) throws -> Int? {
        guard try exists(path) else { return nil }
        if path == "/" { return Int(try digest().nodeCount) - 1 }
        var count = 0
        // Children: "path\0..."; deeper descendants: keys whose parent starts with "path/".
        try txn.forEach(dbs.nodes, prefix: NodeKey.childPrefix(path)) { _, _ in
            count += 1
            return true
        }
        try txn.forEach(dbs.nodes, prefix: Array((path + "/").utf8)) { _, _ in
            count += 1
            return true
        }
        return count
    }

    /// The ephemeral nodes of `session`, sorted (getEphemerals, closeSession): an index
    /// range, never a scan of the tree.
    public func ephemerals(of session: SessionID) throws -> [String] {
        var out: [String] = []
        try txn.forEach(dbs.ephemerals, prefix: IntKey.bytes(session.rawValue)) { _, v in
            out.append(String(decoding: v, as: UTF8.self))
            return true
        }
        return out
    }

    /// The node's ACL and Stat (getACL), or nil.
    public func acl(at path: String) throws -> (acl: [ACL], stat: Stat)? {
        guard let r = try record(path, withData: false) else { return nil }
        return (try aclList(r.aclID, path: path), r.clientStat)
    }

    func aclList(_ id: UInt64, path: String) throws -> [ACL] {
        try IntKey.bytes(id).withUnsafeBytes { k in
            try txn.withValue(dbs.acls, key: k) { v -> [ACL] in
                guard let v, v.count >= 8, let acl = ACLCodec.decode(UnsafeRawBufferPointer(rebasing: v[8...])) else {
                    throw damaged("ACL \(id) of \(path) is missing or malformed")
                }
                return acl
            }
        }
    }

    /// The ACL, Stat and child-create count of `path` from one lookup (what a write's prep
    /// needs), or nil.
    public func aclAndChildCreates(at path: String) throws -> (acl: [ACL], stat: Stat, childCreates: Int32)? {
        guard let r = try record(path, withData: false) else { return nil }
        return (try aclList(r.aclID, path: path), r.clientStat, r.cversion)
    }

    /// The number of child creates of `path` (ZooKeeper's stored cversion), or nil: the
    /// counter a sequential child's %010d suffix is made from. Prep names a sequential node
    /// `path + ZNodePath.sequenceSuffix(count)` and logs `parentCVersion = count + 1`
    /// (taking its own in-flight creates into account).
    public func childCreateCount(of path: String) throws -> Int32? {
        try record(path, withData: false)?.cversion
    }

    /// Every container node, for the server's container scan.
    public func containers() throws -> [ExpiryCandidate] { try candidates(dbs.containers) }

    /// Every TTL node, for the server's TTL scan.
    public func ttlNodes() throws -> [ExpiryCandidate] { try candidates(dbs.ttls) }

    func candidates(_ db: Database) throws -> [ExpiryCandidate] {
        var paths: [String] = []
        try txn.forEach(db, prefix: []) { k, _ in
            paths.append(String(decoding: k, as: UTF8.self))
            return true
        }
        return try paths.map { p in
            guard let r = try record(p, withData: false) else { throw damaged("index names missing node \(p)") }
            let s = r.clientStat
            return ExpiryCandidate(
                path: p, kind: r.kind, numChildren: s.numChildren, cversion: s.cversion, mtime: s.mtime,
                version: s.version)
        }
    }

    /// The live sessions with their timeouts (for reviving them after a restart).
    public func sessions() throws -> [SessionRecord] {
        var out: [SessionRecord] = []
        try txn.forEach(dbs.sessions, prefix: []) { k, v in
            guard let id = IntKey.int64(k), v.count == 4 else { throw damaged("session record malformed") }
            out.append(SessionRecord(sessionID: SessionID(id), timeout: Int32(littleEndian: v.loadUnaligned(as: Int32.self))))
            return true
        }
        return out
    }

    /// The timeout of `session`, or nil when the store has no such session.
    public func session(_ session: SessionID) throws -> Int32? {
        try IntKey.bytes(session.rawValue).withUnsafeBytes { k in
            try txn.withValue(dbs.sessions, key: k) { v in
                v.map { Int32(littleEndian: $0.loadUnaligned(as: Int32.self)) }
            }
        }
    }

    func metaInt64(_ key: [UInt8]) throws -> Int64? {
        try key.withUnsafeBytes { k in
            try txn.withValue(dbs.meta, key: k) { v -> Int64? in
                guard let v else { return nil }
                guard v.count == 8 else { throw damaged("meta value of \(v.count) bytes") }
                return Int64(littleEndian: v.loadUnaligned(as: Int64.self))
            }
        }
    }

    /// The zxid of the last txn applied: replay the log after it.
    public func lastAppliedZxid() throws -> Zxid {
        if let batch { return batch.lastAppliedZxid }
        guard let z = try metaInt64(MetaKey.lastZxid) else { throw damaged("no lastZxid") }
        return Zxid(z)
    }

    /// The tree digest as maintained on every change (O(1)).
    public func digest() throws -> TreeDigest {
        if let batch { return batch.currentDigest }
        guard let d = try metaInt64(MetaKey.digest), let n = try metaInt64(MetaKey.nodeCount) else {
            throw damaged("no digest")
        }
        return TreeDigest(value: UInt64(bitPattern: d), nodeCount: n, zxid: try lastAppliedZxid())
    }

    /// Recomputes the digest from every node and ACL (a full scan), to check the maintained
    /// one or compare a replica or a restored backup.
    public func recomputeDigest() throws -> TreeDigest {
        var sum: UInt64 = 0
        var count: Int64 = 0
        var aclHashes: [UInt64: UInt64] = [:]
        try txn.forEach(dbs.nodes, prefix: []) { k, v in
            guard let r = NodeRecord(decoding: v, legacy: dbs.legacyRecords) else { throw damaged("node record of \(v.count) bytes") }
            let path = NodeKey.path(k)
            let aclHash: UInt64
            if let h = aclHashes[r.aclID] {
                aclHash = h
            } else {
                aclHash = SipHash24.hash(ACLCodec.encode(try aclList(r.aclID, path: path)))
                aclHashes[r.aclID] = aclHash
            }
            guard aclHash == r.aclHash else { throw damaged("ACL hash of \(path) does not match its ACL") }
            let term = r.digestTerm(path: path)
            if let stored = r.storedTerm, stored != term {
                throw damaged("the digest term stored with \(path) does not match the node")
            }
            sum &+= term
            count += 1
            return true
        }
        return TreeDigest(value: sum, nodeCount: count, zxid: try lastAppliedZxid())
    }

    /// Visits every node in key order (parents before their children). `body` returns false
    /// to stop. A full scan: for export, verification and tests.
    public func forEachNode(_ body: (ZNode) throws -> Bool) throws {
        try txn.forEach(dbs.nodes, prefix: []) { k, v in
            guard let r = NodeRecord(decoding: v, legacy: dbs.legacyRecords) else { throw damaged("node record of \(v.count) bytes") }
            return try body(ZNode(path: NodeKey.path(k), data: r.data, dataIsNull: r.dataIsNull, stat: r.clientStat, kind: r.kind))
        }
    }
}

