import Foundation
import KeeperModel
import Testing

@testable import KeeperStore

private func createEntries(from first: Int64, count: Int64, dataSize: Int = 100) -> [TxnEntry] {
    (first..<(first + count)).map { z in
        TxnEntry(
            header: TxnHeader(clientID: .none, cxid: 0, zxid: Zxid(z), time: z, type: .create),
            txn: .create(
                CreateTxn(
                    path: "/n\(z)", data: [UInt8](repeating: UInt8(truncatingIfNeeded: z), count: dataSize),
                    acl: ACL.openUnsafe, kind: .persistent)))
    }
}

/// The directory of the running test binary, where SwiftPM also puts StoreCrashHelper.
private func buildDirectory() throws -> String {
    let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    return (exe as NSString).deletingLastPathComponent
}

@Suite struct DurabilityTests {
    /// SIGKILL a process in the middle of applying batches, reopen: the store is at a batch
    /// boundary at or after the last batch the process reported committed, and its tree,
    /// digest and last applied zxid agree. Three rounds on the same store.
    @Test func killedMidBatchTheStoreReopensAtABatchBoundary() throws {
        #if os(Linux)
        let helper = try buildDirectory() + "/StoreCrashHelper"
        try #require(FileManager.default.isExecutableFile(atPath: helper), "StoreCrashHelper not built at \(helper)")
        let dir = try TemporaryDirectory()
        let batch: Int64 = 1_000
        var reported: Int64 = 0
        var killedInside = 0
        for round in 1...3 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: helper)
            process.arguments = [dir.store, String(batch), "100000"]
            let out = Pipe()
            process.standardOutput = out
            try process.run()
            var buffer = ""
            var committed = 0
            var killed = false
            reading: while true {
                let data = out.fileHandleForReading.availableData
                if data.isEmpty { break }
                buffer += String(decoding: data, as: UTF8.self)
                while let newline = buffer.firstIndex(of: "\n") {
                    let line = String(buffer[..<newline])
                    buffer = String(buffer[buffer.index(after: newline)...])
                    if line.hasPrefix("committed ") {
                        reported = Int64(line.dropFirst("committed ".count))!
                        committed += 1
                    } else if line.hasPrefix("begin ") && committed == 2 + round {
                        // Kill while this batch is being applied (a 1,000-txn batch takes
                        // far longer than the line takes to arrive).
                        #expect(kill(process.processIdentifier, SIGKILL) == 0)
                        killed = true
                        break reading
                    } else if line.hasPrefix("error") {
                        Issue.record("helper failed: \(line)")
                        break reading
                    }
                }
            }
            process.waitUntilExit()
            try #require(killed, "the helper ended before it could be killed")
            #expect(process.terminationReason == .uncaughtSignal)

