import KeeperModel
import Testing

@testable import KeeperStore

/// Every Stat rule of ZooKeeper's DataTree, one test each, with the figures the real
/// ZooKeeper 3.8 shows.
@Suite struct StatRulesTests {
    @Test func freshStoreHasZooKeepersSystemNodes() throws {
        let h = try Harness()
        try h.store.read { view throws in
            #expect(try view.stat(at: "/") == Stat(cversion: -1, numChildren: 1))
            #expect(try view.stat(at: "/zookeeper") == Stat(cversion: -2, numChildren: 2))
            #expect(try view.stat(at: "/zookeeper/quota") == Stat())
            #expect(try view.stat(at: "/zookeeper/config") == Stat(aversion: -1))
            #expect(try view.acl(at: "/zookeeper/config")?.acl == ACL.readUnsafe)
            #expect(try view.acl(at: "/")?.acl == ACL.openUnsafe)
            #expect(try view.children(of: "/")?.names == ["zookeeper"])
            #expect(try view.children(of: "/zookeeper")?.names == ["config", "quota"])
            #expect(try view.lastAppliedZxid() == .zero)
            #expect(try view.childCreateCount(of: "/") == 0)
            #expect(try view.allChildrenNumber(of: "/") == 3)
        }
        #expect(try h.store.verifyDigest().nodeCount == 4)
    }

    @Test func createSetsZxidsTimesAndMovesTheParent() throws {
        let h = try Harness()
        let r = try h.create("/a", "hello")
        #expect(r.error == .ok)
        #expect(r.path == "/a")
        #expect(r.changes == [.created("/a"), .childrenChanged("/")])
        let s = try #require(try h.stat("/a"))
        #expect(s == Stat(czxid: 1, mzxid: 1, ctime: h.time, mtime: h.time, dataLength: 5, pzxid: 1))
        #expect(r.stat == s)
        let root = try #require(try h.stat("/"))
        #expect(root.cversion == 0)  // stored 1 create, 2 children: 1*2-2
        #expect(root.numChildren == 2)
        #expect(root.pzxid == 1)
        #expect(root.mzxid == 0)
    }

    @Test func childDataChangeMovesNeitherCversionNorPzxid() throws {
        let h = try Harness()
        try h.create("/p")
        try h.create("/p/c", "1")
        let before = try #require(try h.stat("/p"))
        let r = try h.apply(.setData(SetDataTxn(path: "/p/c", data: Array("22".utf8), version: 1)))
        #expect(r.changes == [.dataChanged("/p/c")])
        #expect(try h.stat("/p") == before)
        let c = try #require(try h.stat("/p/c"))
        #expect(c.version == 1)
        #expect(c.mzxid == 3)
        #expect(c.mtime == h.time)
        #expect(c.czxid == 2)
        #expect(c.dataLength == 2)
        #expect(c.pzxid == 2)
    }

    @Test func cversionCountsCreatesAndDeletesButTheSuffixOnlyCreates() throws {
        // The fact verified against ZooKeeper 3.8: create s- (s-0000000000), create x,
        // delete x, create s- gives s-0000000002 and cversion 4.
        let h = try Harness()
        try h.create("/p")
        func sequential() throws -> TxnResult {
            let count = try #require(try h.store.read { try $0.childCreateCount(of: "/p") })
            return try h.create("/p/s-" + ZNodePath.sequenceSuffix(count), parentCVersion: count + 1)
        }
        #expect(try sequential().path == "/p/s-0000000000")
        try h.create("/p/x")
        let del = try h.apply(.delete(DeleteTxn(path: "/p/x")))
        #expect(del.changes == [.deleted("/p/x"), .childrenChanged("/p")])
        #expect(try h.stat("/p")?.cversion == 3)
        #expect(try h.stat("/p")?.pzxid == 4)
        #expect(try sequential().path == "/p/s-0000000002")
        let p = try #require(try h.stat("/p"))
        #expect(p.cversion == 4)
        #expect(p.numChildren == 2)
        #expect(p.pzxid == 5)
    }

