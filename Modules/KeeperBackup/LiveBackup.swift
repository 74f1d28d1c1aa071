import Foundation
import KeeperLog
import KeeperModel
import KeeperStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A consistent copy of a live store in a scratch directory, and what it holds. LMDB's MVCC
/// makes the copy free of write pauses: it reads one read transaction while the server goes
/// on writing.
public struct LiveSnapshot: Sendable {
    /// The scratch directory holding the copy's `KeeperStore.dataFileName`.
    public var directory: String
    /// The copy's digest (recomputed from every node and checked against the maintained one);
    /// its `zxid` is the snapshot's.
    public var digest: TreeDigest
    /// The size of the copy's data file.
    public var bytes: Int64

    public var dataFile: String { directory + "/" + KeeperStore.dataFileName }

    /// Copies `store` (compacted) into `directory`, which must not exist yet. With `verify`,
    /// the copy's digest is recomputed from every node and checked against the maintained one
    /// (a full scan); without, the maintained digest is read (O(1)), for a caller whose reader
    /// recomputes it anyway (the online snapshot's client does, and compares).
    public static func take(of store: KeeperStore, into directory: String, verify: Bool = true) throws -> LiveSnapshot {
        guard mkdir(directory, 0o750) == 0 else { throw BackupError.io(operation: "mkdir", path: directory, errno: errno) }
        try store.snapshot(toDirectory: directory)
        let digest: TreeDigest
        do {
            var configuration = StoreConfiguration()
            configuration.readOnly = true
            let copy = try KeeperStore(directory: directory, configuration: configuration)
            digest = verify ? try copy.verifyDigest() : try copy.digest()
        }
        var st = stat()
        let file = directory + "/" + KeeperStore.dataFileName
        guard stat(file, &st) == 0 else { throw BackupError.io(operation: "stat", path: file, errno: errno) }
        return LiveSnapshot(directory: directory, digest: digest, bytes: Int64(st.st_size))
    }

    /// Streams the data file as a `.store` backup file through `emit` (the encoded blocks);
    /// `progress` gets the content bytes done.
    public func encode(emit: @escaping ([UInt8]) throws -> Void, progress: (Int64) -> Void = { _ in }) throws {
        let encoder = try BackupFrameEncoder(content: .store, emit: emit)
        try LiveBackup.readFile(dataFile) { bytes in
            try encoder.write(bytes)
            progress(encoder.rawBytes)
        }
        try encoder.finish()
        progress(encoder.rawBytes)
    }
}

/// Backups of a running server, taken by the server itself (scheduled backups) or streamed
/// by its admin endpoints to `keeperctl backup --server`: the same files and manifests as
/// `Backup`'s offline ones, so `restore` and `verify` read them unchanged.
///
/// A live full backup holds the store's snapshot at zxid S and no log records (previousZxid =
/// zxid = S); a live incremental holds the log's records after the chain's last zxid up to the
/// store's last applied zxid C (every record up to C is durable: the store applies a txn only
/// once the log has it), with the live store's digest at C, read in the same read transaction
/// as C itself.
public enum LiveBackup {
    /// What a live backup reads: the server's store and log, and the data directory's id.
    public struct Source: Sendable {
        public var store: KeeperStore
        public var log: KeeperLog
        public var databaseID: UInt64
        public init(store: KeeperStore, log: KeeperLog, databaseID: UInt64) {
            self.store = store
            self.log = log
            self.databaseID = databaseID
        }
    }

    /// Bytes done and total (content bytes), for progress reports.
    public typealias Progress = (_ done: Int64, _ total: Int64) -> Void

    /// The committed state: the store's digest and last applied zxid, from one read transaction.
    public static func committed(_ store: KeeperStore) throws -> TreeDigest { try store.digest() }

    /// Calls `body` with every log record after `after` up to and including `through`, in
    /// order. Throws `BackupError.gap` when the log no longer holds the records right after
    /// `after` (purged), and `.inconsistentSource` when it ends before `through`.
    public static func forEachRecord(
        in log: KeeperLog, after: Zxid, through: Zxid, _ body: (Zxid, [UInt8]) throws -> Void
    ) throws {
        guard through > after else { return }
        let segments = log.segments()
        guard let oldest = segments.first?.previousZxid, oldest <= after else {
            throw BackupError.gap(
                after: after, through: segments.first?.previousZxid,
                detail: segments.isEmpty ? "the server's log holds no records" : "the server's log starts after \(segments.first!.previousZxid) (purged)")
        }
        let reader = log.read(from: Zxid(after.rawValue + 1))
        var last = after
        while let record = try reader.next() {
            if record.zxid <= after { continue }
            if record.zxid > through { break }
            try body(record.zxid, record.payload)
            last = record.zxid
        }
        guard last == through else {
            throw BackupError.inconsistentSource(detail: "the log ends at \(last), before the store's last applied zxid \(through)")
        }
    }

