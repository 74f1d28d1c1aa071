import Foundation
import KeeperLog
import KeeperModel
import KeeperStore
import Testing

@testable import KeeperBackup

@Suite struct BackupFileTests {
    @Test func framesRoundTripAndDetectDamage() throws {
        let seed: UInt64 = 7
        var rng = SeededRandom(seed: seed)
        let dir = try TemporaryDirectory()
        // 2.5 chunks of compressible and random bytes.
        var content: [UInt8] = []
        for i in 0..<(BackupFileFormat.chunkBytes * 5 / 2) {
            content.append(i % 3 == 0 ? UInt8.random(in: 0...255, using: &rng) : UInt8(i % 7))
        }
        let writer = try BackupFileWriter(directory: dir.path, name: "f", content: .store)
        var offset = 0
        while offset < content.count {
            let n = min(content.count - offset, Int.random(in: 1...300_000, using: &rng))
            try content[offset..<(offset + n)].withUnsafeBytes { try writer.write($0) }
            offset += n
        }
        let summary = try writer.finish()
        #expect(summary.rawBytes == Int64(content.count), "seed \(seed)")
        let reader = try BackupFileReader(path: dir.path + "/f", content: .store, expected: summary)
        var back: [UInt8] = []
        while let chunk = try reader.nextChunk() { back += chunk }
        #expect(back == content, "seed \(seed)")
        // The same bytes read as the wrong kind are refused.
        #expect(throws: BackupError.self) { _ = try BackupFileReader(path: dir.path + "/f", content: .txns, expected: nil) }
    }
}

@Suite(.serialized) struct BackupRestoreTests {
    /// A full backup with a log tail, two incrementals; restoring the chain gives the source's
    /// tree exactly, and restoring to every backup's zxid and to points between gives the
    /// tree the source had then.
    @Test func chainRestoreEqualsSourceAtEveryPoint() throws {
        let seed: UInt64 = 0xB0C_0001
        let source = try SourceDirectory(seed: seed, segmentMaxRecords: 150)
        var expected: [Zxid: TreeDigest] = [:]
        func remember() throws { expected[source.zxid] = try source.shadow.digest() }
        try source.randomWrites(300, under: "/app")
        // The store stops at its checkpoint; the rest is only in the log.
        source.storeLags = true
        try source.randomWrites(120, under: "/app")
        try remember()
        let midFull = source.zxid
        try source.stop()
        let backups = try TemporaryDirectory()
        let full = try Backup.full(source.data, to: backups.path)
        #expect(full.manifest.recordCount == 120, "seed \(seed)")
        #expect(full.manifest.zxidValue == midFull)
        #expect(full.manifest.digest.matches(expected[midFull]!))

        try source.start()
        source.storeLags = false
        try source.randomWrites(200, under: "/app")
        let between = source.zxid
        try remember()
        try source.randomWrites(200, under: "/other")
        try remember()
        try source.stop()
        let first = try #require(try Backup.incremental(source.data, to: backups.path))
        #expect(first.manifest.recordCount == Int(source.zxid.counter - midFull.counter))
        #expect(try Backup.incremental(source.data, to: backups.path) == nil, "nothing new: no backup")

        try source.start()
        try source.randomWrites(150, under: "/app")
        try remember()
        try source.stop()
        _ = try #require(try Backup.incremental(source.data, to: backups.path))

        let report = try Restore.verify(backups.path, scratchParent: backups.path)
        #expect(report.orphans.isEmpty)

        let targets = try TemporaryDirectory()
        // Latest: the whole chain, equal to the source.
        let latest = try Restore.restore(from: backups.path, to: .latest, into: DataDirectory(dataDir: targets.path + "/latest"))
        #expect(latest.digest == (try source.shadow.digest()), "seed \(seed)")
        #expect(try treeSnapshot(try openStore(DataDirectory(dataDir: targets.path + "/latest"))) == (try treeSnapshot(source.shadow)))
        // Every remembered point, by zxid.
        for (n, (zxid, digest)) in expected.sorted(by: { $0.key < $1.key }).enumerated() {
            let r = try Restore.restore(from: backups.path, to: .zxid(zxid), into: DataDirectory(dataDir: targets.path + "/z\(n)"))
            #expect(r.digest == digest, "restore to \(zxid), seed \(seed)")
        }
        #expect(expected[between] != nil)
        // A point inside the full backup's log tail: one txn after the snapshot.
        let snapshot = full.manifest.previousZxidValue
        let inTail = try Restore.restore(from: backups.path, to: .zxid(snapshot.next!), into: DataDirectory(dataDir: targets.path + "/tail"))
        #expect(inTail.zxid == snapshot.next!)
        // By time: every txn is 1 s after the one before.
        let byTime = try Restore.restore(from: backups.path, to: .time(1_700_000_000_000 + Int64(between.counter) * 1_000), into: DataDirectory(dataDir: targets.path + "/time"))
        #expect(byTime.digest == expected[between], "restore by time, seed \(seed)")
    }

