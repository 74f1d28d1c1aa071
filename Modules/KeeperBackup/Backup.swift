import Foundation
import KeeperLog
import KeeperModel
import KeeperStore
import KeeperWire
import NIOCore

/// Offline backups of a stopped data directory into a backup directory.
///
/// A full backup holds the store's compacted snapshot (at the store's last applied zxid S)
/// and every log record after S: together, every txn the data directory holds, and a point
/// in time anywhere after S can be restored. An incremental backup holds the log records
/// after the previous backup's zxid. Each manifest records the tree digest at the backup's
/// last zxid, computed by replaying its records onto a scratch copy of the store, so restore
/// and verify can prove they rebuilt exactly that tree.
public enum Backup {
    /// Progress and timing of one backup (for the command's report).
    public struct Report: Sendable {
        public var manifest: BackupManifest
        public var manifestPath: String
        public var seconds: Double
    }

    /// Takes a full backup of `data` into `directory` (created if missing).
    public static func full(_ data: DataDirectory, to directory: String) throws -> Report {
        try run(data, to: directory, kind: .full)
    }

    /// Takes an incremental backup: the log records after the last backup in `directory`.
    /// Returns nil when the data directory holds nothing newer.
    public static func incremental(_ data: DataDirectory, to directory: String) throws -> Report? {
        let report = try run(data, to: directory, kind: .incremental)
        return report.manifest.recordCount == 0 ? nil : report
    }

    static func run(_ data: DataDirectory, to directory: String, kind: BackupManifest.Kind) throws -> Report {
        let started = DispatchTime.now().uptimeNanoseconds
        try data.checkNotInUse()
        let databaseID = try data.databaseID()
        guard FileSystem.exists(data.storePath + "/" + KeeperStore.dataFileName) else {
            throw BackupError.badDataDirectory(path: data.dataDir, detail: "no store in \(data.storePath)")
        }
        try FileSystem.makeDirectories(directory)
        let chain = try BackupChain.load(directory)
        var previous: BackupManifest?
        if kind == .incremental {
            guard let last = chain.manifests.last else {
                throw BackupError.badManifest(file: directory, detail: "no backup to continue: take a full backup first")
            }
            try chain.checkLinks()
            guard last.databaseID == String(databaseID, radix: 16) else {
                throw BackupError.inconsistentSource(detail: "the data directory is database \(String(databaseID, radix: 16)), the backups in \(directory) are of database \(last.databaseID): take a full backup (a restored data directory gets a new database id)")
            }
            previous = last
        }
        let sequence = chain.highestSequence + 1
        let base = BackupManifest.baseName(sequence: sequence, kind: kind)
        let work = try FileSystem.makeTemporaryDirectory(in: directory, prefix: ".work-" + base)
        var created: [String] = []
        do {
            let report = try take(
                data, databaseID: databaseID, into: directory, work: work, kind: kind, sequence: sequence, base: base,
                previous: previous, created: &created, started: started)
            try FileSystem.removeTree(work)
            return report
        } catch {
            for name in created { FileSystem.removeAfterFailure(directory + "/" + name) }
            FileSystem.removeAfterFailure(work)
            throw error
        }
    }

