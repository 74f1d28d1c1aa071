import KeeperLMDB
import KeeperModel

/// Many txns applied in one LMDB write transaction (`KeeperStore.write`): they become
/// visible and durable together, with the store's last applied zxid and digest written in
/// the same transaction. Only valid inside the closure that received it.
///
/// `apply` follows ZooKeeper's DataTree.processTxn, with one difference: every txn is
/// all-or-nothing, a multi included (a multi whose op fails at apply changes nothing and
/// reports per-op results as a failed multi does).
public final class WriteBatch {
    let txn: WriteTransaction
    let dbs: Databases
    let configuration: StoreConfiguration
    let directory: String
    let maxKeySize: Int
    /// The last zxid applied, the digest and the node count, as of this batch so far; written
    /// to `meta` when the batch ends.
    public private(set) var lastAppliedZxid: Zxid
    var digest: UInt64
    var nodeCount: Int64
    var changed = false

    init(
        txn: WriteTransaction, dbs: Databases, configuration: StoreConfiguration, directory: String,
        fresh: Bool = false
    ) throws {
        self.txn = txn
        self.dbs = dbs
        self.configuration = configuration
        self.directory = directory
        self.maxKeySize = txn.environment.maxKeySize
        if fresh {
            (lastAppliedZxid, digest, nodeCount) = (.zero, 0, 0)
            return
        }
        let view = StoreView(txn: txn, dbs: dbs, directory: directory, maxKeySize: maxKeySize)
        let d = try view.digest()
        self.lastAppliedZxid = d.zxid
        self.digest = d.value
        self.nodeCount = d.nodeCount
    }

    /// Reads through the batch's transaction: they see the txns applied so far.
    public var view: StoreView {
        StoreView(txn: txn, dbs: dbs, directory: directory, maxKeySize: maxKeySize, batch: self)
    }

    /// The digest as of the txns applied so far.
    public var currentDigest: TreeDigest { TreeDigest(value: digest, nodeCount: nodeCount, zxid: lastAppliedZxid) }

    /// Writes the meta record (last zxid, digest, node count) if anything was applied.
    func finish() throws {
        guard changed else { return }
        try putMeta(MetaKey.lastZxid, lastAppliedZxid.rawValue)
        try putMeta(MetaKey.digest, Int64(bitPattern: digest))
        try putMeta(MetaKey.nodeCount, nodeCount)
    }

    func putMeta(_ key: [UInt8], _ value: Int64) throws {
        try withUnsafeBytes(of: value.littleEndian) { v in
            try key.withUnsafeBytes { k in try txn.put(dbs.meta, key: k, value: v) }
        }
    }

    /// Applies `entry` at its zxid. Returns what it did; a txn that cannot apply reports
    /// ZooKeeper's code in the result and changes nothing but the last applied zxid (it
    /// consumed its zxid). Throws `StoreError.zxidNotAfterLastApplied` for a zxid at or below
    /// the last applied one, and `LMDBError` when the storage fails (then abandon the batch).
    @discardableResult
    public func apply(_ entry: TxnEntry) throws -> TxnResult {
        let zxid = entry.header.zxid
        guard zxid > lastAppliedZxid else {
            throw StoreError.zxidNotAfterLastApplied(zxid: zxid, lastApplied: lastAppliedZxid)
        }
        let result: TxnResult
        switch entry.txn {
        case .multi(let ops):
            result = try applyMulti(ops, header: entry.header)
        case .createSession(let s):
            try IntKey.bytes(entry.header.clientID.rawValue).withUnsafeBytes { k in
                try withUnsafeBytes(of: s.timeOut.littleEndian) { v in try txn.put(dbs.sessions, key: k, value: v) }
            }
            result = TxnResult(zxid: zxid, type: .createSession)
        case .closeSession(let c):
            result = try closeSession(entry.header, c)
        default:
            result = try applyOne(entry.txn, header: entry.header, in: txn)
        }
        lastAppliedZxid = zxid
        changed = true
        return result
    }

