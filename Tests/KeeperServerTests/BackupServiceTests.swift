import Foundation
import KeeperBackup
@testable import KeeperLog
import KeeperModel
import KeeperStore
import Testing

@testable import KeeperServer

@Suite struct BackupServiceTests {
    static let hour: Int64 = 3_600_000

    @Test func scheduledFullThenIncrementalsRestoreToTheLiveTree() async throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        let data = try LiveData(seed: seed) {
            $0.backup.fullIntervalSeconds = 86_400
            $0.backup.incrementalIntervalSeconds = 3_600
        }
        try await data.write(30)
        let service = try data.service()
        let t0: Int64 = 1_000 * BackupServiceTests.hour
        service.runDue(now: t0)  // no chain yet: a full backup
        var status = service.currentStatus
        #expect(status.successCount == 1, "seed \(seed): \(status.lastFailure ?? "")")
        #expect(status.lastSuccess?.kind == "full")
        #expect(status.chains == 1)
        #expect(status.chainZxid == data.zxid)

        try await data.write(25)
        service.runDue(now: t0 + BackupServiceTests.hour / 2)  // nothing due
        #expect(service.currentStatus.successCount == 1)
        service.runDue(now: t0 + BackupServiceTests.hour)  // the incremental
        status = service.currentStatus
        #expect(status.successCount == 2, "seed \(seed): \(status.lastFailure ?? "")")
        #expect(status.lastSuccess?.kind == "incremental")
        #expect(status.chainZxid == data.zxid)
        service.runDue(now: t0 + 2 * BackupServiceTests.hour)  // nothing new: no files
        #expect(service.currentStatus.successCount == 2)
        #expect(service.currentStatus.failureCount == 0)

        let digest = try restoredDigest(data.config.backup.directory!, root: data.root.path)
        #expect(digest == (try data.store!.digest()), "seed \(seed)")
        let verify = try Restore.verify(data.config.backup.directory!, scratchParent: data.root.path)
        #expect(verify.orphans.isEmpty)

