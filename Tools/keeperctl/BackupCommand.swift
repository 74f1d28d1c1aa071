import ArgumentParser
import Foundation
import KeeperBackup
import KeeperModel

/// The data directory options every offline command takes, as `swiftkeeper serve` does.
struct DataDirectoryOptions: ParsableArguments {
    @Option(help: "The server's data directory (holds store/ and database-id).")
    var dataDir: String

    @Option(help: "The server's data log directory (holds log/); defaults to --data-dir.")
    var dataLogDir: String?

    var directory: DataDirectory { DataDirectory(dataDir: dataDir, dataLogDir: dataLogDir) }
}

/// `keeperctl backup full|incremental`.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up a server: a full backup, then incrementals (online through --server, or of a stopped data directory).",
        discussion: """
            Online: --server http://host:port names the server's admin server (admin.serverPort); \
            --auth user:password is sent as `Authorization: digest user:password` (the super user, \
            or a digest user with ALL permission on /). Offline: --data-dir of a stopped server \
            (its store's LMDB lock must be free). Files go into --to: \
            NNNNNN-full.{store,txns,json} and NNNNNN-incremental.{txns,json}; both kinds of backup \
            write the same files, so restore and verify read either.
            """,
        subcommands: [BackupFull.self, BackupIncremental.self])
}

/// Where a backup reads from: a running server's admin server, or a stopped data directory.
struct BackupSourceOptions: ParsableArguments {
    @Option(help: "A running server's admin server, http://host:port (online backup).")
    var server: String?

    @Option(help: "With --server: user:password, sent as `Authorization: digest user:password`.")
    var auth: String?

    @Option(help: "A stopped server's data directory (holds store/ and database-id).")
    var dataDir: String?

    @Option(help: "The stopped server's data log directory (holds log/); defaults to --data-dir.")
    var dataLogDir: String?

    @Flag(help: "No progress bar, even on a terminal.")
    var quiet = false

    func validate() throws {
        switch (server, dataDir) {
        case (nil, nil): throw ValidationError("give --server http://host:port (a running server) or --data-dir (a stopped one)")
        case (.some, .some): throw ValidationError("give --server or --data-dir, not both")
        default: break
        }
        if auth != nil && server == nil { throw ValidationError("--auth goes with --server") }
        if dataLogDir != nil && dataDir == nil { throw ValidationError("--data-log-dir goes with --data-dir") }
    }

    func endpoint() throws -> AdminEndpoint? {
        guard let server else { return nil }
        return try AdminEndpoint(url: server, auth: auth)
    }

    var directory: DataDirectory { DataDirectory(dataDir: dataDir!, dataLogDir: dataLogDir) }

    func progressBar(_ what: String, unit: ProgressBar.Unit) -> ProgressBar {
        ProgressBar(label: what, unit: unit, enabled: !quiet && isatty(STDERR_FILENO) != 0)
    }
}

struct BackupFull: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "full",
        abstract: "The store's consistent snapshot (plus, offline, every log record after it), compressed, with a manifest.")

    @OptionGroup var source: BackupSourceOptions
    @Option(help: "The backup directory (created if missing).")
    var to: String

    func run() throws {
        if let endpoint = try source.endpoint() {
            let bar = source.progressBar("snapshot", unit: .bytes)
            let report = try RemoteBackup.full(from: endpoint, to: to) { done, total in bar.update(done, total) }
            bar.finish()
            printBackup(report)
        } else {
            printBackup(try Backup.full(source.directory, to: to))
        }
    }
}

struct BackupIncremental: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incremental",
        abstract: "The log records after the last backup in --to, compressed, with a manifest.",
        discussion: "Fails, naming the missing zxids, when the log no longer holds the txns right after the last backup.")

    @OptionGroup var source: BackupSourceOptions
    @Option(help: "The backup directory holding the previous backups.")
    var to: String

    func run() throws {
        let report: Backup.Report?
        if let endpoint = try source.endpoint() {
            let bar = source.progressBar("txns", unit: .records)
            report = try RemoteBackup.incremental(from: endpoint, to: to) { done, total in bar.update(done, total) }
            bar.finish()
        } else {
            report = try Backup.incremental(source.directory, to: to)
        }
        guard let report else {
            print("incremental: nothing new since the last backup; no files written")
            return
        }
        printBackup(report)
    }
}

/// A one-line progress bar on standard error, redrawn at most `redrawsPerSecond` times a
/// second; silent when standard error is not a terminal (logs and pipes get the summary only).
final class ProgressBar {
    enum Unit { case bytes, records }
    let label: String
    let unit: Unit
    let enabled: Bool
    private var lastDraw: UInt64 = 0
    private var drawn = false
    private let started = DispatchTime.now().uptimeNanoseconds
    static let redrawsPerSecond: UInt64 = 10
    static let width = 30

    init(label: String, unit: Unit, enabled: Bool) {
        self.label = label
        self.unit = unit
        self.enabled = enabled
    }

