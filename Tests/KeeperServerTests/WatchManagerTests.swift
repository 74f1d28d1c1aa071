import KeeperModel
import Testing

@testable import KeeperServer

@Suite struct WatchManagerTests {
    func fire(_ m: WatchManager, _ changes: [TreeChange]) -> [WatchDelivery] {
        m.commitAndTrigger { ((), changes.map { ($0, 7) }) }.1
    }

    func events(_ d: [WatchDelivery]) -> [String] {
        d.map { "\($0.watcher) \($0.event.type) \($0.event.path)" }
    }

    @Test func oneShotDataWatchFiresOnce() {
        let m = WatchManager()
        m.register(.data("/a"), for: 1)
        #expect(events(fire(m, [.dataChanged("/a")])) == ["1 nodeDataChanged /a"])
        #expect(fire(m, [.dataChanged("/a")]).isEmpty)
    }

    @Test func createFiresExistsWatchAndParentChildWatch() {
        let m = WatchManager()
        m.register(.data("/p/c"), for: 1)
        m.register(.children("/p"), for: 2)
        #expect(events(fire(m, [.created("/p/c")])) == ["1 nodeCreated /p/c", "2 nodeChildrenChanged /p"])
    }

    @Test func deleteFiresDataAndChildWatchOnceAndParent() {
        let m = WatchManager()
        m.register(.data("/p/c"), for: 1)
        m.register(.children("/p/c"), for: 1)
        m.register(.children("/p/c"), for: 3)
        m.register(.children("/p"), for: 2)
        let got = events(fire(m, [.deleted("/p/c")]))
        #expect(got == ["1 nodeDeleted /p/c", "3 nodeDeleted /p/c", "2 nodeChildrenChanged /p"])
    }

    @Test func childDataChangeDoesNotFireParentChildWatch() {
        let m = WatchManager()
        m.register(.children("/p"), for: 2)
        #expect(fire(m, [.dataChanged("/p/c")]).isEmpty)
    }

    @Test func persistentWatchStaysAndSeesChildren() {
        let m = WatchManager()
        m.register(.persistent("/p", recursive: false), for: 1)
        #expect(events(fire(m, [.dataChanged("/p")])) == ["1 nodeDataChanged /p"])
        #expect(events(fire(m, [.dataChanged("/p")])) == ["1 nodeDataChanged /p"])
        #expect(events(fire(m, [.created("/p/c")])) == ["1 nodeChildrenChanged /p"])
        #expect(fire(m, [.dataChanged("/p/c")]).isEmpty)
    }

    @Test func latestRegistrationReplacesTheMode() {
        // ZooKeeper 3.8 keeps one mode per watcher and path: a one-shot watch set after a
        // persistent one is consumed by the next event, and a recursive one set on the same
        // path stops NodeChildrenChanged.
        let m = WatchManager()
        m.register(.persistent("/p", recursive: false), for: 1)
        m.register(.data("/p"), for: 1)
        #expect(events(fire(m, [.dataChanged("/p")])) == ["1 nodeDataChanged /p"])
        #expect(fire(m, [.dataChanged("/p")]).isEmpty)
        m.register(.persistent("/q", recursive: false), for: 1)
        m.register(.persistent("/q", recursive: true), for: 1)
        #expect(events(fire(m, [.created("/q/k")])) == ["1 nodeCreated /q/k"])
    }

    @Test func recursiveWatchSeesDescendantsButNoChildrenEvents() {
        let m = WatchManager()
        m.register(.persistent("/p", recursive: true), for: 1)
        #expect(events(fire(m, [.created("/p/c/d")])) == ["1 nodeCreated /p/c/d"])
        #expect(events(fire(m, [.dataChanged("/p/c")])) == ["1 nodeDataChanged /p/c"])
        #expect(events(fire(m, [.deleted("/p")])) == ["1 nodeDeleted /p"])
        #expect(fire(m, [.created("/q")]).isEmpty)
        m.register(.persistent("/", recursive: true), for: 2)
        #expect(events(fire(m, [.created("/q")])) == ["2 nodeCreated /q"])
    }

    @Test func removeAndCheckWatches() {
        let m = WatchManager()
        m.register(.data("/a"), for: 1)
        #expect(m.watches("/a", type: .data, watcher: 1, remove: false))
        // checkWatches in ZooKeeper 3.8 asks whether anyone watches the path.
        #expect(m.watches("/a", type: .data, watcher: 2, remove: false))
        #expect(!m.watches("/a", type: .data, watcher: 2, remove: true))
        #expect(!m.watches("/a", type: .children, watcher: 1, remove: false))
        #expect(m.watches("/a", type: .any, watcher: 1, remove: true))
        #expect(!m.watches("/a", type: .any, watcher: 1, remove: false))
        m.register(.persistent("/b", recursive: false), for: 1)
        #expect(m.watches("/b", type: .children, watcher: 1, remove: true))
        #expect(m.watches("/b", type: .data, watcher: 1, remove: true))
        #expect(m.summary().total == 0)
    }

    @Test func closingConnectionDropsItsWatches() {
        let m = WatchManager()
        m.register(.data("/a"), for: 1)
        m.register(.persistent("/", recursive: true), for: 1)
        m.register(.data("/a"), for: 2)
        m.removeAll(of: 1)
        #expect(events(fire(m, [.dataChanged("/a")])) == ["2 nodeDataChanged /a"])
        #expect(m.summary().total == 0)
    }
}

