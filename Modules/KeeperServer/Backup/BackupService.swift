import Foundation
import KeeperBackup
import KeeperLog
import KeeperModel
import KeeperStore
import Logging
import Synchronization

/// The server's backup service: scheduled full and incremental backups into `backup.dir`,
/// continuous log archiving, retention of backup chains, log purge, and the state the admin
/// commands (`backup`, `snapshot`, `txns`, `purge`), mntr and `/metrics` report.
///
/// It reads the store through LMDB read transactions and a compacted copy (MVCC: no write
/// pause), reads the log through `KeeperLog.read` (closed segments and the durable part of the
/// active one), and changes nothing on the write path: its only writes to the server's files
/// are `KeeperStore.sync()` (the checkpoint a purge relies on) and `KeeperLog.purge(before:)`.
///
/// The server starts one with `BackupService.start` once its store and log are open, and stops
/// it before closing them. While it runs, the admin server finds it by the data directory
/// (`BackupService.running(forDataDir:)`).
public final class BackupService: @unchecked Sendable {
    // Sendable proof: the `let`s are Sendable values or Sendable classes; `status` and
    // `schedule` are Mutexes; `condition` guards `stopping` and `thread` (read and written only
    // with it locked); `onlineSlots` is an Atomic.
    public let config: ServerConfig
    /// The server's store and log as they are now: replication may replace either (a SNAP
    /// installs another store, a reset empties the log), so they are fetched for each use.
    let currentStore: @Sendable () -> KeeperStore
    let currentLog: @Sendable () -> KeeperLog
    let logger: Logger
    let wallClock: @Sendable () -> Int64
    let status: Mutex<BackupStatus>
    let schedule = Mutex(Schedule())
    private let condition = NSCondition()
    private var stopping = false
    private var thread: Thread?
    /// Online streams running now (at most `maxOnlineStreams`).
    let onlineSlots = Atomic<Int>(0)

    /// The most online streams (`snapshot`/`txns`) served at once; more are answered 429.
    static let maxOnlineStreams = 1
    /// The longest the scheduler sleeps between looks at its clock.
    static let maxSleepMillis: Int64 = 60_000

    /// When each kind of work was last done (ms since the epoch), and what it must do next.
    struct Schedule {
        var lastFull: Int64?
        var lastIncremental: Int64?
        var lastArchiveCheck: Int64?
        var lastPurge: Int64?
        /// Set when an incremental could not continue the chain: the next backup is a full one.
        var forceFull = false
        var loaded = false
    }

    private static let registry = Mutex<[String: BackupService]>([:])

    /// The service running for the server whose data directory is `dataDir`, if any.
    public static func running(forDataDir dataDir: String) -> BackupService? {
        registry.withLock { $0[dataDir] }
    }

    /// Creates the service without starting its scheduler (tests drive `runDue(now:)`).
    init(
        config: ServerConfig, store: @escaping @Sendable () -> KeeperStore, log: @escaping @Sendable () -> KeeperLog,
        logger: Logger, wallClock: @escaping @Sendable () -> Int64
    ) throws {
        self.config = config
        currentStore = store
        currentLog = log
        _ = try DataDirectory(dataDir: config.dataDir, dataLogDir: config.effectiveDataLogDir).databaseID()
        self.logger = logger
        self.wallClock = wallClock
        status = Mutex(BackupStatus(
            scheduled: config.backup.directory != nil, directory: config.backup.directory,
            purgeIntervalSeconds: config.logPurgeIntervalSeconds, onlineEnabled: config.backup.onlineEnabled))
    }

    /// What a backup reads now: the current store and log, and the data directory's id (read
    /// each time: a restored or resynchronized directory may carry another).
    var source: LiveBackup.Source {
        get throws {
            LiveBackup.Source(
                store: currentStore(), log: currentLog(),
                databaseID: try DataDirectory(dataDir: config.dataDir, dataLogDir: config.effectiveDataLogDir).databaseID())
        }
    }

    /// Starts the service for a server whose store and log are open: registers it for the
    /// admin commands and, when backups are scheduled or the log is purged, starts its thread.
    /// `store` and `log` return the ones in use at each call (replication may replace them).
    /// Call `stop()` after closing the admin server and before closing the store and log.
    public static func start(
        config: ServerConfig, store: @escaping @Sendable () -> KeeperStore, log: @escaping @Sendable () -> KeeperLog,
        logger: Logger
    ) throws -> BackupService {
        let service = try BackupService(config: config, store: store, log: log, logger: logger, wallClock: BackupService.wallMillis)
        service.removeStaleSnapshotCopies()
        try service.register()
        if service.hasScheduledWork {
            let thread = Thread { service.loop() }
            thread.name = "swiftkeeper-backup"
            service.condition.lock()
            service.thread = thread
            service.condition.unlock()
            thread.start()
        }
        return service
    }

