import Foundation
import KeeperLog
import KeeperModel
import KeeperStore
import KeeperWire
import NIOCore
import Testing

@testable import KeeperBackup

/// A directory removed when the test is done.
final class TemporaryDirectory: Sendable {
    let path: String
    init() throws {
        var template = Array((NSTemporaryDirectory() + "keeper-backup-XXXXXX").utf8CString)
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
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A server's data directory built by applying txns to its KeeperStore and KeeperLog
/// directly, as the server's replica does (log first, then the store), plus a shadow store
/// that always holds every txn: the expected tree at any zxid.
final class SourceDirectory {
    let root = try! TemporaryDirectory()
    let data: DataDirectory
    let databaseID: UInt64 = 0x5eed_0000_0000_0001
    let shadow: KeeperStore
    var store: KeeperStore?
    var log: KeeperLog?
    /// While true, txns reach the log only: the store stays at its last checkpoint, as when a
    /// server stops before applying (restart replays them).
    var storeLags = false
    var zxid = Zxid(epoch: 1, counter: 0)
    var time: Int64 = 1_700_000_000_000
    var rng: SeededRandom
    let seed: UInt64
    var segmentMaxRecords: Int
    /// Paths of the live persistent nodes the workload writes under (besides /).
    var paths: [String] = []

    init(seed: UInt64, segmentMaxRecords: Int = 10_000) throws {
        self.seed = seed
        rng = SeededRandom(seed: seed)
        self.segmentMaxRecords = segmentMaxRecords
        data = DataDirectory(dataDir: root.path + "/data")
        try FileSystem.makeDirectory(data.dataDir)
        try DataDirectory.writeDatabaseID(databaseID, to: data.databaseIDPath)
        shadow = try KeeperStore(directory: root.path + "/shadow")
        try start()
    }

    /// Opens the store and the log and replays the log after the store's zxid (a restart).
    func start() throws {
        let store = try KeeperStore(directory: data.storePath)
        let log = try KeeperLog.open(LogConfiguration(
            directory: data.logPath, databaseID: databaseID, preallocationSize: 64 << 10, segmentMaxRecords: segmentMaxRecords))
        let applied = try store.lastAppliedZxid()
        if let next = applied.next {
            let reader = log.read(from: next)
            var entries: [TxnEntry] = []
            while let record = try reader.next() {
                entries.append(try TxnCodec.decode(ByteBuffer(bytes: record.payload), maxLength: Int.max / 2).entry)
            }
            try store.apply(entries)
        }
        self.store = store
        self.log = log
    }

    /// Stops the "server": the log is closed, the store checkpointed and closed.
    func stop() throws {
        try log?.close()
        log = nil
        try store?.sync()
        store = nil
    }

    @discardableResult
    func apply(_ txn: Txn, session: SessionID = .none) throws -> TxnResult {
        zxid = zxid.next!
        time += 1_000
        let entry = TxnEntry(header: TxnHeader(clientID: session, cxid: 0, zxid: zxid, time: time, type: txn.opCode), txn: txn)
        var buffer = ByteBuffer()
        TxnCodec.write(entry, to: &buffer)
        try log!.append(zxid: zxid, payload: Array(buffer.readableBytesView))
        if !storeLags { try store!.apply(entry) }
        return try shadow.apply(entry)
    }

    func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }

    func create(_ path: String, data: [UInt8]? = nil) throws {
        let result = try apply(.create(CreateTxn(path: path, data: data ?? bytes(Int.random(in: 0...64, using: &rng)), acl: ACL.openUnsafe, kind: .persistent)))
        #expect(result.succeeded, "create \(path): \(result.error) (seed \(seed))")
        paths.append(path)
    }

    /// Deletes `path` and everything under it, children first (a recursive delete as
    /// zkCli's deleteall does it).
    func deleteRecursively(_ path: String) throws {
        let children = try shadow.read { try $0.children(of: path)?.names } ?? []
        for name in children { try deleteRecursively(path + "/" + name) }
        let result = try apply(.delete(DeleteTxn(path: path)))
        #expect(result.succeeded, "delete \(path): \(result.error) (seed \(seed))")
        paths.removeAll { $0 == path }
    }

    /// `count` random writes under `under`: creates (some sequential), setData, setACL, leaf
    /// deletes, error txns and sessions.
    func randomWrites(_ count: Int, under: String) throws {
        if try !shadow.read({ try $0.exists(under) }) { try create(under) }
        for _ in 0..<count {
            let mine = paths.filter { $0 == under || $0.hasPrefix(under + "/") }
            let target = mine.randomElement(using: &rng)!
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<35:
                try create(target + "/n\(Int.random(in: 0..<1_000_000, using: &rng))-\(zxid.counter)")
            case 35..<45:
                let count = try shadow.read { try $0.childCreateCount(of: target) }!
                let path = target + "/seq-" + ZNodePath.sequenceSuffix(count)
                let result = try apply(.create(CreateTxn(path: path, data: bytes(8), acl: ACL.openUnsafe, kind: .persistent, parentCVersion: count + 1)))
                #expect(result.succeeded, "sequential create \(path): \(result.error) (seed \(seed))")
                paths.append(path)
            case 45..<75:
                let version = try shadow.read { try $0.stat(at: target) }!.version
                try apply(.setData(SetDataTxn(path: target, data: bytes(Int.random(in: 0...128, using: &rng)), version: version + 1)))
            case 80..<85:
                let aversion = try shadow.read { try $0.stat(at: target) }!.aversion
                let acl = [ACL(perms: [.read, .write], id: Id(scheme: "digest", id: "u\(Int.random(in: 0..<5, using: &rng)):x"))]
                try apply(.setACL(SetACLTxn(path: target, acl: acl, version: aversion + 1)))
            case 85..<95 where target != under:
                let leaf = try shadow.read { try $0.childCount(of: target) } == 0
                if leaf {
                    try apply(.delete(DeleteTxn(path: target)))
                    paths.removeAll { $0 == target }
                } else {
                    try apply(.error(.noNode))
                }
            case 95..<98:
                try apply(.createSession(CreateSessionTxn(timeOut: 30_000)))
            default:
                try apply(.error(.nodeExists))
            }
        }
    }
}

/// The zxids, digest and node contents of a store, for comparing trees.
func treeSnapshot(_ store: KeeperStore) throws -> [String: ZNode] {
    var out: [String: ZNode] = [:]
    try store.read { view in
        try view.forEachNode { node in
            out[node.path] = node
            return true
        }
    }
    return out
}

func openStore(_ data: DataDirectory) throws -> KeeperStore {
    try KeeperStore(directory: data.storePath)
}

/// The names of the entries of `path` (empty when missing).
func entries(_ path: String) throws -> [String] { try FileSystem.contents(path) ?? [] }
