import KeeperModel
import Testing

@testable import KeeperStore

/// A plain in-memory model of ZooKeeper's data tree, written independently of the store:
/// the reference the model-based test compares the store with after every txn.
struct Model {
    struct Node: Equatable {
        var data: [UInt8]
        var acl: [ACL]
        var czxid: Int64
        var mzxid: Int64
        var ctime: Int64
        var mtime: Int64
        var pzxid: Int64
        var owner: Int64
        var version: Int32 = 0
        /// Child creates (the sequential counter).
        var creates: Int32 = 0
        var aversion: Int32 = 0
        var children: Set<String> = []
    }

    struct Outcome: Equatable {
        var error: KeeperErrorCode
        var path: String?
        var stat: Stat?
        var changes: [Change]
        var multi: [KeeperErrorCode]
    }

    var nodes: [String: Node] = [:]
    var sessions: [Int64: Int32] = [:]
    var lastZxid: Int64 = 0
    let maxData: Int

    init(maxData: Int) {
        self.maxData = maxData
        func system(_ acl: [ACL] = ACL.openUnsafe) -> Node {
            Node(data: [], acl: acl, czxid: 0, mzxid: 0, ctime: 0, mtime: 0, pzxid: 0, owner: 0)
        }
        nodes["/"] = system()
        nodes["/"]!.children = ["zookeeper"]
        nodes["/zookeeper"] = system()
        nodes["/zookeeper"]!.children = ["quota", "config"]
        nodes["/zookeeper/quota"] = system()
        nodes["/zookeeper/config"] = system(ACL.readUnsafe)
        nodes["/zookeeper/config"]!.aversion = -1
    }

    static func parent(_ path: String) -> String {
        let i = path.lastIndex(of: "/")!
        return i == path.startIndex ? "/" : String(path[..<i])
    }

    static func name(_ path: String) -> String { String(path[path.index(after: path.lastIndex(of: "/")!)...]) }

    func stat(_ path: String) -> Stat? {
        guard let n = nodes[path] else { return nil }
        let isSession = n.owner != 0 && n.owner != Int64.min && (UInt64(bitPattern: n.owner) >> 56) != 0xff
        return Stat(
            czxid: n.czxid, mzxid: n.mzxid, ctime: n.ctime, mtime: n.mtime, version: n.version,
            cversion: n.creates * 2 - Int32(n.children.count), aversion: n.aversion,
            ephemeralOwner: isSession ? n.owner : 0, dataLength: Int32(n.data.count),
            numChildren: Int32(n.children.count), pzxid: n.pzxid)
    }

    func kind(_ path: String) -> NodeKind? {
        guard let n = nodes[path] else { return nil }
        if n.owner == 0 { return .persistent }
        if n.owner == Int64.min { return .container }
        if UInt64(bitPattern: n.owner) >> 56 == 0xff {
            return .ttl(milliseconds: Int64(bitPattern: UInt64(bitPattern: n.owner) & 0xff_ffff_ffff))
        }
        return .ephemeral(SessionID(n.owner))
    }

    func ephemerals(of session: Int64) -> [String] {
        nodes.filter { $0.value.owner == session && session != 0 }.map(\.key).sorted()
    }