    @Test func parentCVersionIsOnlyRaisedNeverLowered() throws {
        let h = try Harness()
        try h.create("/p")
        try h.create("/p/a", parentCVersion: 5)
        #expect(try h.store.read { try $0.childCreateCount(of: "/p") } == 5)
        #expect(try h.stat("/p")?.pzxid == 2)
        // A replayed create carrying a lower counter neither lowers it nor moves pzxid.
        try h.create("/p/b", parentCVersion: 3)
        #expect(try h.store.read { try $0.childCreateCount(of: "/p") } == 5)
        #expect(try h.stat("/p")?.pzxid == 2)
        #expect(try h.stat("/p")?.numChildren == 2)
    }

    @Test func recreatedNodeStartsAtVersionZero() throws {
        let h = try Harness()
        try h.create("/a", "x")
        try h.apply(.setData(SetDataTxn(path: "/a", data: [1], version: 1)))
        try h.apply(.setACL(SetACLTxn(path: "/a", acl: ACL.readUnsafe, version: 1)))
        try h.apply(.delete(DeleteTxn(path: "/a")))
        #expect(try h.stat("/a") == nil)
        let r = try h.create("/a")
        let s = try #require(r.stat)
        #expect(s.version == 0)
        #expect(s.aversion == 0)
        #expect(s.cversion == 0)
        #expect(s.czxid == 5)
        #expect(try h.store.read { try $0.acl(at: "/a")?.acl } == ACL.openUnsafe)
    }

    @Test func setACLMovesOnlyAversion() throws {
        let h = try Harness()
        try h.create("/a", "x")
        let before = try #require(try h.stat("/a"))
        let r = try h.apply(.setACL(SetACLTxn(path: "/a", acl: ACL.creatorAll, version: 1)))
        #expect(r.changes.isEmpty)
        var expected = before
        expected.aversion = 1
        #expect(try h.stat("/a") == expected)
        #expect(r.stat == expected)
    }

    @Test func childrenOfEphemeralsAreRefused() throws {
        let h = try Harness()
        try h.apply(.createSession(CreateSessionTxn(timeOut: 30_000)), session: 7)
        let e = try h.create("/e", kind: .ephemeral, session: 7)
        #expect(e.stat?.ephemeralOwner == 7)
        let r = try h.create("/e/child")
        #expect(r.error == .noChildrenForEphemerals)
        #expect(r.changes.isEmpty)
        #expect(try h.stat("/e")?.numChildren == 0)
        #expect(try h.stat("/e")?.cversion == 0)
        #expect(try h.store.lastAppliedZxid() == Zxid(3))  // the failed txn consumed its zxid
    }

    @Test func containerAndTTLShowOwnerZeroAndAreIndexed() throws {
        let h = try Harness()
        let c = try h.apply(.createContainer(CreateTxn(path: "/c", data: [], acl: ACL.openUnsafe, kind: .container)))
        #expect(c.stat?.ephemeralOwner == 0)
        let t = try h.apply(.createTTL(CreateTxn(path: "/t", data: [], acl: ACL.openUnsafe, kind: .ttl(60_000))))
        #expect(t.stat?.ephemeralOwner == 0)
        try h.create("/c/x")
        try h.apply(.delete(DeleteTxn(path: "/c/x")))
        try h.store.read { view throws in
            #expect(try view.kind(at: "/c") == .container)
            #expect(try view.kind(at: "/t") == .ttl(milliseconds: 60_000))
            let containers = try view.containers()
            #expect(containers.map(\.path) == ["/c"])
            #expect(containers.first?.numChildren == 0)
            #expect(containers.first?.cversion == 2)
            let ttls = try view.ttlNodes()
            #expect(ttls.map(\.path) == ["/t"])
            #expect(ttls.first?.ttl == 60_000)
            #expect(ttls.first?.mtime == 1_020)
        }
        try h.apply(.deleteContainer(DeleteTxn(path: "/c")))
        try h.apply(.delete(DeleteTxn(path: "/t")))
        try h.store.read { view throws in
            #expect(try view.containers().isEmpty)
            #expect(try view.ttlNodes().isEmpty)
        }
        // A TTL out of range is refused, as ZooKeeper refuses it.
        let bad = try h.apply(.createTTL(CreateTxn(path: "/bad", data: [], acl: ACL.openUnsafe, kind: .ttl(0))))
        #expect(bad.error == .badArguments)
    }

