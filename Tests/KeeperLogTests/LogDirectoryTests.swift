import KeeperModel
import Testing

@testable import KeeperLog

@Suite("LogDirectory (keeperctl log inspect/verify)")
struct LogDirectoryTests {
    @Test("a scan reports segments, a torn tail and corruption without changing anything")
    func scanIsReadOnly() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem, preallocation: 4096, segmentRecords: 5))
        for start in [1, 6, 11] { try await appendDurably(log, start...(start + 4)) }
        // A batch in a new segment, torn by a crash: let the roll's two syncs (sealing the old
        // segment, the new header) through, crash at the batch's own.
        fileSystem.holdSyncs()
        for counter in 16...18 { try log.append(zxid: zxid(counter), payload: payload(counter)) }
        for _ in 0..<2 {
            fileSystem.waitForHeldSync()
            fileSystem.releaseHeldSync()
        }
        fileSystem.waitForHeldSync()
        // The zero-filled block (4096 - 64 bytes) persists, then 100 bytes of the first record.
        fileSystem.crash(persistingUnsyncedBytes: 4096 - LogFormat.segmentHeaderSize + 100)
        fileSystem.releaseSyncs()
        try log.close()

        var visited: [Zxid] = []
        let report = try LogDirectory.scan(logDirectory, fileSystem: fileSystem) { _, record, _ in visited.append(record.zxid) }
        #expect(report.entries.count == 4)
        #expect(report.corruptions.isEmpty)
        #expect(visited == (1...15).map(zxid))
        #expect(report.recordCount == 15 && report.lastZxid == zxid(15))
        guard case .tornTail = report.entries.last?.scan?.ending else {
            Issue.record("expected a torn tail, got \(String(describing: report.entries.last?.scan?.ending))")
            return
        }
        // Read-only: scanning again finds the same torn tail.
        let again = try LogDirectory.scan(logDirectory, fileSystem: fileSystem)
        guard case .tornTail = again.entries.last?.scan?.ending else {
            Issue.record("the scan changed the log")
            return
        }

        // Corrupt a sealed segment's record: reported, the other segments still scanned.
        let path = logDirectory + "/" + report.entries[1].name
        let byte = fileSystem.contents(of: path)![LogFormat.segmentHeaderSize + 30]
        fileSystem.corrupt(path, at: LogFormat.segmentHeaderSize + 30, with: [byte ^ 0x33])
        let damaged = try LogDirectory.scan(logDirectory, fileSystem: fileSystem)
        #expect(damaged.corruptions.count >= 1)
        guard case .corruption(let corruption) = damaged.corruptions.first else {
            Issue.record("expected corruption")
            return
        }
        #expect(corruption.file == path && corruption.offset == Int64(LogFormat.segmentHeaderSize) && corruption.zxid == zxid(6))
    }
}