    /// One op against the model; on failure the model is unchanged.
    mutating func op(_ txn: Txn, _ h: TxnHeader) -> Outcome {
        let zxid = h.zxid.rawValue
        func fail(_ e: KeeperErrorCode, _ p: String?) -> Outcome { Outcome(error: e, path: p, stat: nil, changes: [], multi: []) }
        func validPath(_ p: String) -> Bool { (try? ZNodePath.validate(p)) != nil }
        switch txn {
        case .create(let c), .create2(let c), .createContainer(let c), .createTTL(let c):
            let p = c.path
            guard validPath(p) else { return fail(.badArguments, p) }
            if p == "/" { return fail(.nodeExists, p) }
            guard p.utf8.count <= 510, c.data.count <= maxData else { return fail(.badArguments, p) }
            guard !c.acl.isEmpty else { return fail(.invalidACL, p) }
            var owner: Int64 = 0
            switch c.kind {
            case .persistent: owner = 0
            case .ephemeral: owner = h.clientID.rawValue
            case .container: owner = Int64.min
            case .ttl(let ms):
                guard ms > 0 && ms <= 0xff_ffff_ffff else { return fail(.badArguments, p) }
                owner = Int64(bitPattern: 0xff00_0000_0000_0000 | UInt64(ms))
            }
            let parent = Model.parent(p)
            guard var pn = nodes[parent] else { return fail(.noNode, p) }
            if nodes[p] != nil { return fail(.nodeExists, p) }
            let parentIsEphemeral = pn.owner != 0 && pn.owner != Int64.min && UInt64(bitPattern: pn.owner) >> 56 != 0xff
            if parentIsEphemeral { return fail(.noChildrenForEphemerals, p) }
            let cv = c.parentCVersion == -1 ? pn.creates + 1 : c.parentCVersion
            if cv > pn.creates {
                pn.creates = cv
                pn.pzxid = zxid
            }
            pn.children.insert(Model.name(p))
            nodes[parent] = pn
            nodes[p] = Node(
                data: c.data, acl: c.acl, czxid: zxid, mzxid: zxid, ctime: h.time, mtime: h.time, pzxid: zxid,
                owner: owner)
            return Outcome(error: .ok, path: p, stat: stat(p), changes: [.created(p), .childrenChanged(parent)], multi: [])
        case .delete(let d), .deleteContainer(let d):
            let p = d.path
            guard validPath(p) else { return fail(.badArguments, p) }
            if ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"].contains(p) { return fail(.badArguments, p) }
            guard let n = nodes[p] else { return fail(.noNode, p) }
            guard n.children.isEmpty else { return fail(.notEmpty, p) }
            let parent = Model.parent(p)
            nodes[p] = nil
            nodes[parent]!.children.remove(Model.name(p))
            nodes[parent]!.pzxid = max(nodes[parent]!.pzxid, zxid)
            return Outcome(error: .ok, path: p, stat: nil, changes: [.deleted(p), .childrenChanged(parent)], multi: [])
        case .setData(let s):
            guard validPath(s.path) else { return fail(.badArguments, s.path) }
            guard s.data.count <= maxData else { return fail(.badArguments, s.path) }
            guard nodes[s.path] != nil else { return fail(.noNode, s.path) }
            nodes[s.path]!.data = s.data
            nodes[s.path]!.version = s.version
            nodes[s.path]!.mzxid = zxid
            nodes[s.path]!.mtime = h.time
            return Outcome(error: .ok, path: s.path, stat: stat(s.path), changes: [.dataChanged(s.path)], multi: [])
        case .setACL(let s):
            guard validPath(s.path) else { return fail(.badArguments, s.path) }
            guard !s.acl.isEmpty else { return fail(.invalidACL, s.path) }
            guard nodes[s.path] != nil else { return fail(.noNode, s.path) }
            nodes[s.path]!.acl = s.acl
            nodes[s.path]!.aversion = s.version
            return Outcome(error: .ok, path: s.path, stat: stat(s.path), changes: [], multi: [])
        case .check(let c):
            return nodes[c.path] == nil ? fail(.noNode, c.path) : Outcome(error: .ok, path: c.path, stat: nil, changes: [], multi: [])
        case .error(let code):
            return fail(code, nil)
        case .multi, .createSession, .closeSession:
            return fail(.badArguments, nil)
        }
    }

    mutating func apply(_ e: TxnEntry) -> Outcome {
        let h = e.header
        defer { lastZxid = h.zxid.rawValue }
        switch e.txn {
        case .createSession(let s):
            sessions[h.clientID.rawValue] = s.timeOut
            return Outcome(error: .ok, path: nil, stat: nil, changes: [], multi: [])
        case .closeSession:
            var changes: [Change] = []
            for p in ephemerals(of: h.clientID.rawValue) {
                changes += op(.delete(DeleteTxn(path: p)), h).changes
            }
            sessions[h.clientID.rawValue] = nil
            return Outcome(error: .ok, path: nil, stat: nil, changes: changes, multi: [])
        case .multi(let ops):
            if ops.contains(where: { if case .error = $0 { true } else { false } }) {
                var codes: [KeeperErrorCode] = []
                var seen = false
                for o in ops {
                    if case .error(let c) = o {
                        codes.append(c)
                        seen = true
                    } else {
                        codes.append(seen ? .runtimeInconsistency : .ok)
                    }
                }
                return Outcome(error: codes.first { $0 != .ok } ?? .ok, path: nil, stat: nil, changes: [], multi: codes)
            }
            let saved = self
            var changes: [Change] = []
            for (i, o) in ops.enumerated() {
                let r = op(o, h)
                if r.error != .ok {
                    self = saved
                    let codes = ops.indices.map { $0 < i ? KeeperErrorCode.ok : $0 == i ? r.error : .runtimeInconsistency }
                    return Outcome(error: r.error, path: nil, stat: nil, changes: [], multi: codes)
                }
                changes += r.changes
            }
            return Outcome(error: .ok, path: nil, stat: nil, changes: changes, multi: ops.map { _ in .ok })
        default:
            return op(e.txn, h)
        }
    }