    /// The TxnHeader.time of txn `zxid` when the log still holds it (0 for zxid 0).
    public static func time(of zxid: Zxid, in log: KeeperLog) throws -> Int64? {
        if zxid == .zero { return 0 }
        guard let first = log.segments().first, first.previousZxid < zxid else { return nil }
        guard let record = try log.read(from: zxid).next(), record.zxid == zxid else { return nil }
        return try record.payload.withUnsafeBytes { try Backup.decode($0, zxid: zxid, file: log.configuration.directory, offset: -1) }.header.time
    }

    /// Takes a full backup of the live `source` into `directory` (created if missing).
    public static func full(_ source: Source, to directory: String, progress: Progress = { _, _ in }) throws -> Backup.Report {
        let started = DispatchTime.now().uptimeNanoseconds
        let slot = try ChainSlot(directory: directory, kind: .full)
        return try slot.run { work, created in
            let snapshot = try LiveSnapshot.take(of: source.store, into: work + "/store")
            let storeWriter = try BackupFileWriter(directory: directory, name: slot.base + ".store", content: .store)
            created.append(storeWriter.name)
            try readFile(snapshot.dataFile) { bytes in
                try storeWriter.write(bytes)
                progress(storeWriter.rawBytes, snapshot.bytes)
            }
            let storeSummary = try storeWriter.finish()
            progress(snapshot.bytes, snapshot.bytes)
            let txnsWriter = try BackupFileWriter(directory: directory, name: slot.base + ".txns", content: .txns)
            created.append(txnsWriter.name)
            let txnsSummary = try txnsWriter.finish()
            let manifest = BackupManifest(
                format: BackupManifest.formatName, formatVersion: BackupManifest.currentVersion, kind: .full,
                sequence: slot.sequence, databaseID: String(source.databaseID, radix: 16),
                previousZxid: snapshot.digest.zxid.description, zxid: snapshot.digest.zxid.description,
                digest: DigestRecord(snapshot.digest), snapshotDigest: DigestRecord(snapshot.digest),
                snapshotTime: try time(of: snapshot.digest.zxid, in: source.log),
                firstRecordZxid: nil, lastRecordZxid: nil, recordCount: 0, firstRecordTime: nil, lastRecordTime: nil,
                files: [storeSummary, txnsSummary], toolVersion: BackupManifest.toolVersion, createdAt: Backup.iso8601(Date()))
            return try slot.commit(manifest, created: &created, started: started)
        }
    }

    /// Takes an incremental backup of the live `source`: the log records after the last
    /// backup in `directory` up to the store's last applied zxid. Returns nil when there is
    /// nothing new. Throws `.gap` when the log was purged past the chain's end, and
    /// `.inconsistentSource` when the chain is another database's (take a full backup).
    public static func incremental(_ source: Source, to directory: String, progress: Progress = { _, _ in }) throws -> Backup.Report? {
        let started = DispatchTime.now().uptimeNanoseconds
        let (after, _) = try chainEnd(directory, databaseID: source.databaseID)
        let target = try committed(source.store)
        guard try checkTarget(target, after: after) else { return nil }
        let slot = try ChainSlot(directory: directory, kind: .incremental)
        return try slot.run { _, created in
            let writer = try BackupFileWriter(directory: directory, name: slot.base + ".txns", content: .txns)
            created.append(writer.name)
            let stream = TxnStreamWriter(writer)
            var firstTime: Int64?
            var lastTime: Int64?
            // Records to go, as far as zxids tell (exact within one epoch).
            let from = after.zxidValue
            let total = Int64(target.zxid.epoch == from.epoch ? target.zxid.counter - from.counter : target.zxid.counter)
            try forEachRecord(in: source.log, after: after.zxidValue, through: target.zxid) { zxid, payload in
                let time = try payload.withUnsafeBytes { bytes in
                    try stream.append(zxid: zxid, payload: bytes)
                    return try Backup.decode(bytes, zxid: zxid, file: source.log.configuration.directory, offset: -1).header.time
                }
                if firstTime == nil { firstTime = time }
                lastTime = time
                progress(Int64(stream.count), total)
            }
            let summary = try writer.finish()
            let manifest = BackupManifest(
                format: BackupManifest.formatName, formatVersion: BackupManifest.currentVersion, kind: .incremental,
                sequence: slot.sequence, databaseID: String(source.databaseID, radix: 16),
                previousZxid: after.zxid, zxid: target.zxid.description, digest: DigestRecord(target),
                snapshotDigest: nil, snapshotTime: nil,
                firstRecordZxid: stream.first?.description, lastRecordZxid: stream.last?.description,
                recordCount: stream.count, firstRecordTime: firstTime, lastRecordTime: lastTime, files: [summary],
                toolVersion: BackupManifest.toolVersion, createdAt: Backup.iso8601(Date()))
            return try slot.commit(manifest, created: &created, started: started)
        }
    }

