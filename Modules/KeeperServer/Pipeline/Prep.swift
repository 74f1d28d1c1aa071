import KeeperModel

/// ZooKeeper's PrepRequestProcessor: validates a write against the committed tree plus the
/// changes still in flight, and turns it into the txn every replica will apply.
///
/// Checks run in ZooKeeper's order, because clients see which error comes first (a create of
/// `/a//b` answers NoNode, not BadArguments: the parent `/a/` is looked up before the path is
/// validated). A failed request still becomes a txn (an error txn) and consumes a zxid.
public struct Prep: Sendable {
    public struct Options: Hashable, Sendable {
        public var extendedTypesEnabled = false
        public var maxDataLength = Limits.default.maxBuffer
        public init() {}
    }

    /// Paths ZooKeeper refuses to delete (DataTree.isSpecialPath).
    static let specialPaths: Set<String> = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"]

    public var options: Options
    /// path -> (zxid of the newest change prep made to it, the node after it; nil = deleted).
    /// An entry at or below `appliedZxid` is stale (the store has it) and is ignored; stale
    /// entries are swept out in bulk (`applied(upTo:)`) instead of one by one per write, which
    /// was 5% of the replica thread under load.
    private var outstanding: [String: (zxid: Int64, record: NodeRecord?)] = [:]
    /// The newest zxid the store has applied.
    private var appliedZxid: Int64 = 0
    /// `outstanding` is swept when it grows to this many entries.
    private var sweepAt = Prep.minimumSweep
    static let minimumSweep = 4096

    public init(options: Options = Options()) { self.options = options }

    /// The number of paths with changes in flight (for tests and metrics).
    public var outstandingCount: Int { outstanding.values.count { $0.zxid > appliedZxid } }

    /// The number of entries kept, stale ones included (for tests).
    var storedCount: Int { outstanding.count }

    /// Forgets in-flight changes up to `zxid` once the store has applied them.
    public mutating func applied(upTo zxid: Int64) {
        appliedZxid = max(appliedZxid, zxid)
        guard outstanding.count >= sweepAt else { return }
        let applied = appliedZxid
        outstanding = outstanding.filter { $0.value.zxid > applied }
        // Twice what is left: a sweep's cost is spread over at least as many writes as it scans.
        sweepAt = max(Self.minimumSweep, 2 * outstanding.count)
    }

    /// Prepares `request` at `zxid` (time in ms since the epoch, chosen by the leader).
    public mutating func prepare(
        _ request: WriteRequest, context: RequestContext, zxid: Int64, time: Int64, tree: some CommittedTree
    ) -> Txn {
        switch request {
        case .malformed(_, let code):
            return .error(code)
        case .multi(let ops):
            return prepareMulti(ops, context: context, zxid: zxid, time: time, tree: tree)
        default:
            do throws(KeeperErrorCode) {
                return try prepareOne(request, context: context, zxid: zxid, time: time, tree: tree)
            } catch {
                return .error(error)
            }
        }
    }

    private mutating func prepareMulti(
        _ ops: [WriteRequest], context: RequestContext, zxid: Int64, time: Int64, tree: some CommittedTree
    ) -> Txn {
        // What the multi's ops change, to undo if one fails: only the entries touched, not a
        // copy of the whole dictionary (which also holds applied entries until the next sweep).
        multiUndo = []
        defer { multiUndo = nil }
        var txns: [Txn] = []
        var failed = false
        for op in ops {
            if failed {
                txns.append(.error(.runtimeInconsistency))
                continue
            }
            switch op {
            case .create, .delete, .setData, .check:
                do throws(KeeperErrorCode) {
                    txns.append(try prepareOne(op, context: context, zxid: zxid, time: time, tree: tree))
                } catch {
                    failed = true
                    txns.append(.error(error))
                    undoMulti()
                }
            case .setACL, .multi, .createSession, .closeSession, .malformed:
                // Not allowed inside a multi (ZooKeeper's MultiOperationRecord refuses them).
                failed = true
                txns.append(.error(.badArguments))
                undoMulti()
            }
        }
        return .multi(txns)
    }

    private func record(_ path: String, _ tree: some CommittedTree) throws(KeeperErrorCode) -> NodeRecord {
        guard let r = lookup(path, tree) else { throw .noNode }
        return r
    }

