import KeeperModel

/// What the backup service is doing and has done, for `/commands/backup`, mntr's
/// `zk_backup_*`/`zk_log_*` lines and `/metrics` (which takes mntr's numeric lines).
public struct BackupStatus: Sendable {
    /// A backup (scheduled or streamed) in progress.
    public struct Running: Sendable {
        /// Tells concurrent runs apart.
        public var id: Int64
        /// "full", "incremental", "archive", "online-snapshot", "online-txns".
        public var kind: String
        public var startedAtMillis: Int64
        /// Content bytes done and total (incrementals count records).
        public var done: Int64
        public var total: Int64
    }

    /// One finished scheduled backup.
    public struct Success: Sendable {
        public var kind: String
        public var atMillis: Int64
        public var zxid: Zxid
        public var manifestPath: String
        public var seconds: Double
        public var bytes: Int64
    }

    public var scheduled: Bool
    public var directory: String?
    public var running: [Running] = []
    var nextRunID: Int64 = 1
    public var lastSuccess: Success?
    public var successCount: Int64 = 0
    public var lastFailureMillis: Int64?
    public var lastFailure: String?
    public var failureCount: Int64 = 0
    /// Full backups (chains) in the backup directory after the last backup or retention pass.
    public var chains = 0
    /// The zxid the backup chain reaches (what an incremental continues from).
    public var chainZxid: Zxid?
    /// Chains deleted by retention, in total.
    public var chainsDeleted: Int64 = 0

    // Log retention.
    public var purgeIntervalSeconds: Int
    public var lastPurgeMillis: Int64?
    public var lastPurgeBefore: Zxid?
    public var purgedSegments: Int64 = 0
    public var lastPurgeError: String?

    // Online commands.
    public var onlineEnabled: Bool
    public var snapshotsServed: Int64 = 0
    public var txnStreamsServed: Int64 = 0
    public var onlineRefused: Int64 = 0

    /// mntr lines (all numeric, so `/metrics` exports them as gauges).
    public var mntrPairs: [(String, String)] {
        let progress = running.first
        return [
            ("zk_backup_scheduled", scheduled ? "1" : "0"),
            ("zk_backup_in_progress", String(running.count)),
            ("zk_backup_bytes_done", String(progress?.done ?? 0)),
            ("zk_backup_bytes_total", String(progress?.total ?? 0)),
            ("zk_backup_success_count", String(successCount)),
            ("zk_backup_failure_count", String(failureCount)),
            ("zk_backup_last_success_time_ms", String(lastSuccess?.atMillis ?? 0)),
            ("zk_backup_last_success_zxid", String(lastSuccess?.zxid.rawValue ?? 0)),
            ("zk_backup_last_failure_time_ms", String(lastFailureMillis ?? 0)),
            ("zk_backup_chains", String(chains)),
            ("zk_backup_chain_zxid", String(chainZxid?.rawValue ?? 0)),
            ("zk_backup_online_snapshots", String(snapshotsServed)),
            ("zk_backup_online_txn_streams", String(txnStreamsServed)),
            ("zk_log_purged_segments", String(purgedSegments)),
            ("zk_log_last_purge_time_ms", String(lastPurgeMillis ?? 0)),
        ]
    }

    /// The `/commands/backup` fields.
    var json: [(String, JSON)] {
        func zxid(_ z: Zxid?) -> JSON { z.map { .string($0.description) } ?? .null }
        return [
            ("scheduled", .bool(scheduled)),
            ("directory", directory.map { .string($0) } ?? .null),
            ("in_progress", .array(running.map { r in
                .object([
                    ("kind", .string(r.kind)), ("started_at_ms", .int(r.startedAtMillis)),
                    ("bytes_done", .int(r.done)), ("bytes_total", .int(r.total)),
                ])
            })),
            ("last_success", lastSuccess.map { s in
                .object([
                    ("kind", .string(s.kind)), ("time_ms", .int(s.atMillis)), ("zxid", .string(s.zxid.description)),
                    ("manifest", .string(s.manifestPath)), ("seconds", .double(s.seconds)), ("bytes", .int(s.bytes)),
                ])
            } ?? .null),
            ("success_count", .int(successCount)),
            ("last_failure", lastFailure.map { message in
                .object([("time_ms", .int(lastFailureMillis ?? 0)), ("error", .string(message))])
            } ?? .null),
            ("failure_count", .int(failureCount)),
            ("chains", .int(Int64(chains))),
            ("chain_zxid", zxid(chainZxid)),
            ("chains_deleted", .int(chainsDeleted)),
            ("log_purge", .object([
                ("interval_seconds", .int(Int64(purgeIntervalSeconds))),
                ("last_time_ms", lastPurgeMillis.map { .int($0) } ?? .null),
                ("last_before_zxid", zxid(lastPurgeBefore)),
                ("purged_segments", .int(purgedSegments)),
                ("last_error", lastPurgeError.map { .string($0) } ?? .null),
            ])),
            ("online", .object([
                ("enabled", .bool(onlineEnabled)), ("snapshots_served", .int(snapshotsServed)),
                ("txn_streams_served", .int(txnStreamsServed)), ("refused", .int(onlineRefused)),
            ])),
        ]
    }
}
