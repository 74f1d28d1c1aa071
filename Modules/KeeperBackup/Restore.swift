import Foundation
import KeeperModel
import KeeperStore
import KeeperWire
import NIOCore

/// Restores a data directory from a backup directory, and verifies backup directories.
///
/// Everything is rebuilt in a staging directory beside the target and moved into place only
/// once every frame checksum, every manifest and every digest on the way has checked out:
/// a damaged backup leaves the target exactly as it was.
public enum Restore {
    public struct Report: Sendable {
        /// The zxid the restored store is at.
        public var zxid: Zxid
        public var digest: TreeDigest
        /// Txns replayed onto the snapshot.
        public var replayed: Int
        /// The backups read (their manifest sequences).
        public var backups: [Int]
        /// The zxids whose digests were compared with a manifest's.
        public var verifiedAt: [Zxid]
        /// The new data directory's database id (a restored directory starts a new history).
        public var databaseID: UInt64
        public var seconds: Double
    }

    /// Restores `data` (which must be empty or missing, and not in use) from the backups in
    /// `directory`, up to `target`. The result starts with `swiftkeeper serve --data-dir D`.
    public static func restore(from directory: String, to target: RestoreTarget, into data: DataDirectory) throws -> Report {
        let started = DispatchTime.now().uptimeNanoseconds
        let chain = try BackupChain.load(directory)
        let segment = try chain.segment(endingAt: target)
        try data.checkNotInUse()
        try requireEmpty(data.dataDir, what: "data directory")
        if FileSystem.exists(data.logPath) { try requireEmpty(data.logPath, what: "log directory") }
        let parent = FileSystem.parent(of: data.dataDir)
        guard FileSystem.isDirectory(parent) else {
            throw BackupError.badDataDirectory(path: data.dataDir, detail: "its parent directory \(parent) does not exist")
        }
        let name = data.dataDir.split(separator: "/").last.map(String.init) ?? "data"
        let staging = try FileSystem.makeTemporaryDirectory(in: parent, prefix: ".restore-" + name)
        do {
            var report = try rebuild(chain: chain, segment: segment, target: target, storeDirectory: staging + "/store")
            let databaseID = UInt64.random(in: 1...UInt64.max)
            try DataDirectory.writeDatabaseID(databaseID, to: staging + "/database-id")
            report.databaseID = databaseID
            if FileSystem.exists(data.dataDir) {
                try FileSystem.rename(staging + "/store", data.storePath)
                try FileSystem.rename(staging + "/database-id", data.databaseIDPath)
                try FileSystem.syncDirectory(data.dataDir)
                try FileSystem.removeTree(staging)
            } else {
                try FileSystem.rename(staging, data.dataDir)
            }
            try FileSystem.syncDirectory(parent)
            report.seconds = Backup.seconds(since: started)
            return report
        } catch {
            FileSystem.removeAfterFailure(staging)
            throw error
        }
    }

    static func requireEmpty(_ path: String, what: String) throws {
        guard let names = try FileSystem.contents(path) else { return }
        guard names.isEmpty else {
            throw BackupError.badDataDirectory(path: path, detail: "the \(what) is not empty (\(names.prefix(3).joined(separator: ", "))\(names.count > 3 ? ", ..." : "")): restore only into an empty or new directory")
        }
    }

    /// What `verify` checked.
    public struct VerifyReport: Sendable {
        /// One line per backup: its manifest and what was proven.
        public var checked: [String]
        /// Files that belong to no manifest (an unfinished backup's leftovers).
        public var orphans: [String]
    }

    /// Checks every manifest, every file's frames and checksums, the chain's links, and
    /// rebuilds every chain in a scratch directory under `scratchParent` (removed afterwards)
    /// comparing the digest at every backup's zxid. Throws on the first problem.
    public static func verify(_ directory: String, scratchParent: String) throws -> VerifyReport {
        let chain = try BackupChain.load(directory)
        try chain.checkLinks()
        var checked: [String] = []
        var known = Set<String>()
        for m in chain.manifests {
            known.insert(BackupManifest.fileName(sequence: m.sequence, kind: m.kind))
            for f in m.files { known.insert(f.name) }
        }
        let orphans = (try FileSystem.contents(directory) ?? []).filter { !known.contains($0) }
        let fulls = chain.manifests.indices.filter { chain.manifests[$0].kind == .full }
        for (n, start) in fulls.enumerated() {
            let end = n + 1 < fulls.count ? fulls[n + 1] : chain.manifests.count
            let segment = Array(chain.manifests[start..<end])
            let scratch = try FileSystem.makeTemporaryDirectory(in: scratchParent, prefix: "keeper-verify")
            do {
                let report = try rebuild(chain: chain, segment: segment, target: .latest, storeDirectory: scratch + "/store")
                for m in segment {
                    checked.append("\(chain.path(m)): \(m.kind.rawValue), \(m.recordCount) txn(s) to \(m.zxid), \(m.digest): OK")
                }
                checked.append("chain from \(chain.path(segment[0])) restores to \(report.digest): OK")
                try FileSystem.removeTree(scratch)
            } catch {
                FileSystem.removeAfterFailure(scratch)
                throw error
            }
        }
        return VerifyReport(checked: checked, orphans: orphans)
    }