    @Test func dataOverTheLimitIsBadArguments() throws {
        var config = StoreConfiguration()
        config.maxDataLength = 10
        let h = try Harness(configuration: config)
        #expect(try h.create("/ok", "0123456789").error == .ok)
        #expect(try h.create("/big", "0123456789A").error == .badArguments)
        let r = try h.apply(.setData(SetDataTxn(path: "/ok", data: [UInt8](repeating: 0, count: 11), version: 1)))
        #expect(r.error == .badArguments)
        #expect(try h.stat("/ok")?.version == 0)
    }

    @Test func errorsChangeNothing() throws {
        let h = try Harness()
        try h.create("/a")
        try h.create("/a/b")
        let digest = try h.store.digest()
        #expect(try h.create("/a").error == .nodeExists)
        #expect(try h.create("/missing/x").error == .noNode)
        #expect(try h.create("/bad//path").error == .badArguments)
        #expect(try h.create("/nullacl", acl: []).error == .invalidACL)
        #expect(try h.apply(.delete(DeleteTxn(path: "/a"))).error == .notEmpty)
        #expect(try h.apply(.delete(DeleteTxn(path: "/zz"))).error == .noNode)
        #expect(try h.apply(.delete(DeleteTxn(path: "/zookeeper/config"))).error == .badArguments)
        #expect(try h.apply(.setData(SetDataTxn(path: "/zz", data: [], version: 1))).error == .noNode)
        #expect(try h.apply(.setACL(SetACLTxn(path: "/zz", acl: ACL.openUnsafe, version: 1))).error == .noNode)
        #expect(try h.apply(.error(.badVersion)).error == .badVersion)
        let long = "/" + String(repeating: "x", count: h.store.maxPathBytes)
        #expect(try h.create(long).error == .badArguments)
        #expect(try h.create(String(long.dropLast())).error == .ok)
        let after = try h.store.digest()
        #expect(after.zxid == Zxid(14))
        #expect(after.nodeCount == digest.nodeCount + 1)
        try h.store.verifyDigest()
    }