    /// The node as prep sees it (in-flight change first, then the committed tree), or nil.
    private func lookup(_ path: String, _ tree: some CommittedTree) -> NodeRecord? {
        let key = path.isEmpty ? "/" : path
        if let pending = outstanding[key], pending.zxid > appliedZxid { return pending.record }
        return tree.record(key)
    }

    private func exists(_ path: String, _ tree: some CommittedTree) -> Bool {
        lookup(path, tree) != nil
    }

    private mutating func change(_ path: String, _ record: NodeRecord?, zxid: Int64) {
        let previous = outstanding.updateValue((zxid, record), forKey: path)
        multiUndo?.append((path, previous))
    }

    /// Inside `prepareMulti`: each change's path and the entry it replaced, oldest first.
    private var multiUndo: [(path: String, previous: (zxid: Int64, record: NodeRecord?)?)]?

    /// Puts back the entries the multi's ops replaced, newest change first.
    private mutating func undoMulti() {
        for (path, previous) in (multiUndo ?? []).reversed() {
            if let previous { outstanding[path] = previous } else { outstanding.removeValue(forKey: path) }
        }
        multiUndo = []
    }

    private static func validate(_ path: String) throws(KeeperErrorCode) {
        do { try ZNodePath.validate(path) } catch { throw .badArguments }
    }

    private static func checkAndIncVersion(_ current: Int32, _ expected: Int32) throws(KeeperErrorCode) -> Int32 {
        if expected != -1 && expected != current { throw .badVersion }
        let next = current &+ 1
        return next == -1 ? 0 : next
    }

    private static func check(_ acl: [ACL], _ perm: Permissions, _ context: RequestContext) throws(KeeperErrorCode) {
        guard Authentication.allows(acl, perm, authIds: context.authIds) else { throw .noAuth }
    }