    /// Drill 2: an accidental recursive delete; a point-in-time restore to just before it
    /// brings the subtree back with every unrelated write made before that point.
    @Test func pointInTimeRestoreUndoesRecursiveDelete() throws {
        let seed: UInt64 = 0xD2
        let source = try SourceDirectory(seed: seed)
        try source.randomWrites(200, under: "/orders")
        try source.randomWrites(100, under: "/config")
        try source.stop()
        let backups = try TemporaryDirectory()
        _ = try Backup.full(source.data, to: backups.path)
        try source.start()
        try source.randomWrites(100, under: "/config")
        try source.create("/config/written-just-before")
        let beforeDelete = source.zxid
        let expectedTree = try treeSnapshot(source.shadow)
        let expectedDigest = try source.shadow.digest()
        let orders = expectedTree.keys.filter { $0.hasPrefix("/orders") }
        #expect(orders.count > 50, "seed \(seed)")
        try source.deleteRecursively("/orders")
        try source.create("/config/written-after")
        try source.stop()
        _ = try #require(try Backup.incremental(source.data, to: backups.path))

        let target = try TemporaryDirectory()
        let data = DataDirectory(dataDir: target.path + "/restored")
        let report = try Restore.restore(from: backups.path, to: .zxid(beforeDelete), into: data)
        #expect(report.zxid == beforeDelete)
        #expect(report.digest == expectedDigest, "seed \(seed)")
        let restored = try treeSnapshot(try openStore(data))
        #expect(restored == expectedTree, "seed \(seed)")
        #expect(restored["/config/written-just-before"] != nil)
        #expect(restored["/config/written-after"] == nil)
        // The same point by time: the delete's first txn came 1 s after `beforeDelete`.
        let byTime = DataDirectory(dataDir: target.path + "/by-time")
        let timed = try Restore.restore(from: backups.path, to: .time(1_700_000_000_000 + Int64(beforeDelete.counter) * 1_000 + 999), into: byTime)
        #expect(timed.digest == expectedDigest, "seed \(seed)")
        // The restored directory is a data directory: it has a database id and a store.
        #expect(try data.databaseID() != source.databaseID)
    }