    @Test func zxidsAtOrBelowTheLastAppliedAreRejected() throws {
        let h = try Harness()
        try h.create("/a")
        h.zxid = 0
        #expect(throws: StoreError.zxidNotAfterLastApplied(zxid: Zxid(1), lastApplied: Zxid(1))) {
            try h.create("/b")
        }
        #expect(try h.stat("/b") == nil)
        h.zxid = 10
        try h.create("/b")
        #expect(try h.store.lastAppliedZxid() == Zxid(11))
    }

    @Test func multiIsAllOrNothingWithPerOpResults() throws {
        let h = try Harness()
        try h.create("/a")
        let digest = try h.store.digest()
        let failing = try h.apply(
            .multi([
                .create(CreateTxn(path: "/m1", data: [], acl: ACL.openUnsafe, kind: .persistent)),
                .setData(SetDataTxn(path: "/a", data: [1], version: 1)),
                .delete(DeleteTxn(path: "/nope")),
                .create(CreateTxn(path: "/m2", data: [], acl: ACL.openUnsafe, kind: .persistent)),
            ]))
        #expect(failing.error == .noNode)
        #expect(failing.multi.map(\.error) == [.ok, .ok, .noNode, .runtimeInconsistency])
        #expect(failing.multi.allSatisfy { $0.type == .error })
        #expect(failing.changes.isEmpty)
        #expect(try h.stat("/m1") == nil)
        #expect(try h.stat("/a")?.version == 0)
        var d = try h.store.digest()
        #expect(d.value == digest.value)
        #expect(d.nodeCount == digest.nodeCount)
        try h.store.verifyDigest()

        let ok = try h.apply(
            .multi([
                .create(CreateTxn(path: "/m1", data: [], acl: ACL.openUnsafe, kind: .persistent)),
                .create(CreateTxn(path: "/m1/c", data: [], acl: ACL.openUnsafe, kind: .persistent)),
                .check(CheckVersionTxn(path: "/a", version: 1)),
                .setData(SetDataTxn(path: "/a", data: [1], version: 1)),
            ]))
        #expect(ok.error == .ok)
        #expect(ok.multi.map(\.type) == [.create, .create, .check, .setData])
        #expect(
            ok.changes == [
                .created("/m1"), .childrenChanged("/"), .created("/m1/c"), .childrenChanged("/m1"),
                .dataChanged("/a"),
            ])
        #expect(try h.stat("/m1/c")?.czxid == 3)
        d = try h.store.verifyDigest()
        #expect(d.nodeCount == digest.nodeCount + 2)

        // A multi that failed at prep is logged with error txns: nothing applies.
        let logged = try h.apply(
            .multi([.error(.ok), .error(.nodeExists), .error(.runtimeInconsistency)]))
        #expect(logged.error == .nodeExists)
        #expect(logged.multi.map(\.error) == [.ok, .nodeExists, .runtimeInconsistency])
    }

    @Test func sessionsAndTheirEphemeralsAreReplicatedState() throws {
        let h = try Harness()
        try h.apply(.createSession(CreateSessionTxn(timeOut: 4_000)), session: 5)
        try h.apply(.createSession(CreateSessionTxn(timeOut: 6_000)), session: 9)
        try h.create("/p")
        try h.create("/p/e1", kind: .ephemeral, session: 5)
        try h.create("/e2", kind: .ephemeral, session: 5)
        try h.create("/e3", kind: .ephemeral, session: 9)
        #expect(try h.store.read { try $0.ephemerals(of: SessionID(5)) } == ["/e2", "/p/e1"])
        #expect(
            try h.store.read { try $0.sessions() }
                == [SessionRecord(sessionID: SessionID(5), timeout: 4_000), SessionRecord(sessionID: SessionID(9), timeout: 6_000)])
        let closed = try h.apply(.closeSession(CloseSessionTxn(paths2Delete: ["/p/e1"])), session: 5)
        #expect(
            closed.changes == [.deleted("/e2"), .childrenChanged("/"), .deleted("/p/e1"), .childrenChanged("/p")])
        #expect(try h.stat("/e2") == nil)
        #expect(try h.stat("/p")?.pzxid == 7)
        #expect(try h.store.read { try $0.ephemerals(of: SessionID(5)) }.isEmpty)
        // Sessions survive a reopen, so a restarted server can revive them.
        let dir = h.store.directory
        h.store = try KeeperStore(directory: dir)
        #expect(try h.store.read { try $0.sessions() } == [SessionRecord(sessionID: SessionID(9), timeout: 6_000)])
        #expect(try h.store.read { try $0.ephemerals(of: SessionID(9)) } == ["/e3"])
        #expect(try h.store.lastAppliedZxid() == Zxid(7))
    }

    @Test func childListingsAndCounts() throws {
        let h = try Harness()
        try h.create("/a")
        for name in ["zeta", "alpha", "mid", "b"] { try h.create("/a/" + name, name) }
        try h.create("/a/mid/deep")
        try h.create("/ab")
        try h.store.read { view throws in
            let listing = try #require(try view.children(of: "/a"))
            #expect(listing.names == ["alpha", "b", "mid", "zeta"])
            #expect(listing.stat.numChildren == 4)
            let stats = try #require(try view.childStats(of: "/a"))
            #expect(stats.map(\.name) == ["alpha", "b", "mid", "zeta"])
            #expect(stats.map(\.stat.dataLength) == [5, 1, 3, 4])
            #expect(try view.childCount(of: "/a") == 4)
            #expect(try view.allChildrenNumber(of: "/a") == 5)
            #expect(try view.allChildrenNumber(of: "/") == 3 + 7)
            #expect(try view.children(of: "/nope") == nil)
            #expect(try view.node(at: "/a/zeta")?.data == Array("zeta".utf8))
            #expect(try view.exists("/ab"))
            #expect(try !view.exists("not a path"))
        }
    }

    @Test func equalACLListsAreStoredOnce() throws {
        let h = try Harness()
        let custom = [ACL(perms: [.read, .write], id: Id(scheme: "digest", id: "u:hash"))]
        for i in 0..<50 { try h.create("/n\(i)", acl: i % 2 == 0 ? ACL.openUnsafe : custom) }
        let entries = try h.store.environment.read { try $0.statistics(h.store.dbs.acls).entries }
        #expect(entries == 3)  // open, read-only (/zookeeper/config), custom
        for i in stride(from: 1, to: 50, by: 2) { try h.apply(.delete(DeleteTxn(path: "/n\(i)"))) }
        let after = try h.store.environment.read { try $0.statistics(h.store.dbs.acls).entries }
        #expect(after == 2)  // the last reference to `custom` is gone and so is its entry
        #expect(try h.store.read { try $0.acl(at: "/n0")?.acl } == ACL.openUnsafe)
    }

    @Test func sipHashMatchesTheReferenceVectors() {
        // SipHash-2-4 paper, appendix A: key 00..0f, messages 00..(n-1).
        let expected: [Int: UInt64] = [0: 0x726f_db47_dd0e_0e31, 15: 0xa129_ca61_49be_45e5, 63: 0x958a_324c_eb06_4572]
        for (n, value) in expected {
            var h = SipHash24(key0: 0x0706_0504_0302_0100, key1: 0x0f0e_0d0c_0b0a_0908)
            // Fed in uneven pieces to exercise the buffering.
            let message = (0..<n).map { UInt8($0) }
            var i = 0
            while i < n {
                let step = min(n - i, 1 + i % 5)
                h.update(Array(message[i..<(i + step)]))
                i += step
            }
            #expect(h.finalize() == value, "n = \(n)")
        }
    }
}

