import KeeperModel
import Testing

@testable import KeeperServer

/// A committed tree for prep tests: a dictionary of records.
struct DictTree: CommittedTree {
    var nodes: [String: NodeRecord] = ["/": NodeRecord(stat: Stat(), childCreates: 0, acl: ACL.openUnsafe)]
    func record(_ path: String) -> NodeRecord? { nodes[path] }
    func ephemerals(of session: SessionID) -> [String] {
        nodes.filter { $0.value.stat.ephemeralOwner == session.rawValue }.map(\.key).sorted()
    }
}

@Suite struct PrepTests {
    let alice = RequestContext(session: SessionID(0x11), cxid: 1, authIds: [Id(scheme: "ip", id: "127.0.0.1")])

    func create(_ path: String, flags: Int32 = 0, opCode: OpCode = .create, ttl: Int64 = -1, acl: [ACL] = ACL.openUnsafe) -> WriteRequest {
        .create(opCode: opCode, path: path, data: Array("d".utf8), acl: acl, flags: flags, ttl: ttl)
    }

    func error(_ txn: Txn) -> KeeperErrorCode? {
        if case .error(let code) = txn { return code }
        return nil
    }

    @Test func errorOrderMatchesZooKeeper() {
        var prep = Prep()
        let tree = DictTree()
        #expect(error(prep.prepare(create("a"), context: alice, zxid: 1, time: 0, tree: tree)) == .badArguments)
        #expect(error(prep.prepare(create("/a//b"), context: alice, zxid: 2, time: 0, tree: tree)) == .noNode)
        #expect(error(prep.prepare(create("/"), context: alice, zxid: 3, time: 0, tree: tree)) == .nodeExists)
        #expect(error(prep.prepare(create("/x", acl: []), context: alice, zxid: 4, time: 0, tree: tree)) == .invalidACL)
        #expect(error(prep.prepare(create("/x", flags: 9), context: alice, zxid: 5, time: 0, tree: tree)) == .badArguments)
        #expect(error(prep.prepare(create("/x", flags: 5, opCode: .createTTL, ttl: 100), context: alice, zxid: 6, time: 0, tree: tree)) == .unimplemented)
        #expect(error(prep.prepare(.delete(opCode: .delete, path: "/zookeeper", version: -1), context: alice, zxid: 7, time: 0, tree: tree)) == .badArguments)
        #expect(error(prep.prepare(.setData(path: "/nope", data: [], version: -1), context: alice, zxid: 8, time: 0, tree: tree)) == .noNode)
    }

    @Test func pipelinedDependentCreatesSucceed() {
        var prep = Prep()
        let tree = DictTree()
        #expect(error(prep.prepare(create("/a"), context: alice, zxid: 1, time: 0, tree: tree)) == nil)
        #expect(error(prep.prepare(create("/a/b"), context: alice, zxid: 2, time: 0, tree: tree)) == nil)
        #expect(error(prep.prepare(create("/a/b"), context: alice, zxid: 3, time: 0, tree: tree)) == .nodeExists)
        #expect(error(prep.prepare(.delete(opCode: .delete, path: "/a", version: -1), context: alice, zxid: 4, time: 0, tree: tree)) == .notEmpty)
        prep.applied(upTo: 2)
        #expect(prep.outstandingCount == 0)
    }

    @Test func appliedChangesComeFromTheTreeAndAreSweptInBulk() {
        var prep = Prep()
        var tree = DictTree()
        #expect(error(prep.prepare(create("/a"), context: alice, zxid: 1, time: 0, tree: tree)) == nil)
        prep.applied(upTo: 1)
        // Applied: prep now asks the tree, which (in this test) never got /a.
        #expect(error(prep.prepare(create("/a/b"), context: alice, zxid: 2, time: 0, tree: tree)) == .noNode)
        tree.nodes["/a"] = NodeRecord(stat: Stat(version: 7), childCreates: 0, acl: ACL.openUnsafe)
        #expect(error(prep.prepare(.setData(path: "/a", data: [], version: 7), context: alice, zxid: 3, time: 0, tree: tree)) == nil)
        // In flight again: the pending version wins over the tree's.
        #expect(error(prep.prepare(.setData(path: "/a", data: [], version: 7), context: alice, zxid: 4, time: 0, tree: tree)) == .badVersion)
        #expect(prep.outstandingCount == 1)

        // Many applied changes: the stale entries are dropped once they reach the sweep size,
        // and the two still in flight (the last child and its parent) survive the sweep.
        tree.nodes["/p"] = NodeRecord(stat: Stat(), childCreates: 0, acl: ACL.openUnsafe)
        let count = Prep.minimumSweep + 10
        for i in 0..<count {
            #expect(error(prep.prepare(create("/p/n\(i)"), context: alice, zxid: Int64(10 + i), time: 0, tree: tree)) == nil)
        }
        #expect(prep.storedCount >= count)
        prep.applied(upTo: Int64(10 + count - 2))
        #expect(prep.storedCount == 2)
        #expect(prep.outstandingCount == 2)
        #expect(error(prep.prepare(create("/p/n\(count - 1)"), context: alice, zxid: Int64(10 + count), time: 0, tree: tree)) == .nodeExists)
        #expect(error(prep.prepare(create("/p/n0"), context: alice, zxid: Int64(11 + count), time: 0, tree: tree)) == nil)
    }