            let store = try KeeperStore(directory: dir.store)
            let last = try store.lastAppliedZxid().rawValue
            #expect(last % batch == 0, "round \(round): stopped inside a batch at \(last)")
            #expect(last >= reported, "round \(round): lost a reported batch (\(last) < \(reported))")
            #expect(last <= reported + batch, "round \(round): more than the batch in flight applied")
            if last == reported { killedInside += 1 }
            let digest = try store.verifyDigest()
            #expect(digest.nodeCount == 4 + last)
            try store.read { view throws in
                #expect(try view.exists("/n\(last)"))
                #expect(try !view.exists("/n\(last + 1)"))
                #expect(try view.childCount(of: "/") == Int(1 + last))
            }
        }
        print("crash test: \(killedInside) of 3 kills landed inside a batch (the rest just after its commit)")
        #else
        Issue.record("the crash test needs /proc/self/exe (Linux)")
        #endif
    }

    /// A snapshot taken while another thread writes opens as a store at a batch boundary
    /// whose digest is the one the source had at that zxid.
    @Test func onlineSnapshotIsConsistentAndOpens() throws {
        let dir = try TemporaryDirectory()
        let store = try KeeperStore(directory: dir.store)
        let digests = DigestLog()
        let started = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        let writer = Thread {
            do {
                for b in 0..<100 {
                    try store.apply(createEntries(from: Int64(b) * 50 + 1, count: 50))
                    digests.record(try store.digest())
                    if b == 10 { started.signal() }
                }
            } catch {
                Issue.record("writer failed: \(error)")
                started.signal()
            }
            finished.signal()
        }
        writer.start()
        started.wait()
        let copyDir = dir.path + "/copy"
        #expect(mkdir(copyDir, 0o750) == 0)
        let fd = open(copyDir + "/" + KeeperStore.dataFileName, O_WRONLY | O_CREAT | O_TRUNC, 0o640)
        try #require(fd >= 0)
        try store.snapshot(toFileDescriptor: fd)
        #expect(close(fd) == 0)
        finished.wait()

        let copy = try KeeperStore(directory: copyDir)
        let d = try copy.verifyDigest()
        #expect(d.zxid.rawValue % 50 == 0)
        #expect(d.zxid.rawValue >= 550)
        #expect(d == digests.digest(at: d.zxid))
        #expect(d.nodeCount == 4 + d.zxid.rawValue)
        // The source went on to the end.
        #expect(try store.lastAppliedZxid() == Zxid(5_000))
        // And a snapshot into a directory is a store directory too.
        let dirCopy = dir.path + "/copy2"
        #expect(mkdir(dirCopy, 0o750) == 0)
        try store.snapshot(toDirectory: dirCopy)
        #expect(try KeeperStore(directory: dirCopy).verifyDigest() == store.digest())
    }

    @Test func theMapGrowsWhenFullAndStopsAtMaxMapSize() throws {
        var config = StoreConfiguration()
        config.initialMapSize = 1 << 20
        config.maxMapSize = 64 << 20
        let h = try Harness(configuration: config)
        // About 10 MB of data: the map must double several times.
        for b in 0..<10 {
            try h.store.apply(createEntries(from: Int64(b) * 1000 + 1, count: 1000, dataSize: 1000))
        }
        #expect(try h.store.storageInfo().mapSize > 1 << 20)
        #expect(try h.store.lastAppliedZxid() == Zxid(10_000))

        config.maxMapSize = config.initialMapSize
        let small = try Harness(configuration: config)
        var last: Int64 = 0
        do {
            for b in 0..<100 {
                try small.store.apply(createEntries(from: Int64(b) * 100 + 1, count: 100, dataSize: 1000))
                last = Int64(b + 1) * 100
            }
            Issue.record("1 MiB held 10 MB")
        } catch let error as StoreError {
            guard case .mapFull(_, let size, let max) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(size == max)
            #expect(error.description.contains("raise maxMapSize"))
        }
        // The failed batch left nothing behind; the store is still consistent and readable.
        #expect(try small.store.lastAppliedZxid() == Zxid(last))
        #expect(try small.store.verifyDigest().nodeCount == 4 + last)
    }

    @Test func unsyncedMarkerTracksCheckpointsAndRefusesAnotherBoot() throws {
        let h = try Harness()
        let marker = h.store.directory + "/" + UnsyncedMarker.fileName
        #expect(!FileManager.default.fileExists(atPath: marker))
        try h.create("/a")
        #expect(FileManager.default.fileExists(atPath: marker))
        try h.store.sync()
        #expect(!FileManager.default.fileExists(atPath: marker))
        try h.create("/b")
        // Same boot: a killed process only. The store opens.
        #expect(try KeeperStore(directory: h.store.directory).lastAppliedZxid() == Zxid(2))
        // A marker from another boot: the OS stopped with unsynced writes.
        try "00000000-0000-0000-0000-000000000000".write(toFile: marker, atomically: false, encoding: .utf8)
        #expect(throws: StoreError.unsyncedAtSystemCrash(directory: h.store.directory)) {
            _ = try KeeperStore(directory: h.store.directory)
        }
    }

    @Test func aBatchCommittedDuringACheckpointKeepsTheMarker() throws {
        let h = try Harness()
        let marker = h.store.directory + "/" + UnsyncedMarker.fileName
        try h.create("/a")
        // The flush may not have covered /b: the marker must stay.
        h.store.afterFlushForTesting = { #expect(throws: Never.self) { try h.create("/b") } }
        try h.store.sync()
        #expect(FileManager.default.fileExists(atPath: marker))
        h.store.afterFlushForTesting = nil
        try h.store.sync()
        #expect(!FileManager.default.fileExists(atPath: marker))
        #expect(try h.store.lastAppliedZxid() == Zxid(2))
    }

    @Test func readOnlyOpenSeesAWritersCommits() throws {
        let h = try Harness()
        try h.create("/a", "1")
        var config = StoreConfiguration()
        config.readOnly = true
        let reader = try KeeperStore(directory: h.store.directory, configuration: config)
        #expect(try reader.stat(at: "/a")?.dataLength == 1)
        try h.create("/b")
        #expect(try reader.stat(at: "/b") != nil)
        #expect(try reader.verifyDigest().zxid == Zxid(2))
        let empty = try TemporaryDirectory()
        #expect(throws: StoreError.self) { _ = try KeeperStore(directory: empty.path, configuration: config) }
    }

    @Test func durableModesKeepNoMarker() throws {
        for durability in [StoreDurability.syncData, .syncEachCommit] {
            var config = StoreConfiguration()
            config.durability = durability
            let h = try Harness(configuration: config)
            try h.create("/a")
            #expect(!FileManager.default.fileExists(atPath: h.store.directory + "/" + UnsyncedMarker.fileName))
            try h.store.sync()
            #expect(try KeeperStore(directory: h.store.directory, configuration: config).stat(at: "/a") != nil)
        }
    }

    @Test func aDirectoryOfAnotherFormatIsRefused() throws {
        let h = try Harness()
        try h.store.environment.write { txn in try txn.put(h.store.dbs.meta, key: MetaKey.format, value: Array("99".utf8)) }
        #expect(throws: StoreError.incompatibleFormat(directory: h.store.directory, found: "99")) {
            _ = try KeeperStore(directory: h.store.directory)
        }
    }
}