    /// ZooKeeper's getParentPathAndValidate / validatePathForCreate: the parent path ("" for a
    /// top-level node, looked up as the root).
    private static func parentPath(_ path: String) -> String? {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), !path.utf8.contains(0) else { return nil }
        return String(path[..<slash])
    }

    private mutating func prepareOne(
        _ request: WriteRequest, context: RequestContext, zxid: Int64, time: Int64, tree: some CommittedTree
    ) throws(KeeperErrorCode) -> Txn {
        switch request {
        case .create(let opCode, let requestedPath, let data, let acl, let flags, let ttl):
            guard let mode = CreateMode(rawValue: flags) else { throw .badArguments }
            if mode.isTTL && !options.extendedTypesEnabled { throw .unimplemented }
            if mode.isTTL {
                guard EphemeralOwner.ttl(ttl) != nil else { throw .badArguments }
            } else if ttl >= 0 {
                throw .badArguments
            }
            guard (data?.count ?? 0) <= options.maxDataLength else { throw .badArguments }
            guard let parent = Self.parentPath(requestedPath) else { throw .badArguments }
            guard let fixed = Authentication.fixup(acl, authIds: context.authIds) else { throw .invalidACL }
            var parentRecord = try record(parent, tree)
            try Self.check(parentRecord.acl, .create, context)
            var path = requestedPath
            if mode.isSequential { path += ZNodePath.sequenceSuffix(parentRecord.childCreates) }
            try Self.validate(path)
            if exists(path, tree) { throw .nodeExists }
            if EphemeralOwner.isSession(parentRecord.stat.ephemeralOwner) { throw .noChildrenForEphemerals }
            let newCVersion = parentRecord.childCreates &+ 1
            let owner: Int64
            let kind: CreateTxn.Kind
            switch opCode {
            case .createContainer:
                kind = .container
            case .createTTL:
                kind = .ttl(ttl)
            default:
                kind = mode.isEphemeral ? .ephemeral : .persistent
            }
            if mode.isContainer {
                owner = EphemeralOwner.container
            } else if mode.isTTL {
                owner = EphemeralOwner.ttl(ttl) ?? 0
            } else if mode.isEphemeral {
                owner = context.session.rawValue
            } else {
                owner = 0
            }
            parentRecord.stat.numChildren += 1
            parentRecord.childCreates = newCVersion
            parentRecord.stat.pzxid = zxid
            change(parent.isEmpty ? "/" : parent, parentRecord, zxid: zxid)
            let stat = Stat(
                czxid: zxid, mzxid: zxid, ctime: time, mtime: time, ephemeralOwner: owner,
                dataLength: Int32(data?.count ?? 0), pzxid: zxid)
            change(path, NodeRecord(stat: stat, childCreates: 0, acl: fixed), zxid: zxid)
            let txn = CreateTxn(
                path: path, data: data ?? [], dataIsNull: data == nil, acl: fixed, kind: kind, parentCVersion: newCVersion)
            switch opCode {
            case .create2: return .create2(txn)
            case .createContainer: return .createContainer(txn)
            case .createTTL: return .createTTL(txn)
            default: return .create(txn)
            }

        case .delete(let opCode, let path, let version):
            // ZooKeeper 3.8 does not run PathUtils here: a malformed path is a node that does
            // not exist (NoNode), unless it has no slash or a NUL.
            guard let parent = Self.parentPath(path), !Self.specialPaths.contains(path) else { throw .badArguments }
            var parentRecord = try record(parent, tree)
            try Self.check(parentRecord.acl, .delete, context)
            let node = try record(path, tree)
            _ = try Self.checkAndIncVersion(node.stat.version, version)
            if node.stat.numChildren > 0 { throw .notEmpty }
            parentRecord.stat.numChildren -= 1
            parentRecord.stat.pzxid = zxid
            change(parent.isEmpty ? "/" : parent, parentRecord, zxid: zxid)
            change(path, nil, zxid: zxid)
            return opCode == .deleteContainer ? .deleteContainer(DeleteTxn(path: path)) : .delete(DeleteTxn(path: path))

        case .setData(let path, let data, let version):
            try Self.validate(path)
            var node = try record(path, tree)
            try Self.check(node.acl, .write, context)
            guard (data?.count ?? 0) <= options.maxDataLength else { throw .badArguments }
            let newVersion = try Self.checkAndIncVersion(node.stat.version, version)
            node.stat.version = newVersion
            node.stat.mtime = time
            node.stat.mzxid = zxid
            node.stat.dataLength = Int32(data?.count ?? 0)
            change(path, node, zxid: zxid)
            return .setData(SetDataTxn(path: path, data: data ?? [], dataIsNull: data == nil, version: newVersion))

        case .setACL(let path, let acl, let version):
            try Self.validate(path)
            guard let fixed = Authentication.fixup(acl, authIds: context.authIds) else { throw .invalidACL }
            var node = try record(path, tree)
            try Self.check(node.acl, .admin, context)
            let newVersion = try Self.checkAndIncVersion(node.stat.aversion, version)
            node.stat.aversion = newVersion
            node.acl = fixed
            change(path, node, zxid: zxid)
            return .setACL(SetACLTxn(path: path, acl: fixed, version: newVersion))

        case .check(let path, let version):
            try Self.validate(path)
            let node = try record(path, tree)
            try Self.check(node.acl, .read, context)
            return .check(CheckVersionTxn(path: path, version: try Self.checkAndIncVersion(node.stat.version, version)))

        case .createSession(let timeout):
            return .createSession(CreateSessionTxn(timeOut: timeout))

        case .closeSession:
            var paths = Set(tree.ephemerals(of: context.session))
            for (path, pending) in outstanding where pending.zxid > appliedZxid {
                if let r = pending.record {
                    if r.stat.ephemeralOwner == context.session.rawValue { paths.insert(path) }
                } else {
                    paths.remove(path)
                }
            }
            let sorted = paths.sorted()
            for path in sorted {
                if let parent = Self.parentPath(path), var parentRecord = lookup(parent, tree) {
                    parentRecord.stat.numChildren -= 1
                    parentRecord.stat.pzxid = zxid
                    change(parent.isEmpty ? "/" : parent, parentRecord, zxid: zxid)
                }
                change(path, nil, zxid: zxid)
            }
            return .closeSession(CloseSessionTxn(paths2Delete: sorted))

        case .multi, .malformed:
            preconditionFailure("\(request.opCode) is prepared by prepare(_:context:zxid:time:tree:)")
        }
    }
}