        let mntr = Dictionary(uniqueKeysWithValues: status.mntrPairs)
        #expect(mntr["zk_backup_success_count"] == "2")
        #expect(mntr["zk_backup_last_success_zxid"] == String(data.zxid.rawValue))
        #expect(mntr["zk_backup_in_progress"] == "0")
    }

    @Test func archiveLogCarriesEachClosedSegmentIntoTheChain() async throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        let data = try LiveData(seed: seed, segmentMaxRecords: 20) {
            $0.backup.incrementalIntervalSeconds = 0
            $0.backup.archiveLog = true
            $0.backup.archiveCheckIntervalMs = 1_000
        }
        let service = try data.service()
        let t0: Int64 = 5_000 * BackupServiceTests.hour
        try await data.write(5)
        service.runDue(now: t0)
        #expect(service.currentStatus.lastSuccess?.kind == "full", "seed \(seed)")
        // Still inside the first segment: nothing closed, nothing archived.
        try await data.write(5)
        service.runDue(now: t0 + 1_000)
        #expect(service.currentStatus.successCount == 1)
        // Past a segment boundary: the closed segment (and everything committed) is archived.
        try await data.write(30)
        #expect(data.log!.segments().contains { !$0.isActive })
        service.runDue(now: t0 + 2_000)
        let status = service.currentStatus
        #expect(status.successCount == 2, "seed \(seed): \(status.lastFailure ?? "")")
        #expect(status.lastSuccess?.kind == "incremental")
        #expect(status.chainZxid == data.zxid)
        let digest = try restoredDigest(data.config.backup.directory!, root: data.root.path)
        #expect(digest == (try data.store!.digest()), "seed \(seed)")
    }

    @Test func retentionDeletesWholeChainsOnly() async throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        let data = try LiveData(seed: seed) {
            $0.backup.fullIntervalSeconds = 3_600
            $0.backup.incrementalIntervalSeconds = 600
            $0.backup.retainCount = 2
        }
        let service = try data.service()
        var now: Int64 = 10_000 * BackupServiceTests.hour
        for _ in 0..<4 {
            try await data.write(10)
            service.runDue(now: now)  // a full backup each hour
            for _ in 0..<2 {
                try await data.write(10)
                now += 600_000
                service.runDue(now: now)  // incrementals every 10 minutes
            }
            now += BackupServiceTests.hour - 2 * 600_000
        }
        let status = service.currentStatus
        #expect(status.failureCount == 0, "seed \(seed): \(status.lastFailure ?? "")")
        let chain = try BackupChain.load(data.config.backup.directory!)
        let chains = RetentionPlan.chains(chain.manifests)
        #expect(chains.count == 2, "seed \(seed)")
        #expect(chain.manifests.first?.kind == .full)
        #expect(status.chainsDeleted == 2)
        // No file of a deleted chain is left, and what is left verifies and restores.
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: data.config.backup.directory!))
        var expected = Set<String>()
        for m in chain.manifests {
            expected.insert(BackupManifest.fileName(sequence: m.sequence, kind: m.kind))
            for f in m.files { expected.insert(f.name) }
        }
        #expect(names == expected)
        _ = try Restore.verify(data.config.backup.directory!, scratchParent: data.root.path)
        #expect(try restoredDigest(data.config.backup.directory!, root: data.root.path) == (try data.store!.digest()))
    }

    @Test func retentionPlanKeepsTheNewestChainAndWholeChains() throws {
        func manifest(_ sequence: Int, _ kind: BackupManifest.Kind, daysAgo: Int) throws -> BackupManifest {
            let date = Date(timeIntervalSince1970: 1_800_000_000 - Double(daysAgo) * 86_400)
            let formatter = ISO8601DateFormatter()
            let json = """
                {"format":"swiftkeeper-backup","formatVersion":1,"kind":"\(kind.rawValue)","sequence":\(sequence),
                 "databaseID":"1","previousZxid":"0x0","zxid":"0x0","digest":{"value":"0","nodeCount":4,"zxid":"0x0"},
                 "recordCount":0,"files":[],"toolVersion":"t","createdAt":"\(formatter.string(from: date))"}
                """
            return try JSONDecoder().decode(BackupManifest.self, from: Data(json.utf8))
        }
        let now: Int64 = 1_800_000_000_000
        let ms = [
            try manifest(1, .full, daysAgo: 30), try manifest(2, .incremental, daysAgo: 29),
            try manifest(3, .full, daysAgo: 10), try manifest(4, .incremental, daysAgo: 9), try manifest(5, .incremental, daysAgo: 8),
            try manifest(6, .full, daysAgo: 1),
        ]
        #expect(RetentionPlan.chains(ms).map { $0.map(\.sequence) } == [[1, 2], [3, 4, 5], [6]])
        #expect(RetentionPlan.chainsToDelete(ms, retainCount: 2, retainDays: 0, nowMillis: now).map { $0.map(\.sequence) } == [[1, 2]])
        #expect(RetentionPlan.chainsToDelete(ms, retainCount: 5, retainDays: 20, nowMillis: now).map { $0.map(\.sequence) } == [[1, 2]])
        #expect(RetentionPlan.chainsToDelete(ms, retainCount: 5, retainDays: 5, nowMillis: now).map { $0.map(\.sequence) } == [[1, 2], [3, 4, 5]])
        // The newest chain stays even when it is too old.
        #expect(RetentionPlan.chainsToDelete(ms, retainCount: 1, retainDays: 0, nowMillis: now + 100 * 86_400_000).map { $0.first!.sequence } == [1, 3])
        // Incrementals before any full form no chain and are left alone.
        #expect(RetentionPlan.chains([try manifest(1, .incremental, daysAgo: 3)] + ms.suffix(1)).map { $0.map(\.sequence) } == [[6]])
    }

    @Test func purgePlanKeepsActiveMarginAndUnneededOnly() {
        func segment(_ base: Int32, _ last: Int32?, active: Bool = false) -> LogSegment {
            LogSegment(
                name: "log.\(base)", path: "/x/log.\(base)", baseZxid: Zxid(epoch: 1, counter: UInt32(base)),
                previousZxid: Zxid(epoch: 1, counter: UInt32(base - 1)), firstZxid: last.map { _ in Zxid(epoch: 1, counter: UInt32(base)) },
                lastZxid: last.map { Zxid(epoch: 1, counter: UInt32($0)) }, recordCount: Int((last ?? (base - 1)) - base + 1),
                byteCount: 100, isActive: active)
        }
        let segments = [segment(1, 10), segment(11, 20), segment(21, 30), segment(31, 40), segment(41, 45, active: true)]
        let z = { (c: UInt32) in Zxid(epoch: 1, counter: c) }
        // Everything checkpointed, no margin: every closed segment goes, never the active one.
        #expect(RetentionPlan.purgeBefore(segments, bound: z(45), keepClosed: 0) == z(41))
        // A margin of two closed segments.
        #expect(RetentionPlan.purgeBefore(segments, bound: z(45), keepClosed: 2) == z(21))
        // The checkpoint (or the backup chain) inside segment 2: only segment 1 goes.
        #expect(RetentionPlan.purgeBefore(segments, bound: z(15), keepClosed: 0) == z(11))
        #expect(RetentionPlan.purgeBefore(segments, bound: z(9), keepClosed: 0) == nil)
        #expect(RetentionPlan.purgeBefore(segments, bound: z(45), keepClosed: 4) == nil)
    }

    @Test func purgeRemovesOnlyCheckpointedArchivedSegmentsAndTheServerStillStarts() async throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        let data = try LiveData(seed: seed, segmentMaxRecords: 10) {
            $0.backup.archiveLog = true
            $0.backup.incrementalIntervalSeconds = 0
            $0.autopurgeSnapRetainCount = 3
            $0.backup.purgeIntervalSeconds = 60
        }
        let service = try data.service()
        let t0: Int64 = 20_000 * BackupServiceTests.hour
        try await data.write(5)
        service.runDue(now: t0)  // the full backup, at zxid 5
        try await data.write(95)
        // The chain ends at 5: nothing after it may be purged yet, whatever the checkpoint.
        #expect(service.purgeLog(now: t0 + 1).isEmpty, "seed \(seed)")
        #expect(service.currentStatus.lastPurgeError == nil)
        // Archive, then purge: everything archived and checkpointed goes but the last 3 closed segments.
        service.runDue(now: t0 + 10_000)
        #expect(service.currentStatus.chainZxid == data.zxid, "seed \(seed): \(service.currentStatus.lastFailure ?? "")")
        let before = data.log!.segments()
        let removed = service.purgeLog(now: t0 + 10_001)
        #expect(!removed.isEmpty)
        let after = data.log!.segments()
        #expect(after.filter { !$0.isActive }.count == 3, "segments before \(before.map(\.name)), after \(after.map(\.name))")
        #expect(after.count + removed.count == before.count)
        // An online incremental can no longer reach before the purge: a gap, said as such.
        #expect(throws: BackupError.self) {
            try LiveBackup.forEachRecord(in: data.log!, after: Zxid(epoch: 1, counter: 3), through: data.zxid) { _, _ in }
        }
        // The store is past the purged records: a restart replays what is left.
        let digest = try data.store!.digest()
        try data.close()
        try data.open()
        #expect(try data.store!.digest() == digest)
        #expect(try data.store!.lastAppliedZxid() >= data.log!.segments().first!.previousZxid)
    }
}

@Suite struct BackupServiceStartTests {
    @Test func startRemovesStaleSnapshotCopiesAndRegistersOnce() async throws {
        let data = try LiveData(seed: 1) { $0.backup.directory = nil }
        let stale = data.config.dataDir + "/" + BackupService.snapshotCopyPrefix + "999-1"
        try FileManager.default.createDirectory(atPath: stale, withIntermediateDirectories: false)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: stale + "/data.mdb"))
        let store = data.store!
        let log = data.log!
        let service = try BackupService.start(config: data.config, store: { store }, log: { log }, logger: .init(label: "test"))
        #expect(!FileManager.default.fileExists(atPath: stale))
        #expect(BackupService.running(forDataDir: data.config.dataDir) === service)
        #expect(throws: ServerStartError.self) {
            _ = try BackupService.start(config: data.config, store: { store }, log: { log }, logger: .init(label: "test"))
        }
        service.stop()
        #expect(BackupService.running(forDataDir: data.config.dataDir) == nil)
        service.stop()  // a second stop returns at once
    }
}