    /// The digest of the model's tree, by the definition documented on `TreeDigest`.
    func digest() -> UInt64 {
        var sum: UInt64 = 0
        for (path, n) in nodes {
            let record = NodeRecord(
                czxid: n.czxid, mzxid: n.mzxid, ctime: n.ctime, mtime: n.mtime, pzxid: n.pzxid, ephemeralOwner: n.owner,
                aclID: 0, aclHash: SipHash24.hash(ACLCodec.encode(n.acl)), version: n.version, cversion: n.creates,
                aversion: n.aversion, numChildren: Int32(n.children.count), data: n.data)
            sum &+= record.digestTerm(path: path)
        }
        return sum
    }
}

/// Generates random txns the way a server's prep would (resolved sequential names, new
/// versions), many of them invalid on purpose.
struct TxnGenerator {
    var rng: SeededGenerator
    let sessionPool: [Int64] = [0x101, 0x102, 0x103]
    let names = ["a", "b", "c", "d", "e"]
    let acls: [[ACL]] = [
        ACL.openUnsafe, ACL.readUnsafe,
        [ACL(perms: [.read, .write], id: Id(scheme: "digest", id: "u:x")), ACL(perms: .all, id: Id(scheme: "ip", id: "10.0.0.1"))],
    ]

    mutating func int(_ range: Range<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func chance(_ percent: Int) -> Bool { int(0..<100) < percent }

    mutating func data(_ maxData: Int) -> [UInt8] {
        let n = chance(3) ? maxData + 1 : int(0..<(maxData / 2))
        return (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    mutating func existing(_ m: Model) -> String {
        let paths = m.nodes.keys.sorted()
        return paths[int(0..<paths.count)]
    }

    mutating func somePath(_ m: Model) -> String {
        if chance(10) { return ["/zz", "/a//b", "/zookeeper", "/zookeeper/quota", "/", "/x/."][int(0..<6)] }
        return existing(m)
    }

    mutating func createTxn(_ m: Model, session: Int64) -> Txn {
        var parent = existing(m)
        if chance(8) { parent = "/nope" }
        let depth = parent.split(separator: "/").count
        if depth >= 3 { parent = "/" }
        let sequential = chance(25)
        var parentCVersion: Int32 = -1
        var name = names[int(0..<names.count)]
        let creates = m.nodes[parent]?.creates ?? 0
        if sequential {
            name = "s-" + ZNodePath.sequenceSuffix(creates)
            parentCVersion = creates + 1
        } else if chance(15) {
            parentCVersion = chance(50) ? creates + 1 : Int32(int(0..<4))
        }
        let path = ZNodePath.child(name, of: parent)
        let acl = chance(2) ? [] : acls[int(0..<acls.count)]
        let d = data(64)
        switch int(0..<10) {
        case 0..<5:
            let c = CreateTxn(path: path, data: d, acl: acl, kind: .persistent, parentCVersion: parentCVersion)
            return chance(50) ? .create(c) : .create2(c)
        case 5..<7:
            return .create(CreateTxn(path: path, data: d, acl: acl, kind: .ephemeral, parentCVersion: parentCVersion))
        case 7..<8:
            return .createContainer(CreateTxn(path: path, data: d, acl: acl, kind: .container, parentCVersion: parentCVersion))
        default:
            let ttl: Int64 = chance(5) ? 0 : Int64(int(1..<100_000))
            return .createTTL(CreateTxn(path: path, data: d, acl: acl, kind: .ttl(ttl), parentCVersion: parentCVersion))
        }
    }

    mutating func simpleOp(_ m: Model, session: Int64) -> Txn {
        switch int(0..<100) {
        case 0..<40: return createTxn(m, session: session)
        case 40..<65:
            let p = somePath(m)
            return m.kind(p) == .container && chance(50) ? .deleteContainer(DeleteTxn(path: p)) : .delete(DeleteTxn(path: p))
        case 65..<85:
            let p = somePath(m)
            return .setData(SetDataTxn(path: p, data: data(64), version: (m.nodes[p]?.version ?? 0) + 1))
        case 85..<93:
            let p = somePath(m)
            return .setACL(SetACLTxn(path: p, acl: chance(3) ? [] : acls[int(0..<acls.count)], version: (m.nodes[p]?.aversion ?? 0) + 1))
        default:
            let p = somePath(m)
            return .check(CheckVersionTxn(path: p, version: (m.nodes[p]?.version ?? 0) + 1))
        }
    }

    mutating func next(_ m: Model) -> (Txn, Int64) {
        let session = sessionPool[int(0..<sessionPool.count)]
        switch int(0..<100) {
        case 0..<75: return (simpleOp(m, session: session), session)
        case 75..<85:
            // Ops of a multi are generated against the model before the multi, as prep
            // would against its outstanding changes; some of them fail at apply.
            let n = int(1..<6)
            if chance(15) {
                let failing = int(0..<n)
                let codes: [Txn] = (0..<n).map { i in
                    .error(i < failing ? .ok : i == failing ? [.noNode, .nodeExists, .badVersion][int(0..<3)] : .runtimeInconsistency)
                }
                return (.multi(codes), session)
            }
            var scratch = m
            var ops: [Txn] = []
            for _ in 0..<n {
                let o = simpleOp(scratch, session: session)
                ops.append(o)
                _ = scratch.op(o, TxnHeader(clientID: SessionID(session), cxid: 0, zxid: Zxid(m.lastZxid + 1), time: 0, type: o.opCode))
            }
            return (.multi(ops), session)
        case 85..<91: return (.createSession(CreateSessionTxn(timeOut: Int32(int(2_000..<40_000)))), session)
        case 91..<96:
            let paths = chance(50) ? m.ephemerals(of: session) : nil
            return (.closeSession(CloseSessionTxn(paths2Delete: paths)), session)
        default:
            return (.error([.noNode, .nodeExists, .badVersion, .noAuth][int(0..<4)]), session)
        }
    }
}

@Suite struct ModelTests {
    struct Mismatch: Error, CustomStringConvertible {
        var description: String
    }

    /// 10,000 random txns, applied in random batches to the store and to the model, compared
    /// after every txn (the result, then the whole tree through the batch's own view).
    /// Replay a failure with KEEPER_TEST_SEED=<seed>.
    @Test func storeMatchesTheModelOverTenThousandRandomTxns() throws {
        let seed = testSeed()
        let steps = 10_000
        var config = StoreConfiguration()
        config.maxDataLength = 64
        let dir = try TemporaryDirectory()
        // Implicitly unwrapped so that it can be released before the same directory is
        // reopened (liblmdb forbids two handles on one environment in a process).
        var store: KeeperStore! = try KeeperStore(directory: dir.store, configuration: config)
        var reopened = 0
        var model = Model(maxData: 64)
        var gen = TxnGenerator(rng: SeededGenerator(seed: seed))
        var step = 0
        var time: Int64 = 1_000_000
        var succeeded: [OpCode: Int] = [:]
        var failed = 0

        func fail(_ what: String) -> Mismatch {
            Mismatch(description: "seed \(seed) (KEEPER_TEST_SEED=\(seed)), txn \(step): \(what)")
        }

        func compareTree(_ view: StoreView, deep: Bool) throws {
            var seen = 0
            try view.forEachNode { node in
                seen += 1
                guard let stat = model.stat(node.path) else { throw fail("store has \(node.path), model has not") }
                guard node.stat == stat else { throw fail("stat of \(node.path): store \(node.stat), model \(stat)") }
                guard node.data == model.nodes[node.path]!.data else { throw fail("data of \(node.path) differs") }
                guard node.kind == model.kind(node.path) else { throw fail("kind of \(node.path) differs") }
                return true
            }
            guard seen == model.nodes.count else { throw fail("store has \(seen) nodes, model \(model.nodes.count)") }
            guard deep else { return }
            for (path, n) in model.nodes {
                guard try view.acl(at: path)?.acl == n.acl else { throw fail("ACL of \(path) differs") }
                guard try view.children(of: path)?.names == n.children.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) else {
                    throw fail("children of \(path) differ")
                }
                guard try view.childCreateCount(of: path) == n.creates else { throw fail("create counter of \(path) differs") }
            }
            for s in gen.sessionPool {
                guard try view.ephemerals(of: SessionID(s)) == model.ephemerals(of: s) else { throw fail("ephemerals of \(s) differ") }
            }
            let sessions = try view.sessions().map { ($0.sessionID.rawValue, $0.timeout) }
            guard sessions.map(\.0) == model.sessions.keys.sorted(), sessions.allSatisfy({ model.sessions[$0.0] == $0.1 }) else {
                throw fail("sessions differ")
            }
            let containers = model.nodes.keys.filter { model.kind($0) == .container }.sorted()
            guard try view.containers().map(\.path) == containers else { throw fail("container index differs") }
            let kept = try view.digest()
            let recomputed = try view.recomputeDigest()
            guard kept == recomputed else { throw fail("maintained digest \(kept) != recomputed \(recomputed)") }
            guard kept.value == model.digest() else { throw fail("digest differs from the model's") }
        }

        do {
            while step < steps {
                let batchSize = min(gen.int(1..<17), steps - step)
                try store.write { batch in
                    for _ in 0..<batchSize {
                        step += 1
                        time += Int64(gen.int(0..<50))
                        let (txn, session) = gen.next(model)
                        let entry = TxnEntry(
                            header: TxnHeader(clientID: SessionID(session), cxid: Int32(step), zxid: Zxid(Int64(step)), time: time, type: txn.opCode),
                            txn: txn)
                        let got = try batch.apply(entry)
                        let want = model.apply(entry)
                        if want.error == .ok { succeeded[txn.opCode, default: 0] += 1 } else { failed += 1 }
                        guard got.error == want.error else { throw fail("\(txn): error \(got.error), model \(want.error)") }
                        guard got.changes == want.changes else { throw fail("\(txn): changes \(got.changes), model \(want.changes)") }
                        if case .multi = txn {
                            guard got.multi.map(\.error) == want.multi else { throw fail("multi codes \(got.multi.map(\.error)), model \(want.multi)") }
                        } else if got.error == .ok {
                            guard got.stat == want.stat, got.path == want.path else { throw fail("\(txn): stat \(String(describing: got.stat)), model \(String(describing: want.stat))") }
                        }
                        try compareTree(batch.view, deep: step % 250 == 0)
                    }
                }
                // Now and then, reopen the store: what was committed must all come back.
                if step / 2_500 > reopened {
                    reopened += 1
                    store = nil
                    store = try KeeperStore(directory: dir.store, configuration: config)
                    try store.read { view in try compareTree(view, deep: true) }
                    guard try store.lastAppliedZxid() == Zxid(Int64(step)) else { throw fail("reopened at another zxid") }
                }
            }
            try store.read { view in try compareTree(view, deep: true) }
            #expect(try store.lastAppliedZxid() == Zxid(Int64(steps)))
            // The mix must exercise every kind of txn, succeeding and failing.
            for op: OpCode in [.create, .create2, .createContainer, .createTTL, .delete, .setData, .setACL, .multi, .createSession, .closeSession] {
                #expect(succeeded[op, default: 0] >= 20, "only \(succeeded[op, default: 0]) successful \(op) (seed \(seed))")
            }
            #expect(failed >= steps / 10, "only \(failed) failing txns (seed \(seed))")
        } catch let m as Mismatch {
            Issue.record("\(m)")
        } catch {
            Issue.record("seed \(seed) (KEEPER_TEST_SEED=\(seed)), txn \(step): \(error)")
        }
    }
}
