import Testing
@testable import KeeperModel

@Suite struct ZNodePathTests {
    @Test(arguments: ["/", "/a", "/a/b", "/a.b", "/..a", "/a/...", "/zookeeper", "/ü", "/\u{d7ff}"])
    func validPaths(_ path: String) throws {
        try ZNodePath.validate(path)
    }

    @Test(arguments: [
        ("", "Path length must be > 0"),
        ("a", "Path must start with / character"),
        ("/a/", "Path must not end with / character"),
        ("/a//b", "Invalid path string \"/a//b\" caused by empty node name specified @3"),
        ("/a/./b", "Invalid path string \"/a/./b\" caused by relative paths not allowed @3"),
        ("/a/..", "Invalid path string \"/a/..\" caused by relative paths not allowed @4"),
        ("/a\u{0}b", "Invalid path string \"/a\u{0}b\" caused by null character not allowed @2"),
        ("/a\u{1}", "Invalid path string \"/a\u{1}\" caused by invalid character @2"),
        ("/\u{fff5}", "Invalid path string \"/\u{fff5}\" caused by invalid character @1"),
        // Outside the BMP Java sees a surrogate pair, which ZooKeeper refuses.
        ("/a\u{1F600}", "Invalid path string \"/a\u{1F600}\" caused by invalid character @2"),
    ])
    func invalidPaths(_ path: String, _ message: String) {
        #expect(throws: ZNodePath.Invalid(path: path, message: message)) { try ZNodePath.validate(path) }
    }

    @Test func sequentialCreatesMayEndWithSlash() throws {
        try ZNodePath.validate("/a/", isSequential: true)
    }

    @Test func parentAndName() {
        #expect(ZNodePath.parent(of: "/") == nil)
        #expect(ZNodePath.parent(of: "/a") == "/")
        #expect(ZNodePath.parent(of: "/a/b/c") == "/a/b")
        #expect(ZNodePath.name(of: "/a/b/c") == "c")
        #expect(ZNodePath.child("x", of: "/") == "/x")
        #expect(ZNodePath.child("x", of: "/a") == "/a/x")
    }

    @Test func sequenceSuffixIsJavaPercent010d() {
        #expect(ZNodePath.sequenceSuffix(0) == "0000000000")
        #expect(ZNodePath.sequenceSuffix(42) == "0000000042")
        #expect(ZNodePath.sequenceSuffix(Int32.max) == "2147483647")
        #expect(ZNodePath.sequenceSuffix(-5) == "-000000005")
    }
}

@Suite struct ZxidTests {
    @Test func epochAndCounter() {
        let z = Zxid(epoch: 3, counter: 7)
        #expect(z.rawValue == 0x3_0000_0007)
        #expect(z.epoch == 3 && z.counter == 7)
        #expect(z.next == Zxid(epoch: 3, counter: 8))
        #expect(Zxid(epoch: 1, counter: .max).next == nil)
        #expect(z.description == "0x300000007")
    }

    @Test func ttlOwnerEncoding() {
        let owner = EphemeralOwner.ttl(1)
        #expect(owner.map { UInt64(bitPattern: $0) } == 0xff00_0000_0000_0001)
        #expect(EphemeralOwner.ttlValue(of: owner!) == 1)
        #expect(EphemeralOwner.ttl(0) == nil)
        #expect(EphemeralOwner.ttl(EphemeralOwner.maxTTL + 1) == nil)
        #expect(!EphemeralOwner.isSession(EphemeralOwner.container))
        #expect(EphemeralOwner.isSession(0x1234))
    }
}

@Suite struct ZNodePathFastPathTests {
    /// The ASCII fast path never accepts a path the full check refuses, and accepts every valid
    /// ASCII path (so the full check only runs for errors and non-ASCII names): every string of
    /// up to 6 characters over an alphabet of separators, dots, names and refused characters.
    @Test func fastPathAgreesWithTheFullCheck() {
        let alphabet: [Character] = ["/", ".", "a", "\u{0}", "\u{1f}", "\u{7f}", "~", "ü"]
        var fastAccepted = 0
        var paths: [String] = [""]
        var all: [String] = [""]
        for _ in 1...6 {
            paths = paths.flatMap { p in alphabet.map { p + String($0) } }
            all += paths
        }
        for path in all {
            for sequential in [false, true] {
                let full: Bool
                do {
                    try ZNodePath.validateScalars(
                        Array(sequential ? (path + "1").unicodeScalars : path.unicodeScalars), original: path)
                    full = true
                } catch {
                    full = false
                }
                let fast = ZNodePath.isValidASCII(path, isSequential: sequential)
                if fast { fastAccepted += 1 }
                #expect(!fast || full, "fast path accepted \(path.debugDescription) (sequential: \(sequential))")
                if full && path.utf8.allSatisfy({ $0 < 0x80 }) {
                    #expect(fast, "fast path refused valid \(path.debugDescription) (sequential: \(sequential))")
                }
            }
        }
        #expect(all.count == 299_593)
        #expect(fastAccepted > 1000)
    }
}