    /// Rebuilds the store of `segment` (a full backup and its incrementals) up to `target` in
    /// `storeDirectory` (created), checking everything on the way.
    static func rebuild(chain: BackupChain, segment: [BackupManifest], target: RestoreTarget, storeDirectory: String) throws -> Report {
        let full = segment[0]
        precondition(full.kind == .full)
        try FileSystem.makeDirectory(storeDirectory)
        // 1. The snapshot.
        let storeFile = full.files[0]
        do {
            let reader = try BackupFileReader(path: chain.directory + "/" + storeFile.name, content: .store, expected: storeFile)
            let out = storeDirectory + "/" + KeeperStore.dataFileName
            let fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw BackupError.io(operation: "create", path: out, errno: errno) }
            defer { _ = close(fd) }  // fsynced below; close cannot lose synced data
            while let chunk = try reader.nextChunk() {
                var done = 0
                while done < chunk.count {
                    let n = chunk.withUnsafeBytes { posixWrite(fd, $0.baseAddress! + done, chunk.count - done) }
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw BackupError.io(operation: "write", path: out, errno: errno)
                    }
                    done += n
                }
            }
            guard fsync(fd) == 0 else { throw BackupError.io(operation: "fsync", path: out, errno: errno) }
        }
        let store = try KeeperStore(directory: storeDirectory)
        let snapshotDigest = try store.verifyDigest()
        var verifiedAt: [Zxid] = []
        if let expected = full.snapshotDigest {
            guard expected.matches(snapshotDigest) else {
                throw BackupError.digestMismatch(at: snapshotDigest.zxid, expected: expected.description, found: snapshotDigest.description)
            }
            verifiedAt.append(snapshotDigest.zxid)
        }
        // 2. The txns, backup by backup.
        var replayed = 0
        var pending: [TxnEntry] = []
        var stopped = false
        var read: [Int] = []
        func flush() throws {
            guard !pending.isEmpty else { return }
            try store.write { batch in for entry in pending { try batch.apply(entry) } }
            replayed += pending.count
            pending.removeAll(keepingCapacity: true)
        }
        for m in segment where !stopped {
            read.append(m.sequence)
            let file = m.files[m.files.count - 1]
            let path = chain.directory + "/" + file.name
            let reader = TxnStreamReader(try BackupFileReader(path: path, content: .txns, expected: file))
            var previous = m.previousZxidValue
            var count = 0
            while let record = try reader.next() {
                guard record.zxid > previous else {
                    throw BackupError.corrupt(file: path, offset: reader.file.chunkOffset, detail: "record \(record.zxid) does not follow \(previous)")
                }
                previous = record.zxid
                count += 1
                if case .zxid(let z) = target, record.zxid > z {
                    stopped = true
                    break
                }
                let entry = try record.payload.withUnsafeBytes {
                    try Backup.decode($0, zxid: record.zxid, file: path, offset: reader.file.chunkOffset)
                }
                if case .time(let t) = target, entry.header.time > t {
                    stopped = true
                    break
                }
                pending.append(entry)
                if pending.count >= 1024 { try flush() }
            }
            if stopped { break }
            guard count == m.recordCount, previous == (m.lastRecordZxid.flatMap(Zxid.parse) ?? m.previousZxidValue) else {
                throw BackupError.badManifest(file: chain.path(m), detail: "records \(count) up to \(previous) in \(file.name), the manifest lists \(m.recordCount) up to \(m.lastRecordZxid ?? m.previousZxid)")
            }
            try flush()
            let digest = try store.digest()
            guard m.digest.matches(digest) else {
                throw BackupError.digestMismatch(at: digest.zxid, expected: m.digest.description, found: digest.description)
            }
            if verifiedAt.last != digest.zxid { verifiedAt.append(digest.zxid) }
        }
        try flush()
        // The maintained digest is what was compared; a full recount proves the tree matches it.
        let final = try store.verifyDigest()
        try store.sync()
        return Report(
            zxid: final.zxid, digest: final, replayed: replayed, backups: read, verifiedAt: verifiedAt, databaseID: 0,
            seconds: 0)
    }
}
