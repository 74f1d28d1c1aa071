import Foundation
import KeeperBackup
import KeeperLog
import KeeperModel
import KeeperStore
import KeeperWire
import NIOCore
import Testing

@testable import KeeperServer

/// A directory removed when the test is done.
final class ScratchDirectory: Sendable {
    let path: String
    init() throws {
        var template = Array((NSTemporaryDirectory() + "keeper-server-backup-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { throw BackupError.io(operation: "mkdtemp", path: NSTemporaryDirectory(), errno: errno) }
        path = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
    }
    deinit {
        do { try FileManager.default.removeItem(atPath: path) } catch {
            print("warning: could not remove temporary directory \(path): \(error)")
        }
    }
}

/// SplitMix64: a seeded generator, so a failing seed replays exactly.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A server's data directory written the way its replica writes it: each txn appended to the
/// log, made durable, then applied to the store (a txn is applied only once durable, which the
/// backup service relies on).
final class LiveData {
    let root = try! ScratchDirectory()
    let config: ServerConfig
    let databaseID: UInt64 = 0xbac0_0000_0000_0007
    var store: KeeperStore?
    var log: KeeperLog?
    var zxid = Zxid(epoch: 1, counter: 0)
    var time: Int64 = 1_700_000_000_000
    var rng: SplitMix
    let seed: UInt64
    let segmentMaxRecords: Int

    init(seed: UInt64, segmentMaxRecords: Int = 40, configure: (inout ServerConfig) -> Void = { _ in }) throws {
        self.seed = seed
        rng = SplitMix(state: seed)
        self.segmentMaxRecords = segmentMaxRecords
        var config = ServerConfig()
        config.dataDir = root.path + "/data"
        config.backup.directory = root.path + "/backups"
        configure(&config)
        self.config = config
        guard mkdir(config.dataDir, 0o750) == 0 else { throw BackupError.io(operation: "mkdir", path: config.dataDir, errno: errno) }
        try (String(databaseID, radix: 16) + "\n").write(toFile: config.dataDir + "/database-id", atomically: true, encoding: .utf8)
        try open()
    }

    var logDirectory: String { config.effectiveDataLogDir + "/log" }

    func open() throws {
        let store = try KeeperStore(directory: config.dataDir + "/store")
        let log = try KeeperLog.open(LogConfiguration(
            directory: logDirectory, databaseID: databaseID, preallocationSize: 64 << 10, segmentMaxRecords: segmentMaxRecords))
        let applied = try store.lastAppliedZxid()
        let reader = log.read(from: Zxid(applied.rawValue + 1))
        var entries: [TxnEntry] = []
        while let record = try reader.next() {
            entries.append(try TxnCodec.decode(ByteBuffer(bytes: record.payload), maxLength: Int.max / 2).entry)
        }
        try store.apply(entries)
        if let last = entries.last { zxid = last.zxid } else { zxid = max(zxid, applied) }
        self.store = store
        self.log = log
    }

    func close() throws {
        try log?.close()
        log = nil
        try store?.sync()
        store = nil
    }

    /// Writes `count` creates and setData txns under /app (log, durable, then store).
    func write(_ count: Int) async throws {
        var entries: [TxnEntry] = []
        var version = try store!.read { try $0.stat(at: "/app") }?.version
        let exists = version != nil
        for i in 0..<count {
            zxid = zxid.next!
            time += 1_000
            let txn: Txn
            if !exists && i == 0 {
                txn = .create(CreateTxn(path: "/app", data: [1], acl: ACL.openUnsafe, kind: .persistent))
                version = 0
            } else if Int.random(in: 0..<3, using: &rng) == 0 {
                version! += 1
                txn = .setData(SetDataTxn(path: "/app", data: [UInt8(truncatingIfNeeded: i)], version: version!))
            } else {
                txn = .create(CreateTxn(path: "/app/n\(zxid.counter)", data: Array(repeating: UInt8(i & 0xff), count: i % 50), acl: ACL.openUnsafe, kind: .persistent))
            }
            let entry = TxnEntry(header: TxnHeader(clientID: .none, cxid: 0, zxid: zxid, time: time, type: txn.opCode), txn: txn)
            var buffer = ByteBuffer()
            TxnCodec.write(entry, to: &buffer)
            try log!.append(zxid: zxid, payload: Array(buffer.readableBytesView))
            entries.append(entry)
            // Apply as the replica does: each txn once durable (here: in small batches).
            if entries.count == 7 || i == count - 1 {
                try await log!.waitUntilDurable(zxid)
                for e in entries {
                    let result = try store!.apply(e)
                    #expect(result.succeeded, "txn \(e.zxid): \(result.error) (seed \(seed))")
                }
                entries.removeAll()
            }
        }
    }

    func service(wallClock: @escaping @Sendable () -> Int64 = { 0 }) throws -> BackupService {
        let store = self.store!
        let log = self.log!
        return try BackupService(config: config, store: { store }, log: { log }, logger: .init(label: "test-backup"), wallClock: wallClock)
    }
}

/// Restores the chain in `backups` into a new data directory under `root` and returns its digest.
func restoredDigest(_ backups: String, root: String, target: RestoreTarget = .latest) throws -> TreeDigest {
    let name = root + "/restored-\(UInt32.random(in: 0...UInt32.max))"
    let report = try Restore.restore(from: backups, to: target, into: DataDirectory(dataDir: name))
    return report.digest
}