@Suite struct AuthenticationTests {
    @Test func sha1KnownVectors() {
        func hex(_ s: String) -> String { SHA1.hash(Array(s.utf8)).map { String(format2($0)) }.joined() }
        #expect(hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(hex(String(repeating: "a", count: 1000)) == "291e9a6c66994949b57ba5e650361e98fc36b1ba")
    }

    func format2(_ b: UInt8) -> String {
        let s = String(b, radix: 16)
        return s.count == 1 ? "0" + s : s
    }

    @Test func zooKeeperDigestOfSuperTest() {
        // The example of ZooKeeper's admin guide: super:test.
        #expect(Authentication.digest("super:test") == "super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
    }

    @Test func digestAuthAndSuper() {
        let ids = Authentication.authenticate(
            scheme: "digest", auth: Array("super:test".utf8), superDigest: "super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
            remoteAddress: "127.0.0.1")
        #expect(ids?.contains(Id(scheme: "super", id: "")) == true)
        #expect(Authentication.authenticate(scheme: "kerberos", auth: [], superDigest: nil, remoteAddress: "127.0.0.1") == nil)
        // ZooKeeper hashes whatever it gets; the ip scheme vouches for the connection's address.
        #expect(Authentication.authenticate(scheme: "digest", auth: Array("nocolon".utf8), superDigest: nil, remoteAddress: "h")?.count == 1)
        #expect(Authentication.authenticate(scheme: "ip", auth: Array("10.0.0.1".utf8), superDigest: nil, remoteAddress: "127.0.0.1") == [Id(scheme: "ip", id: "127.0.0.1")])
    }

    @Test func aclChecks() {
        let alice = Id(scheme: "digest", id: Authentication.digest("alice:pw"))
        let acl = [ACL(perms: [.read, .write], id: alice), ACL(perms: .read, id: Id(scheme: "ip", id: "10.1.0.0/16"))]
        #expect(Authentication.allows(acl, .write, authIds: [alice]))
        #expect(!Authentication.allows(acl, .delete, authIds: [alice]))
        #expect(Authentication.allows(acl, .read, authIds: [Id(scheme: "ip", id: "10.1.2.3")]))
        #expect(!Authentication.allows(acl, .read, authIds: [Id(scheme: "ip", id: "10.2.2.3")]))
        #expect(Authentication.allows(acl, .admin, authIds: [Id(scheme: "super", id: "")]))
        #expect(Authentication.allows(ACL.openUnsafe, .admin, authIds: []))
        #expect(Authentication.allows([], .admin, authIds: []))
    }

    @Test func fixupResolvesAuthAndRefusesBadLists() {
        let alice = Id(scheme: "digest", id: Authentication.digest("alice:pw"))
        #expect(Authentication.fixup(ACL.creatorAll, authIds: [Id(scheme: "ip", id: "127.0.0.1"), alice]) == [ACL(perms: .all, id: alice)])
        #expect(Authentication.fixup(ACL.creatorAll, authIds: [Id(scheme: "ip", id: "127.0.0.1")]) == nil)
        #expect(Authentication.fixup([], authIds: []) == nil)
        #expect(Authentication.fixup([ACL(perms: .all, id: Id(scheme: "world", id: "someone"))], authIds: []) == nil)
        #expect(Authentication.fixup([ACL(perms: .all, id: Id(scheme: "ip", id: "300.1.1.1"))], authIds: []) == nil)
        #expect(Authentication.fixup(ACL.openUnsafe + ACL.openUnsafe, authIds: []) == ACL.openUnsafe)
    }

    @Test func cidr() {
        #expect(CIDR("::1")?.contains("::1") == true)
        #expect(CIDR("fe80::/10")?.contains("fe80::1:2") == true)
        #expect(CIDR("192.168.0.0/24")?.contains("192.168.0.77") == true)
        #expect(CIDR("192.168.0.0/24")?.contains("192.168.1.77") == false)
        #expect(CIDR("1.2.3") == nil)
    }
}

@Suite struct SessionTrackerTests {
    @Test func expiresOnTickBoundaryUnlessTouched() {
        var t = SessionTracker(tickTime: 100, serverID: 1, wallClockMillis: 1_700_000_000_000)
        let a = t.allocateID()
        let b = t.allocateID()
        #expect(a != b)
        #expect(UInt64(bitPattern: a.rawValue) >> 56 == 1)
        t.add(a, timeout: 300, now: 0)
        t.add(b, timeout: 300, now: 0)
        #expect(t.expire(now: 250).isEmpty)
        t.touch(b, now: 250)
        #expect(t.expire(now: 400) == [a])
        #expect(t.expire(now: 400).isEmpty)
        #expect(t.expire(now: 600) == [b])
    }

    @Test func negotiateClamps() {
        #expect(SessionTracker.negotiate(1000, min: 4000, max: 40000) == 4000)
        #expect(SessionTracker.negotiate(100000, min: 4000, max: 40000) == 40000)
        #expect(SessionTracker.negotiate(10000, min: 4000, max: 40000) == 10000)
    }
}
