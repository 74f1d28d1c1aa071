/// Scheduled backups, online backup commands and log retention (zoo.cfg keys `backup.*`,
/// `admin.snapshot.enabled`, and ZooKeeper's `autopurge.*` adapted to the log), in one place
/// with their defaults. The README's "Backups run by the server" section documents each key.
public struct BackupSettings: Hashable, Sendable {
    /// `backup.dir`: where scheduled backups go (full backups and their incrementals, the
    /// files `keeperctl backup` writes). nil: the server takes no backups itself.
    public var directory: String?
    /// `backup.fullIntervalSeconds`: a new full backup (a new chain) this often; 0: only the
    /// first one, when the directory holds none. Default one day.
    public var fullIntervalSeconds = 86_400
    /// `backup.incrementalIntervalSeconds`: an incremental (the log's records since the last
    /// backup) this often; 0: none on a timer. Default one hour.
    public var incrementalIntervalSeconds = 3_600
    /// `backup.retainCount`: full backups (chains) kept; older chains are deleted whole.
    public var retainCount = 7
    /// `backup.retainDays`: chains whose full backup is older than this are deleted whole (the
    /// newest chain is always kept); 0: no age limit.
    public var retainDays = 0
    /// `backup.archiveLog`: continuous archiving (as PostgreSQL archives WAL): each time a log
    /// segment closes, an incremental carries everything committed up to now into the chain,
    /// and log purge never deletes a segment before it is archived.
    public var archiveLog = false
    /// `backup.archiveCheckIntervalMs`: how often the server looks for a closed segment to archive.
    public var archiveCheckIntervalMs = 1_000
    /// `backup.tempDir`: where online snapshots (`/commands/snapshot`) are staged: a compacted
    /// copy of the store is written there, then streamed. nil: the data directory.
    public var tempDirectory: String?
    /// `admin.snapshot.enabled` (ZooKeeper 3.9's `zookeeper.admin.snapshot.enabled`): whether
    /// the `snapshot` and `txns` admin commands answer at all (503 when disabled).
    public var onlineEnabled = true
    /// `autopurge.purgeIntervalSeconds` (SwiftKeeper): log purge period in seconds; when 0,
    /// `autopurge.purgeInterval` (hours, ZooKeeper's key) applies.
    public var purgeIntervalSeconds = 0

    /// The fewest chains `backup.retainCount` may keep.
    public static let minimumRetainCount = 1

    public init() {}
}
