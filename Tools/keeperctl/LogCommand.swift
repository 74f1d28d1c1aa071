import ArgumentParser
import KeeperLog
import KeeperModel

/// `keeperctl log ...`: the write-ahead log.
struct LogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Inspect and verify a write-ahead log directory (dataLogDir).",
        subcommands: [LogInspect.self, LogVerify.self])
}

/// Parses a zxid as ZooKeeper prints it (`0x100000003`) or in decimal.
struct ZxidArgument: ExpressibleByArgument {
    var zxid: Zxid
    init?(argument: String) {
        let value: Int64?
        if argument.lowercased().hasPrefix("0x") {
            value = UInt64(argument.dropFirst(2), radix: 16).map { Int64(bitPattern: $0) }
        } else {
            value = Int64(argument)
        }
        guard let value else { return nil }
        zxid = Zxid(value)
    }
}

struct LogInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a log directory's segments (zxid ranges, sizes, how each ends) and, with --records, its records.",
        discussion: "Read-only: nothing is changed, a torn tail is reported, not cut.")

    @Argument(help: "The log directory.")
    var directory: String

    @Flag(help: "Print every record: zxid, offset, payload length, checksum.")
    var records = false

    @Option(help: "With --records: start at this zxid (hex 0x... or decimal).")
    var from: ZxidArgument?

    @Option(help: "With --records: print this many leading payload bytes in hex.")
    var payloadBytes = 0

    func run() throws {
        let start = from?.zxid ?? .zero
        let preview = payloadBytes
        let showRecords = records
        let report = try LogDirectory.scan(directory) { _, record, payload in
            guard showRecords, record.zxid >= start else { return }
            var line = "  \(record.zxid)  offset \(record.offset)  length \(record.payloadLength)  crc 0x\(String(record.checksum, radix: 16))"
            if preview > 0 {
                line += "  " + payload.prefix(preview).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            }
            print(line)
        }
        printSummary(report)
    }
}

struct LogVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify every record of a log directory; exit 1 if anything before the tail is corrupt.",
        discussion: "A torn tail (a batch whose fdatasync never completed, so never acknowledged) is not an error: the server cuts it when it opens the log.")

    @Argument(help: "The log directory.")
    var directory: String

    func run() throws {
        let report = try LogDirectory.scan(directory)
        printSummary(report)
        let corruptions = report.corruptions
        if corruptions.isEmpty {
            print("verify: OK")
        } else {
            for corruption in corruptions { print("verify: CORRUPT: \(corruption)") }
            throw ExitCode.failure
        }
    }
}

func printSummary(_ report: LogDirectory.Report) {
    let range = report.firstZxid.map { first in "zxids \(first)...\(report.lastZxid ?? first)" } ?? "no records"
    print("log \(report.directory): \(report.entries.count) segment(s), \(report.recordCount) record(s), \(range)")
    for name in report.temporaryFiles { print("  \(name): unfinished segment creation (removed at the next open)") }
    for entry in report.entries {
        guard let scan = entry.scan else {
            print("  \(entry.name): UNREADABLE: \(entry.problem.map(String.init(describing:)) ?? "unknown")")
            continue
        }
        let zxids = scan.firstZxid.map { "\($0)...\(scan.lastZxid!)" } ?? "empty"
        var line = "  \(entry.name): database \(scan.databaseID), after \(scan.previousZxid), \(scan.recordCount) record(s) \(zxids), "
            + "\(scan.endOffset) of \(scan.fileSize) bytes used"
        switch scan.ending {
        case .clean: line += ", ends clean"
        case .tornTail(let offset, let bytes, let reason):
            line += ", torn tail at offset \(offset) (\(bytes) bytes: \(reason)), cut at the next open"
        case .corrupt(let corruption): line += ", CORRUPT: \(corruption)"
        }
        print(line)
        if let problem = entry.problem { print("    problem: \(problem)") }
    }
}