    /// One txn other than multi and the session txns, against `t` (the batch's transaction
    /// or a multi's nested one). On failure nothing was written.
    func applyOne(_ op: Txn, header: TxnHeader, in t: WriteTransaction) throws -> TxnResult {
        let zxid = header.zxid
        switch op {
        case .create(let c): return try create(c, type: .create, header: header, in: t)
        case .create2(let c): return try create(c, type: .create2, header: header, in: t)
        case .createContainer(let c): return try create(c, type: .createContainer, header: header, in: t)
        case .createTTL(let c): return try create(c, type: .createTTL, header: header, in: t)
        case .delete(let d): return try delete(d.path, type: .delete, zxid: zxid, in: t)
        case .deleteContainer(let d): return try delete(d.path, type: .deleteContainer, zxid: zxid, in: t)
        case .setData(let s): return try setData(s, header: header, in: t)
        case .setACL(let s): return try setACL(s, zxid: zxid, in: t)
        case .check(let c):
            // The version was checked by prep (the txn carries version + 1, as ZooKeeper's
            // checkAndIncVersion returns); apply only confirms the node is there.
            let found = try StoreView(txn: t, dbs: dbs, directory: directory, maxKeySize: maxKeySize).exists(c.path)
            return TxnResult(zxid: zxid, type: .check, error: found ? .ok : .noNode, path: c.path)
        case .error(let code):
            return TxnResult(zxid: zxid, type: .error, error: code)
        case .multi, .createSession, .closeSession:
            // Not allowed inside a multi (ZooKeeper's MultiOperationRecord refuses them).
            return TxnResult(zxid: zxid, type: op.opCode, error: .badArguments)
        }
    }

    struct MultiFailed: Error {
        var index: Int
        var code: KeeperErrorCode
    }

    func applyMulti(_ ops: [Txn], header: TxnHeader) throws -> TxnResult {
        let zxid = header.zxid
        func failed(_ codes: [KeeperErrorCode], first: KeeperErrorCode) -> TxnResult {
            TxnResult(
                zxid: zxid, type: .multi, error: first,
                multi: codes.map { TxnResult(zxid: zxid, type: .error, error: $0) })
        }
        // A multi that failed at prep is logged as a multi of error txns (DataTree
        // processTxn): nothing applies; each op reports the code prep gave it.
        if ops.contains(where: { if case .error = $0 { true } else { false } }) {
            var codes: [KeeperErrorCode] = []
            var sawError = false
            for op in ops {
                if case .error(let c) = op {
                    codes.append(c)
                    sawError = true
                } else {
                    codes.append(sawError ? .runtimeInconsistency : .ok)
                }
            }
            return failed(codes, first: codes.first { $0 != .ok } ?? .ok)
        }
        let saved = (digest, nodeCount)
        do {
            let results = try txn.nested { child -> [TxnResult] in
                var results: [TxnResult] = []
                results.reserveCapacity(ops.count)
                for (i, op) in ops.enumerated() {
                    let r = try applyOne(op, header: header, in: child)
                    if r.error != .ok { throw MultiFailed(index: i, code: r.error) }
                    results.append(r)
                }
                return results
            }
            return TxnResult(zxid: zxid, type: .multi, changes: results.flatMap(\.changes), multi: results)
        } catch let f as MultiFailed {
            (digest, nodeCount) = saved
            let codes = ops.indices.map { i in
                i < f.index ? KeeperErrorCode.ok : i == f.index ? f.code : .runtimeInconsistency
            }
            return failed(codes, first: f.code)
        } catch {
            (digest, nodeCount) = saved
            throw error
        }
    }

    // MARK: node records

    func view(_ t: WriteTransaction) -> StoreView {
        StoreView(txn: t, dbs: dbs, directory: directory, maxKeySize: maxKeySize)
    }

    /// Stores `r` at `key` (the key of `path`) with its digest term, and returns the term.
    @discardableResult
    func putRecord(_ key: [UInt8], _ r: NodeRecord, path: String, in t: WriteTransaction) throws -> UInt64 {
        let term = r.digestTerm(path: path)
        try Self.put(r, term: term, key: key, in: dbs.nodes, t)
        return term
    }

    /// Stores `r` with `term` at `key` of the `nodes` database `db`.
    static func put(_ r: NodeRecord, term: UInt64, key: [UInt8], in db: Database, _ t: WriteTransaction) throws {
        try key.withUnsafeBytes { k in
            try t.put(db, key: k, reservingCount: r.encodedCount) { out in r.encode(into: out, term: term) }
        }
    }