    @Test func sequentialNamesCountCreatesOnly() {
        var prep = Prep()
        var tree = DictTree()
        tree.nodes["/p"] = NodeRecord(stat: Stat(numChildren: 0), childCreates: 2, acl: ACL.openUnsafe)
        guard case .create(let txn) = prep.prepare(create("/p/s-", flags: 2), context: alice, zxid: 1, time: 0, tree: tree) else {
            Issue.record("expected a create")
            return
        }
        #expect(txn.path == "/p/s-0000000002")
        #expect(txn.parentCVersion == 3)
        guard case .create(let second) = prep.prepare(create("/p/s-", flags: 2), context: alice, zxid: 2, time: 0, tree: tree) else {
            Issue.record("expected a create")
            return
        }
        #expect(second.path == "/p/s-0000000003")
    }

    @Test func ephemeralParentsRefuseChildren() {
        var prep = Prep()
        let tree = DictTree()
        _ = prep.prepare(create("/e", flags: 1), context: alice, zxid: 1, time: 0, tree: tree)
        #expect(error(prep.prepare(create("/e/c"), context: alice, zxid: 2, time: 0, tree: tree)) == .noChildrenForEphemerals)
    }

    @Test func versionsAndACLs() {
        var prep = Prep()
        var tree = DictTree()
        let adminOnly = [ACL(perms: .admin, id: Id(scheme: "digest", id: "bob:x"))]
        tree.nodes["/n"] = NodeRecord(stat: Stat(version: 4), childCreates: 0, acl: adminOnly)
        #expect(error(prep.prepare(.setData(path: "/n", data: [], version: 4), context: alice, zxid: 1, time: 0, tree: tree)) == .noAuth)
        tree.nodes["/n"]?.acl = ACL.openUnsafe
        #expect(error(prep.prepare(.setData(path: "/n", data: [], version: 3), context: alice, zxid: 2, time: 0, tree: tree)) == .badVersion)
        guard case .setData(let set) = prep.prepare(.setData(path: "/n", data: [], version: 4), context: alice, zxid: 3, time: 0, tree: tree) else {
            Issue.record("expected setData")
            return
        }
        #expect(set.version == 5)
        // The pending change is seen by the next request of any session.
        #expect(error(prep.prepare(.check(path: "/n", version: 4), context: alice, zxid: 4, time: 0, tree: tree)) == .badVersion)
    }

    @Test func failedMultiRollsBackAndReportsPerOp() {
        var prep = Prep()
        let tree = DictTree()
        let txn = prep.prepare(
            .multi([create("/m"), create("/m/x"), .check(path: "/nope", version: 0), create("/q")]),
            context: alice, zxid: 1, time: 0, tree: tree)
        guard case .multi(let ops) = txn else {
            Issue.record("expected a multi")
            return
        }
        #expect(ops.count == 4)
        #expect(error(ops[2]) == .noNode)
        #expect(error(ops[3]) == .runtimeInconsistency)
        #expect(prep.outstandingCount == 0)
        // The rolled-back create is not visible to the next request.
        #expect(error(prep.prepare(create("/m/x"), context: alice, zxid: 2, time: 0, tree: tree)) == .noNode)
    }

    @Test func failedMultiRestoresTheChangesItReplaced() {
        var prep = Prep()
        var tree = DictTree()
        tree.nodes["/n"] = NodeRecord(stat: Stat(version: 0), childCreates: 0, acl: ACL.openUnsafe)
        // /n is pending at version 1, /p pending as created.
        #expect(error(prep.prepare(.setData(path: "/n", data: [], version: 0), context: alice, zxid: 1, time: 0, tree: tree)) == nil)
        #expect(error(prep.prepare(create("/p"), context: alice, zxid: 2, time: 0, tree: tree)) == nil)
        // A multi that sets /n twice, deletes /p, then fails: all three undone.
        let txn = prep.prepare(
            .multi([
                .setData(path: "/n", data: [], version: 1), .setData(path: "/n", data: [], version: 2),
                .delete(opCode: .delete, path: "/p", version: -1), .check(path: "/nope", version: 0),
            ]),
            context: alice, zxid: 3, time: 0, tree: tree)
        guard case .multi(let ops) = txn else {
            Issue.record("expected a multi")
            return
        }
        #expect(error(ops[3]) == .noNode)
        #expect(prep.outstandingCount == 3)  // "/n", "/p" and the root (/p's parent)
        #expect(error(prep.prepare(.check(path: "/n", version: 1), context: alice, zxid: 4, time: 0, tree: tree)) == nil)
        #expect(error(prep.prepare(create("/p"), context: alice, zxid: 5, time: 0, tree: tree)) == .nodeExists)
    }

    @Test func closeSessionListsCommittedAndPendingEphemerals() {
        var prep = Prep()
        var tree = DictTree()
        tree.nodes["/old"] = NodeRecord(stat: Stat(ephemeralOwner: 0x11), childCreates: 0, acl: ACL.openUnsafe)
        tree.nodes["/gone"] = NodeRecord(stat: Stat(ephemeralOwner: 0x11), childCreates: 0, acl: ACL.openUnsafe)
        _ = prep.prepare(create("/new", flags: 1), context: alice, zxid: 1, time: 0, tree: tree)
        _ = prep.prepare(.delete(opCode: .delete, path: "/gone", version: -1), context: alice, zxid: 2, time: 0, tree: tree)
        #expect(prep.prepare(.closeSession, context: alice, zxid: 3, time: 0, tree: tree) == .closeSession(CloseSessionTxn(paths2Delete: ["/new", "/old"])))
    }
}