    private static func take(
        _ data: DataDirectory, databaseID: UInt64, into directory: String, work: String, kind: BackupManifest.Kind,
        sequence: Int, base: String, previous: BackupManifest?, created: inout [String], started: UInt64
    ) throws -> Report {
        // 1. A compacted snapshot of the stopped store, in the scratch directory.
        let scratchStore = work + "/store"
        try FileSystem.makeDirectory(scratchStore)
        do {
            var configuration = StoreConfiguration()
            configuration.readOnly = true
            let source = try KeeperStore(directory: data.storePath, configuration: configuration)
            try source.snapshot(toDirectory: scratchStore)
        }
        let scratch = try KeeperStore(directory: scratchStore)
        let snapshotDigest = try scratch.verifyDigest()
        let snapshotZxid = snapshotDigest.zxid
        if let previous, previous.zxidValue == snapshotZxid, !previous.digest.matches(snapshotDigest) {
            throw BackupError.inconsistentSource(detail: "at \(snapshotZxid) the store has \(snapshotDigest) but the last backup recorded \(previous.digest): its history differs from the backups'")
        }

        // 2. The snapshot file itself (full backups).
        var files: [BackupFileSummary] = []
        if kind == .full {
            let writer = try BackupFileWriter(directory: directory, name: base + ".store", content: .store)
            created.append(writer.name)
            try FileSystem.copy(file: scratchStore + "/" + KeeperStore.dataFileName, into: writer)
            files.append(try writer.finish())
        }

        // 3. The log: check it reaches back to what the backup needs, then stream it.
        let log = try scanLog(data, databaseID: databaseID)
        let after = previous?.zxidValue ?? snapshotZxid
        let end = max(snapshotZxid, log.lastZxid ?? .zero)
        if let previous {
            guard end >= after else {
                throw BackupError.inconsistentSource(detail: "the data directory ends at \(end), before the last backup (\(previous.zxid)): it is not the directory these backups were taken from")
            }
        }
        if end > after {
            // Records after `after` must all be in the log: it holds everything after its first
            // segment's previous zxid; with no log, nothing after the store's zxid.
            let oldest = log.oldestZxid ?? snapshotZxid
            if oldest > after {
                throw BackupError.gap(after: after, through: oldest, detail: "the log of \(data.logPath) starts after \(oldest) (purged)")
            }
        }
        if let oldest = log.oldestZxid, oldest > snapshotZxid {
            throw BackupError.inconsistentSource(detail: "the store is at \(snapshotZxid) but the log starts after \(oldest): the server would refuse to start")
        }

        let writer = try BackupFileWriter(directory: directory, name: base + ".txns", content: .txns)
        created.append(writer.name)
        let stream = TxnStreamWriter(writer)
        var snapshotTime: Int64? = snapshotZxid == .zero ? 0 : nil
        var firstTime: Int64?
        var lastTime: Int64?
        var pending: [TxnEntry] = []
        var chainCheck = previous.map { (zxid: $0.zxidValue, digest: $0.digest) }
        func flush() throws {
            guard !pending.isEmpty else { return }
            try scratch.write { batch in for entry in pending { try batch.apply(entry) } }
            pending.removeAll(keepingCapacity: true)
        }
        if log.present {
            _ = try LogDirectory.scan(data.logPath) { name, location, payload in
                let zxid = location.zxid
                guard zxid >= snapshotZxid || zxid > after else { return }
                let entry = try decode(payload, zxid: zxid, file: data.logPath + "/" + name, offset: location.offset)
                if zxid == snapshotZxid { snapshotTime = entry.header.time }
                if zxid > after {
                    try stream.append(zxid: zxid, payload: payload)
                    if firstTime == nil { firstTime = entry.header.time }
                    lastTime = entry.header.time
                }
                if zxid > snapshotZxid {
                    pending.append(entry)
                    if pending.count >= 1024 || zxid == chainCheck?.zxid { try flush() }
                    if let check = chainCheck, zxid == check.zxid {
                        let here = try scratch.digest()
                        guard check.digest.matches(here) else {
                            throw BackupError.inconsistentSource(detail: "at \(check.zxid) the data directory's tree has \(here) but the last backup recorded \(check.digest): its history differs from the backups'")
                        }
                        chainCheck = nil
                    }
                }
            }
        }
        try flush()
        files.append(try writer.finish())
        let finalDigest = try scratch.digest()
        precondition(finalDigest.zxid == end, "replayed to \(finalDigest.zxid), expected \(end)")

        let manifest = BackupManifest(
            format: BackupManifest.formatName, formatVersion: BackupManifest.currentVersion, kind: kind,
            sequence: sequence, databaseID: String(databaseID, radix: 16),
            previousZxid: (kind == .full ? snapshotZxid : after).description, zxid: end.description,
            digest: DigestRecord(finalDigest),
            snapshotDigest: kind == .full ? DigestRecord(snapshotDigest) : nil,
            snapshotTime: kind == .full ? snapshotTime : nil,
            firstRecordZxid: stream.first?.description, lastRecordZxid: stream.last?.description,
            recordCount: stream.count, firstRecordTime: firstTime, lastRecordTime: lastTime, files: files,
            toolVersion: BackupManifest.toolVersion, createdAt: iso8601(Date()))
        let manifestPath = directory + "/" + BackupManifest.fileName(sequence: sequence, kind: kind)
        if kind == .incremental && stream.count == 0 {
            // Nothing new: leave no files behind.
            for name in created { try FileSystem.removeTree(directory + "/" + name) }
            created = []
            return Report(manifest: manifest, manifestPath: manifestPath, seconds: seconds(since: started))
        }
        for file in files { precondition(FileSystem.exists(directory + "/" + file.name)) }
        try FileSystem.writeDurably(Array(try manifest.encoded()), to: manifestPath)
        created.append(BackupManifest.fileName(sequence: sequence, kind: kind))
        return Report(manifest: manifest, manifestPath: manifestPath, seconds: seconds(since: started))
    }