    /// ZooKeeper's special paths (ZKDatabase.isSpecialPath): never deleted.
    static let specialPaths: Set<String> = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"]

    func create(_ c: CreateTxn, type: OpCode, header: TxnHeader, in t: WriteTransaction) throws -> TxnResult {
        let zxid = header.zxid
        let path = c.path
        func fail(_ code: KeeperErrorCode) -> TxnResult { TxnResult(zxid: zxid, type: type, error: code, path: path) }
        do { try ZNodePath.validate(path) } catch { return fail(.badArguments) }
        guard let parentSub = ZNodePath.parent(of: path) else { return fail(.nodeExists) }
        let parentPath = String(parentSub)
        guard path.utf8.count < maxKeySize else { return fail(.badArguments) }  // KeeperStore.maxPathBytes
        let key = NodeKey.key(path)
        guard c.data.count <= configuration.maxDataLength else { return fail(.badArguments) }
        guard !c.acl.isEmpty else { return fail(.invalidACL) }
        let owner: Int64
        switch c.kind {
        case .persistent: owner = 0
        case .ephemeral: owner = header.clientID.rawValue
        case .container: owner = EphemeralOwner.container
        case .ttl(let ms):
            guard let o = EphemeralOwner.ttl(ms) else { return fail(.badArguments) }
            owner = o
        }
        let v = view(t)
        let parentKey = NodeKey.key(parentPath)
        guard var parent = try v.record(key: parentKey) else { return fail(.noNode) }
        if try t.contains(dbs.nodes, key: key) { return fail(.nodeExists) }
        if EphemeralOwner.isSession(parent.ephemeralOwner) { return fail(.noChildrenForEphemerals) }

        // The parent (DataTree.createNode): cversion counts creates; -1 means "one more";
        // it is only ever raised, and pzxid moves with it.
        let oldParentTerm = parent.currentTerm(path: parentPath)
        let newCVersion = c.parentCVersion == -1 ? parent.cversion &+ 1 : c.parentCVersion
        if newCVersion > parent.cversion {
            parent.cversion = newCVersion
            parent.pzxid = zxid.rawValue
        }
        parent.numChildren += 1
        digest = digest &- oldParentTerm &+ (try putRecord(parentKey, parent, path: parentPath, in: t))

        let (aclID, aclHash) = try acquireACL(c.acl, in: t)
        var node = NodeRecord(
            czxid: zxid.rawValue, mzxid: zxid.rawValue, ctime: header.time, mtime: header.time, pzxid: zxid.rawValue,
            ephemeralOwner: owner, aclID: aclID, aclHash: aclHash, version: 0, cversion: 0, aversion: 0,
            numChildren: 0, data: c.data)
        node.dataIsNull = c.dataIsNull
        digest &+= try putRecord(key, node, path: path, in: t)
        nodeCount += 1
        try addToIndex(path: path, owner: owner, in: t)
        return TxnResult(
            zxid: zxid, type: type, path: path, stat: node.clientStat,
            changes: [.created(path), .childrenChanged(parentPath)])
    }

    func delete(_ path: String, type: OpCode, zxid: Zxid, in t: WriteTransaction) throws -> TxnResult {
        func fail(_ code: KeeperErrorCode) -> TxnResult { TxnResult(zxid: zxid, type: type, error: code, path: path) }
        do { try ZNodePath.validate(path) } catch { return fail(.badArguments) }
        if Self.specialPaths.contains(path) { return fail(.badArguments) }
        guard path.utf8.count < maxKeySize else { return fail(.noNode) }
        let key = NodeKey.key(path)
        let v = view(t)
        guard let node = try v.record(key: key, withData: false) else { return fail(.noNode) }
        if node.numChildren > 0 { return fail(.notEmpty) }
        guard let parentSub = ZNodePath.parent(of: path) else { return fail(.badArguments) }
        let parentPath = String(parentSub)
        let parentKey = NodeKey.key(parentPath)
        guard var parent = try v.record(key: parentKey) else {
            throw StoreError.damaged(directory: directory, detail: "\(path) exists but its parent does not")
        }
        precondition(parent.numChildren > 0, "parent \(parentPath) of \(path) counts no children")

        _ = try key.withUnsafeBytes { k in try t.delete(dbs.nodes, key: k) }
        try releaseACL(node.aclID, in: t)
        try removeFromIndex(path: path, owner: node.ephemeralOwner, in: t)
        digest &-= node.currentTerm(path: path)
        nodeCount -= 1

        // DataTree.deleteNode: the stored cversion stays (clients see it move through
        // numChildren); pzxid only moves forward.
        let oldParentTerm = parent.currentTerm(path: parentPath)
        parent.numChildren -= 1
        if zxid.rawValue > parent.pzxid { parent.pzxid = zxid.rawValue }
        digest = digest &- oldParentTerm &+ (try putRecord(parentKey, parent, path: parentPath, in: t))
        return TxnResult(zxid: zxid, type: type, path: path, changes: [.deleted(path), .childrenChanged(parentPath)])
    }