extension StatRulesTests {
    /// Words and byte runs fed at every alignment give the hash of the same bytes fed at once
    /// (the digest of every node depends on it; a stored digest must never change).
    @Test func sipHashOfPiecesAtEveryAlignmentIsTheHashOfTheBytes() {
        var state: UInt64 = 7
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 11
        }
        for _ in 0..<2_000 {
            var h = SipHash24()
            var message: [UInt8] = []
            for _ in 0..<Int(next() % 12) {
                if next() % 2 == 0 {
                    let value = next() &* 0x9E37_79B9_7F4A_7C15
                    h.update(value)
                    withUnsafeBytes(of: value.littleEndian) { message.append(contentsOf: $0) }
                } else {
                    let piece = (0..<Int(next() % 24)).map { _ in UInt8(truncatingIfNeeded: next()) }
                    h.update(piece)
                    message += piece
                }
            }
            #expect(h.finalize() == SipHash24.hash(referenceBytewise: message))
        }
    }
}

extension SipHash24 {
    /// The hash fed one byte at a time: the plainest path through the buffering.
    static func hash(referenceBytewise bytes: [UInt8]) -> UInt64 {
        var h = SipHash24()
        for b in bytes { h.update([b]) }
        return h.finalize()
    }
}

/// The usage example of KeeperStore's documentation (and the README), as a test.
@Suite struct DocumentationExampleTests {
    @Test func theDocumentedExampleWorks() throws {
        let dir = try TemporaryDirectory()
        let store = try KeeperStore(directory: dir.store)
        let header = TxnHeader(
            clientID: .none, cxid: 0, zxid: Zxid(epoch: 1, counter: 1), time: 1_700_000_000_000, type: .create)
        let create = CreateTxn(path: "/app", data: Array("v1".utf8), acl: ACL.openUnsafe, kind: .persistent)
        let result = try store.write { batch in
            try batch.apply(TxnEntry(header: header, txn: .create(create)))
        }
        #expect(result.error == .ok)
        #expect(result.changes == [.created("/app"), .childrenChanged("/")])
        let node = try store.read { view in try view.node(at: "/app") }
        #expect(node?.stat.version == 0)
        #expect(node?.data == Array("v1".utf8))
        try store.sync()
        #expect(try store.lastAppliedZxid() == Zxid(epoch: 1, counter: 1))
    }
}