    /// Drill 3: a corrupted or truncated backup file makes verify and restore fail, naming the
    /// file and the offset; nothing is written.
    @Test func damagedBackupFailsWithFileAndOffsetAndWritesNothing() throws {
        let seed: UInt64 = 0xD3
        let source = try SourceDirectory(seed: seed)
        try source.randomWrites(300, under: "/app")
        source.storeLags = true  // so the full backup holds a log tail too
        try source.randomWrites(100, under: "/app")
        try source.stop()
        let backups = try TemporaryDirectory()
        let full = try Backup.full(source.data, to: backups.path)
        try source.start()
        try source.randomWrites(300, under: "/app")
        try source.stop()
        let incremental = try #require(try Backup.incremental(source.data, to: backups.path))
        _ = try Restore.verify(backups.path, scratchParent: backups.path)

        func expectFailure(_ file: String, _ check: (BackupError) -> Bool) throws {
            let scratch = try TemporaryDirectory()
            do {
                _ = try Restore.verify(backups.path, scratchParent: scratch.path)
                Issue.record("verify passed a damaged \(file)")
            } catch let error as BackupError {
                #expect(check(error), "\(error)")
                #expect(error.description.contains(file), "\(error)")
            }
            #expect(try entries(scratch.path).isEmpty, "verify left scratch files")
            let target = scratch.path + "/target"
            do {
                _ = try Restore.restore(from: backups.path, to: .latest, into: DataDirectory(dataDir: target))
                Issue.record("restore passed a damaged \(file)")
            } catch let error as BackupError {
                #expect(check(error), "\(error)")
            }
            let left = try entries(scratch.path)
            #expect(left.isEmpty, "restore wrote \(left)")
        }

        for file in [incremental.manifest.files[0], full.manifest.files[0], full.manifest.files[1]] {
            let path = backups.path + "/" + file.name
            let original = try Data(contentsOf: URL(fileURLWithPath: path))
            #expect(Int64(original.count) == file.bytes, "\(path)")
            try #require(original.count > 200, "\(path) holds \(original.count) bytes")
            // One flipped byte in the middle.
            var damaged = original
            let at = damaged.count / 2
            damaged[at] ^= 0x40
            try damaged.write(to: URL(fileURLWithPath: path))
            try expectFailure(file.name) { error in
                if case .corrupt(let f, let offset, _) = error { return f == path && offset <= Int64(at) && offset >= 0 }
                return false
            }
            // Cut short.
            try original.prefix(original.count - 100).write(to: URL(fileURLWithPath: path))
            try expectFailure(file.name) { error in
                if case .truncated(let f, let offset, _) = error { return f == path && offset == Int64(original.count - 100) }
                return false
            }
            try original.write(to: URL(fileURLWithPath: path))
        }
        _ = try Restore.verify(backups.path, scratchParent: backups.path)
    }

    /// The log no longer holds the txns right after the last backup: an incremental is refused,
    /// naming the missing range.
    @Test func gapInTheChainIsAnError() throws {
        let seed: UInt64 = 0x6A9
        let source = try SourceDirectory(seed: seed, segmentMaxRecords: 50)
        try source.randomWrites(100, under: "/app")
        try source.stop()
        let backups = try TemporaryDirectory()
        let full = try Backup.full(source.data, to: backups.path)
        try source.start()
        try source.randomWrites(300, under: "/app")
        // Purge segments past the backup's zxid (the store checkpoint allows it).
        try source.store!.sync()
        let removed = try source.log!.purge(before: source.zxid)
        #expect(!removed.isEmpty)
        let oldest = try #require(source.log!.segments().first?.previousZxid)
        #expect(oldest > full.manifest.zxidValue)
        try source.stop()
        do {
            _ = try Backup.incremental(source.data, to: backups.path)
            Issue.record("an incremental across a gap succeeded")
        } catch BackupError.gap(let after, let through, _) {
            #expect(after == full.manifest.zxidValue)
            #expect(through == oldest)
        }
        #expect(try entries(backups.path).filter { $0.hasPrefix("000002") }.isEmpty, "the failed incremental left files")
        // A missing backup file in the middle of a chain is a gap for verify too.
        _ = try Backup.full(source.data, to: backups.path)
        try source.start()
        try source.randomWrites(20, under: "/app")
        try source.stop()
        let second = try #require(try Backup.incremental(source.data, to: backups.path))
        try source.start()
        try source.randomWrites(20, under: "/app")
        try source.stop()
        _ = try #require(try Backup.incremental(source.data, to: backups.path))
        try FileManager.default.removeItem(atPath: second.manifestPath)
        #expect(throws: BackupError.self) { _ = try Restore.verify(backups.path, scratchParent: backups.path) }
    }

