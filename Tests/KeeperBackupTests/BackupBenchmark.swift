import Foundation
import KeeperLog
import KeeperModel
import KeeperStore
import KeeperWire
import NIOCore
import Testing

@testable import KeeperBackup

/// Full-backup throughput and restore time on a large tree. Runs only when
/// KEEPER_BACKUP_BENCH_NODES is set (e.g. 100000): it takes minutes and a few hundred MB.
/// The last 10% of the creates are in the log only (the store at its checkpoint before
/// them), so the backup replays a tail as it would after a real server's stop.
@Suite struct BackupBenchmark {
    static var nodes: Int? { ProcessInfo.processInfo.environment["KEEPER_BACKUP_BENCH_NODES"].flatMap(Int.init) }

    @Test(.enabled(if: nodes != nil)) func fullBackupAndRestoreThroughput() throws {
        let count = BackupBenchmark.nodes!
        let root = try TemporaryDirectory()
        // KEEPER_BACKUP_BENCH_KEEP=DIR keeps the data directory there, to time keeperctl on it.
        let keep = ProcessInfo.processInfo.environment["KEEPER_BACKUP_BENCH_KEEP"]
        let data = DataDirectory(dataDir: keep ?? root.path + "/data")
        try FileSystem.makeDirectory(data.dataDir)
        let databaseID: UInt64 = 0xBE4C
        try DataDirectory.writeDatabaseID(databaseID, to: data.databaseIDPath)
        var rng = SeededRandom(seed: 42)
        let expected: TreeDigest
        do {
            let store = try KeeperStore(directory: data.storePath)
            let log = try KeeperLog.open(LogConfiguration(directory: data.logPath, databaseID: databaseID))
            var zxid = Zxid(epoch: 1, counter: 0)
            var batch: [TxnEntry] = []
            let shadow = try KeeperStore(directory: root.path + "/shadow")
            func txn(_ t: Txn) throws {
                zxid = zxid.next!
                let entry = TxnEntry(header: TxnHeader(clientID: .none, cxid: 0, zxid: zxid, time: 1_700_000_000_000 + Int64(zxid.counter), type: t.opCode), txn: t)
                var buffer = ByteBuffer()
                TxnCodec.write(entry, to: &buffer)
                try log.append(zxid: zxid, payload: Array(buffer.readableBytesView))
                batch.append(entry)
                if batch.count == 1000 {
                    if Int(zxid.counter) <= count * 9 / 10 { try store.apply(batch) }
                    try shadow.apply(batch)
                    batch.removeAll(keepingCapacity: true)
                }
            }
            try txn(.create(CreateTxn(path: "/bench", data: [], acl: ACL.openUnsafe, kind: .persistent)))
            let groups = max(1, count / 100)
            for g in 0..<groups { try txn(.create(CreateTxn(path: "/bench/g\(g)", data: [], acl: ACL.openUnsafe, kind: .persistent))) }
            var made = groups + 1
            var i = 0
            while made < count {
                let data = (0..<100).map { _ in UInt8.random(in: 0...255, using: &rng) }
                try txn(.create(CreateTxn(path: "/bench/g\(i % groups)/n\(i)", data: data, acl: ACL.openUnsafe, kind: .persistent)))
                made += 1
                i += 1
            }
            if !batch.isEmpty { try shadow.apply(batch) }
            try log.close()
            try store.sync()
            expected = try shadow.digest()
        }
        let storeBytes = try FileManager.default.attributesOfItem(atPath: data.storePath + "/data.mdb")[.size] as! Int
        let backups = try TemporaryDirectory()
        let backup = try Backup.full(data, to: backups.path)
        #expect(backup.manifest.digest.matches(expected))
        let raw = backup.manifest.files.reduce(Int64(0)) { $0 + $1.rawBytes }
        let stored = backup.manifest.files.reduce(Int64(0)) { $0 + $1.bytes }
        let target = try TemporaryDirectory()
        let restored = try Restore.restore(from: backups.path, to: .latest, into: DataDirectory(dataDir: target.path + "/d"))
        #expect(restored.digest == expected)
        print(String(format: "backup benchmark: %d znodes (store file %.1f MB, %d txns in the tail): full backup %.2f s (%.1f MB raw -> %.1f MB stored, %.0f znodes/s); restore %.2f s (%d txns replayed)",
                     count, Double(storeBytes) / 1e6, backup.manifest.recordCount, backup.seconds, Double(raw) / 1e6, Double(stored) / 1e6,
                     Double(count) / backup.seconds, restored.seconds, restored.replayed))
    }
}