    /// The tree a stopped data directory holds, as the server would have it after replaying
    /// its log: a compacted copy of the store in `scratch` (an empty directory) with every log
    /// record after the store's zxid applied.
    static func materialize(_ data: DataDirectory, into scratch: String) throws -> KeeperStore {
        let databaseID = try data.databaseID()
        do {
            var configuration = StoreConfiguration()
            configuration.readOnly = true
            let source = try KeeperStore(directory: data.storePath, configuration: configuration)
            try source.snapshot(toDirectory: scratch)
        }
        let store = try KeeperStore(directory: scratch)
        try replayLog(data, databaseID: databaseID, into: store)
        return store
    }

    /// Applies the log records after the store's last applied zxid to `store` (the data
    /// directory's own or a copy of it), as the server does when it starts.
    static func replayLog(_ data: DataDirectory, databaseID: UInt64, into store: KeeperStore) throws {
        let applied = try store.lastAppliedZxid()
        let log = try scanLog(data, databaseID: databaseID)
        if let oldest = log.oldestZxid, oldest > applied {
            throw BackupError.inconsistentSource(detail: "the store is at \(applied) but the log starts after \(oldest): the server would refuse to start")
        }
        guard log.present, let last = log.lastZxid, last > applied else { return }
        var pending: [TxnEntry] = []
        _ = try LogDirectory.scan(data.logPath) { name, location, payload in
            guard location.zxid > applied else { return }
            pending.append(try decode(payload, zxid: location.zxid, file: data.logPath + "/" + name, offset: location.offset))
            if pending.count >= 1024 {
                try store.write { batch in for entry in pending { try batch.apply(entry) } }
                pending.removeAll(keepingCapacity: true)
            }
        }
        if !pending.isEmpty { try store.write { batch in for entry in pending { try batch.apply(entry) } } }
    }

    struct LogSummary {
        var present: Bool
        var oldestZxid: Zxid?
        var lastZxid: Zxid?
    }

    /// Scans the log read-only (a torn tail is not part of it, as the server would cut it)
    /// and checks it is sound and this database's.
    static func scanLog(_ data: DataDirectory, databaseID: UInt64) throws -> LogSummary {
        guard FileSystem.isDirectory(data.logPath) else { return LogSummary(present: false) }
        let report = try LogDirectory.scan(data.logPath)
        if let problem = report.corruptions.first {
            throw BackupError.inconsistentSource(detail: "the log is damaged: \(problem)")
        }
        for entry in report.entries {
            guard let scan = entry.scan else { continue }
            guard scan.databaseID == databaseID else {
                throw BackupError.inconsistentSource(detail: "log segment \(scan.path) belongs to database \(String(scan.databaseID, radix: 16)), not \(String(databaseID, radix: 16))")
            }
        }
        return LogSummary(present: true, oldestZxid: report.entries.first?.scan?.previousZxid, lastZxid: report.lastZxid)
    }

    static func decode(_ payload: UnsafeRawBufferPointer, zxid: Zxid, file: String, offset: Int64) throws -> TxnEntry {
        let buffer = ByteBuffer(bytes: payload)
        let entry: TxnEntry
        do { entry = try TxnCodec.decode(buffer, maxLength: Int.max / 2).entry } catch {
            throw BackupError.corrupt(file: file, offset: offset, detail: "record \(zxid) does not decode as a txn: \(error)")
        }
        guard entry.zxid == zxid else {
            throw BackupError.corrupt(file: file, offset: offset, detail: "record \(zxid) holds txn \(entry.zxid)")
        }
        return entry
    }

    static func iso8601(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    static func seconds(since start: UInt64) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