    func setData(_ s: SetDataTxn, header: TxnHeader, in t: WriteTransaction) throws -> TxnResult {
        let zxid = header.zxid
        func fail(_ code: KeeperErrorCode) -> TxnResult { TxnResult(zxid: zxid, type: .setData, error: code, path: s.path) }
        do { try ZNodePath.validate(s.path) } catch { return fail(.badArguments) }
        guard s.data.count <= configuration.maxDataLength else { return fail(.badArguments) }
        guard let key = view(t).lookupKey(s.path) else { return fail(.noNode) }
        // The old data is replaced, so only the header is read: its stored term is what the
        // digest loses.
        guard var node = try view(t).record(key: key, withData: false) else { return fail(.noNode) }
        let old = node.currentTerm(path: s.path)
        node.data = s.data
        node.headerOnlyDataLength = nil
        node.dataIsNull = s.dataIsNull
        node.version = s.version
        node.mzxid = zxid.rawValue
        node.mtime = header.time
        digest = digest &- old &+ (try putRecord(key, node, path: s.path, in: t))
        return TxnResult(zxid: zxid, type: .setData, path: s.path, stat: node.clientStat, changes: [.dataChanged(s.path)])
    }

    func setACL(_ s: SetACLTxn, zxid: Zxid, in t: WriteTransaction) throws -> TxnResult {
        func fail(_ code: KeeperErrorCode) -> TxnResult { TxnResult(zxid: zxid, type: .setACL, error: code, path: s.path) }
        do { try ZNodePath.validate(s.path) } catch { return fail(.badArguments) }
        guard !s.acl.isEmpty else { return fail(.invalidACL) }
        guard let key = view(t).lookupKey(s.path) else { return fail(.noNode) }
        guard var node = try view(t).record(key: key) else { return fail(.noNode) }
        let old = node.currentTerm(path: s.path)
        let (aclID, aclHash) = try acquireACL(s.acl, in: t)
        try releaseACL(node.aclID, in: t)
        node.aclID = aclID
        node.aclHash = aclHash
        node.aversion = s.version
        digest = digest &- old &+ (try putRecord(key, node, path: s.path, in: t))
        return TxnResult(zxid: zxid, type: .setACL, path: s.path, stat: node.clientStat)
    }

    /// closeSession: deletes every ephemeral of the session (the index, plus any path of
    /// `paths2Delete` the session owns, as DataTree.killSession does) and forgets it.
    func closeSession(_ header: TxnHeader, _ c: CloseSessionTxn) throws -> TxnResult {
        let session = header.clientID
        let v = view(txn)
        var paths = Set(try v.ephemerals(of: session))
        for p in c.paths2Delete ?? [] where !paths.contains(p) {
            if case .ephemeral(let owner)? = try v.kind(at: p), owner == session { paths.insert(p) }
        }
        var changes: [Change] = []
        for p in paths.sorted() {
            let r = try delete(p, type: .delete, zxid: header.zxid, in: txn)
            precondition(r.error == .ok, "ephemeral \(p) of \(session) could not be deleted: \(r.error)")
            changes += r.changes
        }
        _ = try IntKey.bytes(session.rawValue).withUnsafeBytes { k in try txn.delete(dbs.sessions, key: k) }
        return TxnResult(zxid: header.zxid, type: .closeSession, changes: changes)
    }

    // MARK: indexes