extension DurabilityTests {
    /// Rewrites `store` as a format 1 store: node records without the digest term.
    static func downgradeToFormat1(_ store: KeeperStore) throws {
        try store.environment.write { txn in
            var records: [([UInt8], [UInt8])] = []
            try txn.forEach(store.dbs.nodes, prefix: []) { k, v in
                records.append((Array(k), Array(v[..<NodeRecord.legacyHeaderSize]) + Array(v[NodeRecord.headerSize...])))
                return true
            }
            for (k, v) in records { try txn.put(store.dbs.nodes, key: k, value: v) }
            try txn.put(store.dbs.meta, key: MetaKey.format, value: Array(KeeperStore.legacyFormatVersion.utf8))
        }
        try store.sync()
    }

    static func nodes(_ store: KeeperStore) throws -> [ZNode] {
        var all: [ZNode] = []
        try store.read { v in try v.forEachNode { all.append($0); return true } }
        return all
    }

    @Test func aFormat1StoreIsReadReadOnlyAndUpgradedByAReadWriteOpen() throws {
        let h = try Harness()
        try h.create("/a", String(repeating: "x", count: 700))
        try h.create("/a/b", "bee")
        try h.create("/a/b/c")
        try h.apply(.setData(SetDataTxn(path: "/a/b", data: Array("honey".utf8), version: 1)))
        try h.apply(.delete(DeleteTxn(path: "/a/b/c")))
        // More nodes than the upgrade rewrites per chunk.
        try h.create("/many")
        try h.store.apply((0..<5_000).map { i in
            h.entry(.create(CreateTxn(path: "/many/n\(i)", data: Array("\(i)".utf8), acl: ACL.openUnsafe, kind: .persistent)))
        })
        let digest = try h.store.verifyDigest()
        let tree = try Self.nodes(h.store)
        try Self.downgradeToFormat1(h.store)
        let dir = h.store.directory

        var readOnly = StoreConfiguration()
        readOnly.readOnly = true
        let old = try KeeperStore(directory: dir, configuration: readOnly)
        #expect(try old.verifyDigest() == digest)
        #expect(try Self.nodes(old) == tree)
        #expect(try old.read { try $0.stat(at: "/a/b") }?.version == 1)

        let upgraded = try KeeperStore(directory: dir)
        let format = try upgraded.environment.read { txn in try txn.get(upgraded.dbs.meta, key: MetaKey.format) }
        #expect(format == Array(KeeperStore.formatVersion.utf8))
        #expect(try upgraded.verifyDigest() == digest)
        #expect(try Self.nodes(upgraded) == tree)
        // Writes after the upgrade take the old terms from the records.
        try upgraded.apply(TxnEntry(
            header: TxnHeader(clientID: SessionID(0), cxid: 0, zxid: Zxid(h.zxid + 1), time: 5_000, type: .setData),
            txn: .setData(SetDataTxn(path: "/a", data: Array("short".utf8), version: 1))))
        let after = try upgraded.verifyDigest()
        #expect(after.zxid == Zxid(h.zxid + 1))
        #expect(after != digest)
    }

    @Test func aStoredDigestTermThatDoesNotMatchItsNodeIsDamage() throws {
        let h = try Harness()
        try h.create("/a", "data")
        try h.store.environment.write { txn in
            let key = NodeKey.key("/a")
            var v = try txn.get(h.store.dbs.nodes, key: key)!
            v[NodeRecord.legacyHeaderSize] ^= 1
            try txn.put(h.store.dbs.nodes, key: key, value: v)
        }
        #expect(throws: StoreError.damaged(directory: h.store.directory, detail: "the digest term stored with /a does not match the node")) {
            _ = try h.store.verifyDigest()
        }
    }
}

/// Digests the writer saw after each batch, by zxid.
final class DigestLog: @unchecked Sendable {
    // Sendable proof: `digests` is only touched while holding `lock`.
    private let lock = NSLock()
    private var digests: [Zxid: TreeDigest] = [:]
    func record(_ d: TreeDigest) { lock.withLock { digests[d.zxid] = d } }
    func digest(at z: Zxid) -> TreeDigest? { lock.withLock { digests[z] } }
}

extension KeeperStore {
    func stat(at path: String) throws -> Stat? { try read { try $0.stat(at: path) } }
}