    /// The last backup of the chain in `directory`, checked (links, database id): what an
    /// incremental continues.
    public static func chainEnd(_ directory: String, databaseID: UInt64) throws -> (BackupManifest, BackupChain) {
        let chain = try BackupChain.load(directory)
        guard let last = chain.manifests.last else {
            throw BackupError.badManifest(file: directory, detail: "no backup to continue: take a full backup first")
        }
        try chain.checkLinks()
        guard last.databaseID == String(databaseID, radix: 16) else {
            throw BackupError.inconsistentSource(detail: "the server is database \(String(databaseID, radix: 16)), the backups in \(directory) are of database \(last.databaseID): take a full backup (a restored data directory gets a new database id)")
        }
        return (last, chain)
    }

    /// False when the server holds nothing after the chain's end; throws when it is behind it
    /// or differs at it.
    static func checkTarget(_ target: TreeDigest, after: BackupManifest) throws -> Bool {
        if target.zxid < after.zxidValue {
            throw BackupError.inconsistentSource(detail: "the server is at \(target.zxid), before the last backup (\(after.zxid)): it is not the server these backups were taken from")
        }
        if target.zxid == after.zxidValue {
            guard after.digest.matches(target) else {
                throw BackupError.inconsistentSource(detail: "at \(target.zxid) the server's tree has \(target) but the last backup recorded \(after.digest): its history differs from the backups'")
            }
            return false
        }
        return true
    }

    /// Reads a file in `BackupFileFormat.chunkBytes` blocks.
    static func readFile(_ path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BackupError.io(operation: "open", path: path, errno: errno) }
        defer { _ = close(fd) }  // read-only descriptor: nothing to lose on close
        var buffer = [UInt8](repeating: 0, count: BackupFileFormat.chunkBytes)
        while true {
            let n = buffer.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw BackupError.io(operation: "read", path: path, errno: errno)
            }
            if n == 0 { return }
            try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
        }
    }
}

/// The next backup's place in a backup directory: its sequence, file names and a scratch
/// directory; on failure everything it created is removed, on success the manifest is
/// written last (durably), which is what makes the backup exist.
struct ChainSlot {
    let directory: String
    let kind: BackupManifest.Kind
    let sequence: Int
    let base: String

    init(directory: String, kind: BackupManifest.Kind) throws {
        try FileSystem.makeDirectories(directory)
        let chain = try BackupChain.load(directory)
        self.directory = directory
        self.kind = kind
        sequence = chain.highestSequence + 1
        base = BackupManifest.baseName(sequence: sequence, kind: kind)
    }

    func run(_ body: (_ work: String, _ created: inout [String]) throws -> Backup.Report) throws -> Backup.Report {
        let work = try FileSystem.makeTemporaryDirectory(in: directory, prefix: ".work-" + base)
        var created: [String] = []
        do {
            let report = try body(work, &created)
            try FileSystem.removeTree(work)
            return report
        } catch {
            for name in created { FileSystem.removeAfterFailure(directory + "/" + name) }
            FileSystem.removeAfterFailure(work)
            throw error
        }
    }

    func commit(_ manifest: BackupManifest, created: inout [String], started: UInt64) throws -> Backup.Report {
        precondition(manifest.sequence == sequence && manifest.kind == kind)
        for file in manifest.files { precondition(FileSystem.exists(directory + "/" + file.name)) }
        let name = BackupManifest.fileName(sequence: sequence, kind: kind)
        try FileSystem.writeDurably(Array(try manifest.encoded()), to: directory + "/" + name)
        created.append(name)
        return Backup.Report(manifest: manifest, manifestPath: directory + "/" + name, seconds: Backup.seconds(since: started))
    }
}
