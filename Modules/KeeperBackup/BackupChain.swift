import KeeperModel

/// The backups in one directory, in sequence order: each full backup starts a chain, each
/// incremental continues the backup before it (`previousZxid` = that backup's `zxid`, same
/// database id).
public struct BackupChain: Sendable {
    public var directory: String
    /// Every manifest, by sequence.
    public var manifests: [BackupManifest]
    /// The highest sequence any file in the directory uses (manifests or orphaned data files
    /// of an unfinished backup), so a new backup never reuses a name.
    public var highestSequence: Int

    /// Reads every manifest in `directory` (which may be missing or empty).
    public static func load(_ directory: String) throws -> BackupChain {
        let names = try FileSystem.contents(directory) ?? []
        var manifests: [BackupManifest] = []
        var highest = 0
        for name in names {
            guard let dash = name.firstIndex(of: "-"), let sequence = Int(name[..<dash]) else { continue }
            highest = max(highest, sequence)
            guard name.hasSuffix(".json") else { continue }
            let manifest = try BackupManifest.load(directory + "/" + name)
            guard manifest.sequence == sequence, name == BackupManifest.fileName(sequence: sequence, kind: manifest.kind) else {
                throw BackupError.badManifest(file: directory + "/" + name, detail: "its name does not match its sequence \(manifest.sequence) and kind \(manifest.kind.rawValue)")
            }
            manifests.append(manifest)
        }
        manifests.sort { $0.sequence < $1.sequence }
        for (a, b) in zip(manifests, manifests.dropFirst()) where a.sequence == b.sequence {
            throw BackupError.badManifest(file: directory + "/" + BackupManifest.fileName(sequence: b.sequence, kind: b.kind), detail: "sequence \(b.sequence) is used twice")
        }
        return BackupChain(directory: directory, manifests: manifests, highestSequence: highest)
    }

    func path(_ manifest: BackupManifest) -> String {
        directory + "/" + BackupManifest.fileName(sequence: manifest.sequence, kind: manifest.kind)
    }

    /// Checks that every incremental continues the backup before it.
    public func checkLinks() throws {
        guard let first = manifests.first else {
            throw BackupError.badManifest(file: directory, detail: "no backup manifests in the directory")
        }
        guard first.kind == .full else {
            throw BackupError.gap(after: .zero, through: first.previousZxidValue, detail: "the first backup, \(path(first)), is incremental: its full backup is missing")
        }
        for (before, after) in zip(manifests, manifests.dropFirst()) where after.kind == .incremental {
            try checkLink(before, after)
        }
    }

    func checkLink(_ before: BackupManifest, _ after: BackupManifest) throws {
        guard before.databaseID == after.databaseID else {
            throw BackupError.badManifest(file: path(after), detail: "database \(after.databaseID) follows a backup of database \(before.databaseID)")
        }
        guard before.zxidValue == after.previousZxidValue else {
            if before.zxidValue < after.previousZxidValue {
                throw BackupError.gap(after: before.zxidValue, through: after.previousZxidValue, detail: "\(path(after)) continues from \(after.previousZxid) but \(path(before)) ends at \(before.zxid)")
            }
            throw BackupError.badManifest(file: path(after), detail: "continues from \(after.previousZxid) but the backup before it ends at \(before.zxid)")
        }
    }

    /// The backups a restore to `target` reads: the last full backup that starts at or before
    /// the target, and the incrementals after it.
    func segment(endingAt target: RestoreTarget) throws -> [BackupManifest] {
        try checkLinks()
        let fulls = manifests.indices.filter { manifests[$0].kind == .full }
        let chosen: Int?
        switch target {
        case .latest:
            chosen = fulls.last
        case .zxid(let z):
            chosen = fulls.last { manifests[$0].previousZxidValue <= z }
        case .time(let t):
            chosen = fulls.last { i in
                let m = manifests[i]
                if m.previousZxidValue == .zero { return true }
                return m.snapshotTime.map { $0 <= t } ?? false
            }
        }
        guard let start = chosen else {
            let earliest = manifests[fulls[0]]
            switch target {
            case .latest: preconditionFailure("checkLinks found a full backup")
            case .zxid(let z):
                throw BackupError.targetNotCovered(detail: "zxid \(z) is before the earliest full backup's snapshot at \(earliest.previousZxid)")
            case .time(let t):
                throw BackupError.targetNotCovered(detail: "time \(t) is not after any full backup's snapshot time (earliest: \(earliest.snapshotTime.map(String.init) ?? "unknown"))")
            }
        }
        var out = [manifests[start]]
        for m in manifests[(start + 1)...] {
            if m.kind == .full { break }
            out.append(m)
        }
        if case .zxid(let z) = target, let last = out.last, z > last.zxidValue {
            throw BackupError.targetNotCovered(detail: "zxid \(z) is after the last backup of the chain, which ends at \(last.zxid)")
        }
        return out
    }
}

/// Where a restore stops.
public enum RestoreTarget: Hashable, Sendable {
    /// Everything the last chain holds.
    case latest
    /// The last txn with zxid <= this one.
    case zxid(Zxid)
    /// The txns in order up to (not including) the first whose TxnHeader.time (ms since the
    /// epoch) is after this.
    case time(Int64)
}
