import KeeperModel

/// Read-only inspection of a log directory, for `keeperctl log inspect|verify` and for
/// operators: it verifies every record and reports how each segment ends, but, unlike
/// `KeeperLog.open`, changes nothing (a torn tail is reported, not cut).
public enum LogDirectory {
    /// One file of the directory as a scan found it.
    public struct Entry: Sendable {
        public var name: String
        /// The segment's scan, or nil if its header could not be read.
        public var scan: SegmentScan?
        /// Why the segment could not be scanned, or a problem between it and the one before.
        public var problem: KeeperLogError?
    }

    /// The result of scanning a directory.
    public struct Report: Sendable {
        public var directory: String
        public var entries: [Entry]
        /// Unfinished segment creations (`log.*.tmp`), which the next open removes.
        public var temporaryFiles: [String]
        public var recordCount: Int { entries.reduce(0) { $0 + ($1.scan?.recordCount ?? 0) } }
        public var firstZxid: Zxid? { entries.lazy.compactMap { $0.scan?.firstZxid }.first }
        public var lastZxid: Zxid? { entries.reversed().lazy.compactMap { $0.scan?.lastZxid }.first }
        /// Every corruption found; empty when the log would open (perhaps cutting a torn tail).
        public var corruptions: [KeeperLogError] {
            entries.flatMap { entry -> [KeeperLogError] in
                var found: [KeeperLogError] = []
                if let problem = entry.problem { found.append(problem) }
                if case .corrupt(let corruption) = entry.scan?.ending { found.append(.corruption(corruption)) }
                return found
            }
        }
    }

    /// Scans every segment of `directory`, oldest first. `visit` sees each sound record with
    /// its segment name and payload (valid only during the call).
    public static func scan(
        _ directory: String,
        fileSystem: any LogFileSystem = PosixLogFileSystem(),
        visit: ((String, LogRecordLocation, UnsafeRawBufferPointer) throws -> Void)? = nil
    ) throws -> Report {
        let names = try fileSystem.contentsOfDirectory(directory).sorted()
        let segments = names.filter { LogFormat.baseZxid(ofSegmentNamed: $0) != nil }
        var report = Report(
            directory: directory, entries: [],
            temporaryFiles: names.filter { $0.hasPrefix(LogFormat.segmentPrefix) && $0.hasSuffix(LogFormat.temporarySuffix) })
        var last: Zxid?
        var databaseID: UInt64?
        for (index, name) in segments.enumerated() {
            let path = directory + "/" + name
            let file = try fileSystem.open(path, mode: .readOnly)
            defer {
                do { try file.close() } catch {
                    // A read-only descriptor loses nothing on close; the scan's result stands.
                }
            }
            var entry = Entry(name: name, scan: nil, problem: nil)
            do {
                let scan = try SegmentScanner.scan(
                    file: file, path: path, name: name, isLast: index == segments.count - 1, after: last,
                    visit: visit.map { visit in { location, payload in try visit(name, location, payload) } })
                entry.scan = scan
                if let last, scan.previousZxid != last {
                    entry.problem = .corruption(LogCorruption(
                        file: path, offset: 32, expected: "the previous segment to end at zxid \(scan.previousZxid) (a segment is missing or was cut)",
                        found: "the log before this segment ends at \(last)"))
                } else if let databaseID, scan.databaseID != databaseID {
                    entry.problem = .foreignDatabase(file: path, expected: databaseID, found: scan.databaseID)
                } else if scan.baseZxid != LogFormat.baseZxid(ofSegmentNamed: name) {
                    entry.problem = .corruption(LogCorruption(file: path, offset: 24, expected: "the base zxid the file name says",
                                                              found: "\(scan.baseZxid)"))
                }
                databaseID = databaseID ?? scan.databaseID
                last = scan.lastZxid ?? scan.previousZxid
            } catch let error as KeeperLogError {
                if case .io = error { throw error }
                entry.problem = error
                last = nil
            }
            report.entries.append(entry)
        }
        return report
    }
}