    @Test func restoreRefusesNonEmptyOrLiveDirectories() throws {
        let source = try SourceDirectory(seed: 1)
        try source.randomWrites(20, under: "/a")
        try source.stop()
        let backups = try TemporaryDirectory()
        _ = try Backup.full(source.data, to: backups.path)
        // Into a non-empty directory (the source itself).
        #expect(throws: BackupError.self) { _ = try Restore.restore(from: backups.path, to: .latest, into: source.data) }
        // Into an empty existing directory: fine.
        let target = try TemporaryDirectory()
        _ = try Restore.restore(from: backups.path, to: .latest, into: DataDirectory(dataDir: target.path))
        #expect(try entries(target.path) == ["database-id", "store"])
        // A process holding the store's LMDB lock (as a running server does) blocks backup.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        holder.arguments = ["-c", """
            import fcntl, sys
            f = open(sys.argv[1], 'r+')
            fcntl.lockf(f, fcntl.LOCK_SH, 1, 0, 0)
            print('locked', flush=True)
            sys.stdin.read()
            """, source.data.lockFilePath]
        let input = Pipe()
        let output = Pipe()
        holder.standardInput = input
        holder.standardOutput = output
        try holder.run()
        let line = output.fileHandleForReading.availableData
        #expect(String(decoding: line, as: UTF8.self).hasPrefix("locked"))
        do {
            _ = try Backup.full(source.data, to: backups.path)
            Issue.record("backup of a locked data directory succeeded")
        } catch BackupError.inUse(_, let pid) {
            #expect(pid == holder.processIdentifier)
        }
        try input.fileHandleForWriting.close()
        holder.waitUntilExit()
        _ = try Backup.incremental(source.data, to: backups.path)
    }

    /// Export a subtree, import it into another data directory: data, ACLs, versions, times
    /// and sequence counters are preserved.
    @Test func exportImportPreservesNodesAndCounters() throws {
        let seed: UInt64 = 0xE4
        let source = try SourceDirectory(seed: seed)
        try source.randomWrites(200, under: "/app")
        source.storeLags = true  // export must replay the log's tail to see these
        try source.randomWrites(100, under: "/app")
        try source.create("/app/eph-parent")
        try source.apply(.createSession(CreateSessionTxn(timeOut: 10_000)), session: SessionID(0x77))
        let eph = try source.apply(.create(CreateTxn(path: "/app/eph-parent/e", data: [1], acl: ACL.openUnsafe, kind: .ephemeral)), session: SessionID(0x77))
        #expect(eph.succeeded)
        try source.stop()
        let export = try TemporaryDirectory()
        var lines: [String] = []
        let count = try TreeExport.export(source.data, root: "/app") { lines.append($0) }
        try (lines.joined(separator: "\n") + "\n").write(toFile: export.path + "/app.jsonl", atomically: true, encoding: .utf8)

        let target = try SourceDirectory(seed: seed + 1)
        target.storeLags = true  // import must replay these before adding its own txns
        try target.randomWrites(10, under: "/unrelated")
        try target.stop()
        let report = try TreeExport.importFile(export.path + "/app.jsonl", into: target.data)
        #expect(report.created == count - 1, "every node but the ephemeral one")
        #expect(report.skippedEphemerals == ["/app/eph-parent/e"])
        let before = try treeSnapshot(source.shadow)
        let store = try openStore(target.data)
        let after = try treeSnapshot(store)
        for (path, node) in before where path.hasPrefix("/app") && path != "/app/eph-parent/e" {
            let copy = try #require(after[path], "\(path) missing, seed \(seed)")
            #expect(copy.data == node.data && copy.stat.version == node.stat.version && copy.stat.aversion == node.stat.aversion
                    && copy.stat.ctime == node.stat.ctime && copy.stat.mtime == node.stat.mtime && copy.kind == node.kind,
                    "\(path), seed \(seed)")
            let counts = try store.read { try $0.childCreateCount(of: path) }
            let original = try source.shadow.read { try $0.childCreateCount(of: path) }
            #expect(counts == original, "child create counter of \(path), seed \(seed)")
            #expect(try store.read { try $0.acl(at: path)?.acl } == (try source.shadow.read { try $0.acl(at: path)?.acl }))
        }
        for (path, node) in try treeSnapshot(target.shadow) {
            #expect(after[path] == node || path == "/", "the target's own \(path) changed, seed \(seed)")
        }
        // The import went through the log: an incremental backup of the target holds it.
        let backups = try TemporaryDirectory()
        _ = try Backup.full(target.data, to: backups.path)
        let restored = try TemporaryDirectory()
        let r = try Restore.restore(from: backups.path, to: .latest, into: DataDirectory(dataDir: restored.path + "/d"))
        #expect(r.digest == report.digest)
        // Importing again clashes and changes nothing.
        #expect(throws: BackupError.self) { _ = try TreeExport.importFile(export.path + "/app.jsonl", into: target.data) }
        #expect(try openStore(target.data).digest() == report.digest)
    }
}