    func update(_ done: Int64, _ total: Int64) {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard now - lastDraw >= 1_000_000_000 / ProgressBar.redrawsPerSecond || done == total else { return }
        lastDraw = now
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let filled = Int(fraction * Double(ProgressBar.width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: ProgressBar.width - filled)
        let seconds = Double(now - started) / 1e9
        let amount: String
        switch unit {
        case .bytes:
            amount = String(format: "%.1f/%.1f MB %.1f MB/s", Double(done) / 1e6, Double(total) / 1e6, Double(done) / 1e6 / max(seconds, 1e-3))
        case .records:
            amount = "\(done)/\(total) txns"
        }
        let percent = String(format: "%3.0f%%", fraction * 100)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(percent) \(amount) ".utf8))
        drawn = true
    }

    func finish() {
        if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

func printBackup(_ report: Backup.Report) {
    let m = report.manifest
    let bytes = m.files.reduce(Int64(0)) { $0 + $1.bytes }
    let raw = m.files.reduce(Int64(0)) { $0 + $1.rawBytes }
    print("\(m.kind.rawValue) backup \(report.manifestPath): \(m.recordCount) txn(s) after \(m.previousZxid) up to \(m.zxid), \(m.digest)")
    print(String(format: "  %lld bytes stored (%lld raw) in %.2f s (%.1f MB/s raw)", bytes, raw, report.seconds,
                 Double(raw) / 1e6 / max(report.seconds, 1e-9)))
}

/// Parses `--to-time`: milliseconds since the epoch, or ISO 8601 (`2026-11-25T10:00:00Z`).
struct TimeArgument: ExpressibleByArgument {
    var milliseconds: Int64
    init?(argument: String) {
        if let ms = Int64(argument) {
            milliseconds = ms
            return
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = formatter.date(from: argument) ?? fractional.date(from: argument) else { return nil }
        milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }
}

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Build a data directory from a full backup and its incrementals, up to a point in time.",
        discussion: """
            The target data directory (and log directory) must be empty or missing, and no process \
            may hold it. Everything is rebuilt and checked (frame CRC32s, manifests, tree digests at \
            every backup boundary passed) in a staging directory beside it, then moved into place: \
            a damaged backup writes nothing. The result gets a new database id and starts with \
            `swiftkeeper serve --data-dir D`; take a new full backup of it.
            """)

    @Option(help: "The backup directory.")
    var from: String
    @Option(help: "Stop after the last txn with zxid <= this (hex 0x... or decimal).")
    var toZxid: ZxidArgument?
    @Option(help: "Stop before the first txn whose time is after this (ms since the epoch, or ISO 8601).")
    var toTime: TimeArgument?
    @OptionGroup var data: DataDirectoryOptions

    func validate() throws {
        if toZxid != nil && toTime != nil { throw ValidationError("give --to-zxid or --to-time, not both") }
    }

    func run() throws {
        let target: RestoreTarget
        if let toZxid { target = .zxid(toZxid.zxid) } else if let toTime { target = .time(toTime.milliseconds) } else { target = .latest }
        let report = try Restore.restore(from: from, to: target, into: data.directory)
        print("restored \(data.dataDir) to \(report.zxid): \(report.digest), \(report.replayed) txn(s) replayed from backups \(report.backups)")
        print("  digests verified at \(report.verifiedAt.map(\.description).joined(separator: ", ")); new database id \(String(report.databaseID, radix: 16))")
        print(String(format: "  %.2f s", report.seconds))
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a backup directory: manifests, checksums, chain continuity, and a dry-run restore.",
        discussion: "The dry run rebuilds every chain under --scratch and removes it; nothing else is written. Exit 1 on any problem.")

    @Argument(help: "The backup directory.")
    var directory: String
    @Option(help: "Where the dry-run restore builds its scratch store (default: $TMPDIR or /tmp).")
    var scratch: String?

    func run() throws {
        let parent = scratch ?? ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        let report = try Restore.verify(directory, scratchParent: parent)
        for line in report.checked { print(line) }
        for orphan in report.orphans { print("note: \(orphan) belongs to no manifest (an unfinished backup's leftover?)") }
        print("verify: OK")
    }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Dump a tree or subtree as JSON Lines: data (base64), stat, ACL, kind, child create counter.",
        discussion: "Reads one consistent view; works on a running server's data directory too.")

    @OptionGroup var data: DataDirectoryOptions
    @Option(help: "The subtree to export.")
    var path = "/"
    @Option(help: "The output file (default: standard output).")
    var to: String?

    func run() throws {
        if let to {
            guard FileManager.default.createFile(atPath: to, contents: nil) , let handle = FileHandle(forWritingAtPath: to) else {
                throw ValidationError("cannot create \(to)")
            }
            var pending = Data()
            let count = try TreeExport.export(data.directory, root: path) { line in
                pending.append(contentsOf: Array(line.utf8))
                pending.append(0x0A)
                if pending.count >= 1 << 20 {
                    try handle.write(contentsOf: pending)
                    pending.removeAll(keepingCapacity: true)
                }
            }
            try handle.write(contentsOf: pending)
            try handle.synchronize()
            try handle.close()
            FileHandle.standardError.write(Data("exported \(count) znode(s) under \(path) to \(to)\n".utf8))
        } else {
            try TreeExport.export(data.directory, root: path) { line in print(line) }
        }
    }
}

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import an export file into a stopped data directory, as txns in its log and store.",
        discussion: """
            Preserved: path, data, ACL, kind (persistent, container, TTL), version, aversion, ctime, \
            mtime, the child create counter (sequential names continue). New: czxid, mzxid, pzxid. \
            Ephemeral nodes are skipped. Fails before writing anything if a node already exists \
            (system nodes excepted) or a parent is missing.
            """)

    @OptionGroup var data: DataDirectoryOptions
    @Option(help: "The export file.")
    var from: String

    func run() throws {
        let report = try TreeExport.importFile(from, into: data.directory)
        print("imported \(report.created) znode(s) as \(report.txns) txn(s) \(report.firstZxid.map { "\($0)...\(report.lastZxid!)" } ?? ""): \(report.digest)")
        if !report.skippedEphemerals.isEmpty { print("  skipped \(report.skippedEphemerals.count) ephemeral node(s)") }
    }
}