    /// The prefix of an online snapshot's scratch copy in `backup.tempDir` (or the data
    /// directory); `BackupAdminCommands` makes them, and removes each when its stream ends.
    static let snapshotCopyPrefix = ".online-snapshot-"

    /// Removes the scratch copies a server that died while streaming a snapshot left behind
    /// (only this server uses its data directory, so any copy found at start is stale).
    func removeStaleSnapshotCopies() {
        let parent = config.backup.tempDirectory ?? config.dataDir
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: parent) } catch {
            logger.warning("cannot list \(parent) for stale snapshot copies", metadata: ["error": "\(error)"])
            return
        }
        for name in names where name.hasPrefix(BackupService.snapshotCopyPrefix) {
            do {
                try FileManager.default.removeItem(atPath: parent + "/" + name)
                logger.notice("removed a stale online snapshot copy", metadata: ["path": "\(parent)/\(name)"])
            } catch {
                logger.warning("cannot remove a stale online snapshot copy", metadata: ["path": "\(parent)/\(name)", "error": "\(error)"])
            }
        }
    }

    func register() throws {
        try BackupService.registry.withLock { services in
            guard services[config.dataDir] == nil else {
                throw ServerStartError(message: "a backup service already runs for \(config.dataDir) in this process")
            }
            services[config.dataDir] = self
        }
    }

    /// Stops the scheduler (waiting for a backup in progress to finish) and the online
    /// streams, and unregisters. Close the admin server first: a stream whose connection is
    /// gone ends at its next write.
    public func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        // Thread has no join: wait until the loop and every stream say they have left.
        while thread != nil || onlineSlots.load(ordering: .acquiring) > 0 { condition.wait() }
        condition.unlock()
        BackupService.registry.withLock { services in
            if services[config.dataDir] === self { services[config.dataDir] = nil }
        }
    }

    var hasScheduledWork: Bool { config.backup.directory != nil || config.logPurgeIntervalSeconds > 0 }

    /// Called by an online stream's thread as it ends (see `stop`).
    func streamEnded() {
        condition.lock()
        onlineSlots.subtract(1, ordering: .acquiringAndReleasing)
        condition.broadcast()
        condition.unlock()
    }

    private func loop() {
        while true {
            let next = runDue(now: wallClock())
            condition.lock()
            if stopping {
                thread = nil
                condition.broadcast()
                condition.unlock()
                return
            }
            let sleep = max(1, min(next - wallClock(), BackupService.maxSleepMillis))
            _ = condition.wait(until: Date(timeIntervalSinceNow: Double(sleep) / 1000))
            let stop = stopping
            if stop {
                thread = nil
                condition.broadcast()
            }
            condition.unlock()
            if stop { return }
        }
    }

    @Sendable static func wallMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

    // MARK: The schedule

    /// Does whatever is due at `now` (ms since the epoch) and returns when to look again.
    /// The scheduler thread calls it; tests call it with their own clock.
    @discardableResult
    func runDue(now: Int64) -> Int64 {
        var next = now + BackupService.maxSleepMillis
        let settings = config.backup
        if let directory = settings.directory {
            loadSchedule(directory)
            var s = schedule.withLock { $0 }
            let fullDue = s.forceFull || s.lastFull == nil
                || (settings.fullIntervalSeconds > 0 && now >= s.lastFull! + Int64(settings.fullIntervalSeconds) * 1000)
            if fullDue {
                if runFull(directory, now: now) {
                    s.lastFull = now
                    s.lastIncremental = now
                    s.forceFull = false
                }
                s.lastArchiveCheck = now
                schedule.withLock { $0 = s }
                applyRetention(directory, now: now)
            } else {
                if settings.incrementalIntervalSeconds > 0,
                   now >= (s.lastIncremental ?? now) + Int64(settings.incrementalIntervalSeconds) * 1000 {
                    s.forceFull = !runIncremental(directory, kind: "incremental", now: now)
                    s.lastIncremental = now
                } else if settings.archiveLog, now >= (s.lastArchiveCheck ?? 0) + Int64(settings.archiveCheckIntervalMs) {
                    s.lastArchiveCheck = now
                    if closedSegmentNotArchived() {
                        s.forceFull = !runIncremental(directory, kind: "archive", now: now)
                    }
                }
                schedule.withLock { $0 = s }
            }
            s = schedule.withLock { $0 }
            if s.forceFull { next = min(next, now + 1000) }
            if settings.fullIntervalSeconds > 0, let last = s.lastFull {
                next = min(next, last + Int64(settings.fullIntervalSeconds) * 1000)
            }
            if settings.incrementalIntervalSeconds > 0 {
                next = min(next, (s.lastIncremental ?? now) + Int64(settings.incrementalIntervalSeconds) * 1000)
            }
            if settings.archiveLog { next = min(next, (s.lastArchiveCheck ?? now) + Int64(settings.archiveCheckIntervalMs)) }
        }
        let interval = Int64(config.logPurgeIntervalSeconds) * 1000
        if interval > 0 {
            let last = schedule.withLock { $0.lastPurge }
            if now >= (last ?? now) + interval {
                _ = purgeLog(now: now)
                schedule.withLock { $0.lastPurge = now }
                next = min(next, now + interval)
            } else {
                if last == nil { schedule.withLock { $0.lastPurge = now } }
                next = min(next, (last ?? now) + interval)
            }
        }
        return next
    }

    /// On the first run: when the chain's last full backup was taken, so a restart keeps the
    /// cadence instead of taking a full backup at every start.
    private func loadSchedule(_ directory: String) {
        guard !schedule.withLock({ $0.loaded }) else { return }
        var lastFull: Int64?
        do {
            let chain = try BackupChain.load(directory)
            if let full = chain.manifests.last(where: { $0.kind == .full }) { lastFull = RetentionPlan.createdMillis(full) }
            let chains = RetentionPlan.chains(chain.manifests).count
            status.withLock {
                $0.chains = chains
                $0.chainZxid = chain.manifests.last?.zxidValue
            }
        } catch {
            // A directory that cannot be read now is reported by the backup that follows.
            logger.warning("backup directory unreadable at start", metadata: ["dir": "\(directory)", "error": "\(error)"])
        }
        schedule.withLock {
            $0.lastFull = lastFull
            $0.loaded = true
        }
    }

    /// True when a closed log segment holds records the chain does not.
    func closedSegmentNotArchived() -> Bool {
        guard let archived = status.withLock({ $0.chainZxid }) else { return false }
        return currentLog().segments().contains { !$0.isActive && ($0.lastZxid ?? .zero) > archived }
    }

    // MARK: Backups

    /// Takes a full backup now; false (and the failure recorded) when it failed.
    @discardableResult
    func runFull(_ directory: String, now: Int64) -> Bool {
        let token = begin("full", now: now)
        do {
            let report = try LiveBackup.full(try source, to: directory) { done, total in self.progress(token, done, total) }
            succeeded(token, report, now: now)
            return true
        } catch {
            failed(token, "full backup into \(directory) failed: \(error)", now: now)
            return false
        }
    }

    /// Takes an incremental now; false when the chain cannot be continued (a gap: the log was
    /// purged, or a chain of another database) and a full backup is needed; true otherwise
    /// (also when an I/O error is reported: the next try may continue the chain).
    @discardableResult
    func runIncremental(_ directory: String, kind: String, now: Int64) -> Bool {
        let token = begin(kind, now: now)
        do {
            if let report = try LiveBackup.incremental(try source, to: directory, progress: { done, total in self.progress(token, done, total) }) {
                succeeded(token, report, now: now)
            } else {
                finish(token)
            }
            return true
        } catch let error as BackupError {
            failed(token, "\(kind) backup into \(directory) failed: \(error)", now: now)
            switch error {
            case .gap, .inconsistentSource, .badManifest: return false
            case .io, .corrupt, .truncated, .inUse, .badDataDirectory, .targetNotCovered, .digestMismatch, .badExport,
                 .importRefused, .badServer, .refused:
                return true
            }
        } catch {
            failed(token, "\(kind) backup into \(directory) failed: \(error)", now: now)
            return true
        }
    }

    /// Deletes the chains retention no longer keeps (whole chains only, newest backup first,
    /// manifests before their files, so every state on the way is a valid directory).
    func applyRetention(_ directory: String, now: Int64) {
        do {
            let chain = try BackupChain.load(directory)
            let doomed = RetentionPlan.chainsToDelete(
                chain.manifests, retainCount: config.backup.retainCount, retainDays: config.backup.retainDays, nowMillis: now)
            for backups in doomed {
                for m in backups.reversed() {
                    try remove(directory + "/" + BackupManifest.fileName(sequence: m.sequence, kind: m.kind))
                    for file in m.files { try remove(directory + "/" + file.name) }
                }
                logger.info("backup retention deleted a chain", metadata: [
                    "full": "\(backups[0].sequence)", "backups": "\(backups.count)", "zxid": "\(backups.last!.zxid)",
                ])
            }
            let remaining = RetentionPlan.chains(try BackupChain.load(directory).manifests).count
            status.withLock {
                $0.chains = remaining
                $0.chainsDeleted += Int64(doomed.count)
            }
        } catch {
            recordFailure("backup retention in \(directory) failed: \(error)", now: now)
        }
    }

    private func remove(_ path: String) throws {
        guard unlink(path) == 0 || errno == ENOENT else {
            throw BackupError.io(operation: "unlink", path: path, errno: errno)
        }
    }

    // MARK: Log purge

    /// Purges the log segments nothing needs any more (see `RetentionPlan.purgeBefore`):
    /// checkpoints the store first (so its durable zxid is known), lowers the bound to the
    /// backup chain's end when backups read the log, keeps `autopurge.snapRetainCount` closed
    /// segments. Returns the segments removed.
    @discardableResult
    public func purgeLog(now: Int64) -> [LogSegment] {
        do {
            let store = currentStore()
            let log = currentLog()
            let applied = try store.lastAppliedZxid()
            try store.sync()  // every txn up to `applied` is now durable in the store
            var bound = applied
            let backupsNeedLog = config.backup.directory != nil
                && (config.backup.archiveLog || config.backup.incrementalIntervalSeconds > 0)
            if backupsNeedLog {
                bound = min(bound, status.withLock { $0.chainZxid } ?? .zero)
            }
            let segments = log.segments()
            var removed: [LogSegment] = []
            let before = RetentionPlan.purgeBefore(segments, bound: bound, keepClosed: config.autopurgeSnapRetainCount)
            if let before { removed = try log.purge(before: before) }
            status.withLock {
                $0.lastPurgeMillis = now
                $0.lastPurgeBefore = before
                $0.purgedSegments += Int64(removed.count)
                $0.lastPurgeError = nil
            }
            if !removed.isEmpty {
                logger.info("log purged", metadata: [
                    "segments": "\(removed.count)", "before": "\(before!)", "checkpoint": "\(applied)", "bound": "\(bound)",
                ])
            }
            return removed
        } catch {
            logger.error("log purge failed", metadata: ["error": "\(error)"])
            status.withLock {
                $0.lastPurgeMillis = now
                $0.lastPurgeError = "\(error)"
            }
            return []
        }
    }

    // MARK: Status

    struct Token: Hashable { var id: Int64 }

    private func begin(_ kind: String, now: Int64) -> Token {
        status.withLock { s in
            let id = s.nextRunID
            s.nextRunID += 1
            s.running.append(BackupStatus.Running(id: id, kind: kind, startedAtMillis: now, done: 0, total: 0))
            return Token(id: id)
        }
    }

    private func index(_ token: Token, in s: BackupStatus) -> Int? {
        s.running.firstIndex { $0.id == token.id }
    }

    func progress(_ token: Token, _ done: Int64, _ total: Int64) {
        status.withLock { s in
            guard let i = index(token, in: s) else { return }
            s.running[i].done = done
            s.running[i].total = total
        }
    }

    private func finish(_ token: Token) {
        status.withLock { s in
            if let i = index(token, in: s) { s.running.remove(at: i) }
        }
    }

    private func succeeded(_ token: Token, _ report: Backup.Report, now: Int64) {
        let m = report.manifest
        status.withLock { s in
            if let i = index(token, in: s) { s.running.remove(at: i) }
            s.lastSuccess = BackupStatus.Success(
                kind: m.kind.rawValue, atMillis: wallClock(), zxid: m.zxidValue, manifestPath: report.manifestPath,
                seconds: report.seconds, bytes: m.files.reduce(0) { $0 + $1.bytes })
            s.successCount += 1
            s.chainZxid = m.zxidValue
            if m.kind == .full { s.chains += 1 }
        }
        logger.info("backup taken", metadata: [
            "kind": "\(m.kind.rawValue)", "zxid": "\(m.zxid)", "records": "\(m.recordCount)", "manifest": "\(report.manifestPath)",
        ])
    }

    private func failed(_ token: Token, _ message: String, now: Int64) {
        finish(token)
        recordFailure(message, now: now)
    }

    private func recordFailure(_ message: String, now: Int64) {
        logger.error("\(message)")
        status.withLock { s in
            s.lastFailure = message
            s.lastFailureMillis = now
            s.failureCount += 1
        }
    }

    /// Records an online stream (the admin commands) in the status while it runs.
    func online<R>(_ kind: String, _ body: (_ progress: @escaping (Int64, Int64) -> Void) throws -> R) rethrows -> R {
        let token = begin(kind, now: wallClock())
        defer { finish(token) }
        return try body { done, total in self.progress(token, done, total) }
    }

    /// A copy of the status.
    public var currentStatus: BackupStatus { status.withLock { $0 } }
}