    func addToIndex(path: String, owner: Int64, in t: WriteTransaction) throws {
        if owner == 0 { return }
        var p = path
        try p.withUTF8 { pb in
            let pathBytes = UnsafeRawBufferPointer(pb)
            if owner == EphemeralOwner.container {
                try t.put(dbs.containers, key: pathBytes, value: UnsafeRawBufferPointer(start: nil, count: 0))
            } else if EphemeralOwner.ttlValue(of: owner) != nil {
                try t.put(dbs.ttls, key: pathBytes, value: UnsafeRawBufferPointer(start: nil, count: 0))
            } else {
                try IntKey.bytes(owner).withUnsafeBytes { k in try t.put(dbs.ephemerals, key: k, value: pathBytes) }
            }
        }
    }

    func removeFromIndex(path: String, owner: Int64, in t: WriteTransaction) throws {
        if owner == 0 { return }
        var p = path
        let removed = try p.withUTF8 { pb -> Bool in
            let pathBytes = UnsafeRawBufferPointer(pb)
            if owner == EphemeralOwner.container {
                return try t.delete(dbs.containers, key: pathBytes)
            } else if EphemeralOwner.ttlValue(of: owner) != nil {
                return try t.delete(dbs.ttls, key: pathBytes)
            } else {
                return try IntKey.bytes(owner).withUnsafeBytes { k in
                    try t.delete(dbs.ephemerals, key: k, value: pathBytes)
                }
            }
        }
        if !removed { throw StoreError.damaged(directory: directory, detail: "index entry of \(path) missing") }
    }

    // MARK: ACLs

    /// Finds or adds `acl` in the `acls` database and takes a reference. The id is the
    /// list's SipHash, probing upwards on a collision; equal lists share one entry
    /// (ZooKeeper's ReferenceCountedACLCache does the same with a counter as id).
    func acquireACL(_ acl: [ACL], in t: WriteTransaction) throws -> (id: UInt64, hash: UInt64) {
        let encoded = ACLCodec.encode(acl)
        let hash = SipHash24.hash(encoded)
        var id = hash
        while true {
            let key = IntKey.bytes(id)
            let found: UInt64? = try key.withUnsafeBytes { k in
                try t.withValue(dbs.acls, key: k) { v -> UInt64? in
                    guard let v else { return 0 }
                    guard v.count >= 8 else {
                        throw StoreError.damaged(directory: directory, detail: "ACL entry \(id) malformed")
                    }
                    let same = v.count - 8 == encoded.count && encoded.withUnsafeBytes { e in
                        UnsafeRawBufferPointer(rebasing: v[8...]).elementsEqual(e)
                    }
                    return same ? UInt64(littleEndian: v.loadUnaligned(as: UInt64.self)) : nil
                }
            }
            if let refs = found {
                try putACL(key, refs: refs + 1, encoded, in: t)
                return (id, hash)
            }
            id &+= 1
        }
    }

    func putACL(_ key: [UInt8], refs: UInt64, _ encoded: [UInt8], in t: WriteTransaction) throws {
        try key.withUnsafeBytes { k in
            try t.put(dbs.acls, key: k, reservingCount: 8 + encoded.count) { out in
                out.storeBytes(of: refs.littleEndian, as: UInt64.self)
                encoded.withUnsafeBytes { e in UnsafeMutableRawBufferPointer(rebasing: out[8...]).copyMemory(from: e) }
            }
        }
    }

    /// Drops a reference to ACL `id`, deleting the entry with its last reference.
    func releaseACL(_ id: UInt64, in t: WriteTransaction) throws {
        let key = IntKey.bytes(id)
        let entry: (refs: UInt64, encoded: [UInt8])? = try key.withUnsafeBytes { k in
            try t.withValue(dbs.acls, key: k) { v in
                guard let v, v.count >= 8 else { return nil }
                return (UInt64(littleEndian: v.loadUnaligned(as: UInt64.self)), Array(v[8...]))
            }
        }
        guard let entry, entry.refs > 0 else {
            throw StoreError.damaged(directory: directory, detail: "ACL entry \(id) missing or unreferenced")
        }
        if entry.refs == 1 {
            _ = try key.withUnsafeBytes { k in try t.delete(dbs.acls, key: k) }
        } else {
            try putACL(key, refs: entry.refs - 1, entry.encoded, in: t)
        }
    }
}
