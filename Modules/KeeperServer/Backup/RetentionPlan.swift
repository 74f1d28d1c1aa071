import Foundation
import KeeperBackup
import KeeperLog
import KeeperModel

/// Which backup chains and which log segments may go: pure decisions over what is on disk,
/// kept apart from the deleting so they are tested on their own.
enum RetentionPlan {
    /// The chains of a backup directory's manifests (in sequence order): each full backup with
    /// the incrementals after it. Incrementals before the first full (a damaged directory)
    /// form no chain and are never touched.
    static func chains(_ manifests: [BackupManifest]) -> [[BackupManifest]] {
        var out: [[BackupManifest]] = []
        for m in manifests {
            switch m.kind {
            case .full: out.append([m])
            case .incremental:
                if !out.isEmpty { out[out.count - 1].append(m) }
            }
        }
        return out
    }

    /// The chains to delete, oldest first: all but the newest `retainCount`, and those whose
    /// full backup was taken more than `retainDays` before `nowMillis` (0: no age limit). The
    /// newest chain is always kept; a chain is deleted whole or not at all, so every kept
    /// incremental still has its full backup and every link before it.
    static func chainsToDelete(
        _ manifests: [BackupManifest], retainCount: Int, retainDays: Int, nowMillis: Int64
    ) -> [[BackupManifest]] {
        precondition(retainCount >= 1, "retainCount must keep at least one chain")
        let all = chains(manifests)
        guard all.count > 1 else { return [] }
        var doomed = Set<Int>()
        for i in 0..<max(0, all.count - retainCount) { doomed.insert(i) }
        if retainDays > 0 {
            let cutoff = nowMillis - Int64(retainDays) * 86_400_000
            for i in 0..<(all.count - 1) {
                if let taken = createdMillis(all[i][0]), taken < cutoff { doomed.insert(i) }
            }
        }
        return doomed.sorted().map { all[$0] }
    }

    /// A manifest's `createdAt` in ms since the epoch.
    static func createdMillis(_ manifest: BackupManifest) -> Int64? {
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        guard let date = fractional.date(from: manifest.createdAt) ?? plain.date(from: manifest.createdAt) else { return nil }
        return Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// The zxid to pass to `KeeperLog.purge(before:)`, or nil when nothing may go.
    ///
    /// A closed segment may be deleted when every record in it is at or below `bound` (the
    /// store's checkpointed zxid, lowered to what the backup chain holds when backups need the
    /// log), it is not among the newest `keepClosed` closed segments (the margin that lets a
    /// lagging follower still catch up by DIFF), and every older segment goes too (purge
    /// removes a prefix). The active segment never goes.
    static func purgeBefore(_ segments: [LogSegment], bound: Zxid, keepClosed: Int) -> Zxid? {
        precondition(keepClosed >= 0)
        let closed = segments.filter { !$0.isActive }
        let candidates = closed.prefix(max(0, closed.count - keepClosed))
        var last: Zxid?
        for segment in candidates {
            let end = segment.lastZxid ?? segment.previousZxid
            guard end <= bound else { break }
            last = end
        }
        return last.map { Zxid($0.rawValue + 1) }
    }
}
