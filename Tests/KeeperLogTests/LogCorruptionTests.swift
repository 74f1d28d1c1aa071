import KeeperModel
import Testing

@testable import KeeperLog

/// Damage that is not a torn tail must stop recovery with a precise error.
@Suite("KeeperLog corruption")
struct LogCorruptionTests {
    /// A log of 30 records written in 3 synced batches; returns the file system and the
    /// segment path.
    func threeBatches(records: Int = 30) async throws -> (SimulatedLogFileSystem, String) {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem))
        try await appendDurably(log, 1...(records / 3))
        try await appendDurably(log, (records / 3 + 1)...(2 * records / 3))
        try await appendDurably(log, (2 * records / 3 + 1)...records)
        let path = log.segments()[0].path
        try log.close()
        return (fileSystem, path)
    }

    func offset(of counter: Int) -> Int {
        LogFormat.segmentHeaderSize
            + (1..<counter).reduce(0) { $0 + LogFormat.recordExtent(payloadLength: payload($1).count) }
    }

    func expectCorruption(_ fileSystem: SimulatedLogFileSystem, at expectedOffset: Int, zxid expectedZxid: Zxid?,
                          _ comment: Comment) {
        do {
            let log = try KeeperLog.open(configuration(fileSystem))
            try log.close()
            Issue.record("opened a corrupt log: \(comment)")
        } catch KeeperLogError.corruption(let corruption) {
            #expect(corruption.offset == Int64(expectedOffset), comment)
            #expect(corruption.zxid == expectedZxid, comment)
            #expect(corruption.file.hasSuffix("log.0000000100000001"), comment)
        } catch {
            Issue.record("unexpected error \(error): \(comment)")
        }
    }

    @Test("a flipped payload byte before the tail is corruption, with file, offset and zxid")
    func flippedByteMidLog() async throws {
        let (fileSystem, path) = try await threeBatches()
        let start = offset(of: 12)
        let byte = fileSystem.contents(of: path)![start + 30]
        fileSystem.corrupt(path, at: start + 30, with: [byte ^ 0x5A])
        expectCorruption(fileSystem, at: start, zxid: zxid(12), "flipped payload byte in record 12")
    }

    @Test("a zeroed sector (a lost write) inside synced records is corruption, not a tail")
    func zeroedSectorMidLog() async throws {
        let (fileSystem, path) = try await threeBatches()
        // Zero everything from record 12 to the end of record 13: it looks like an unwritten
        // tail, but record 21 (a later batch) proves that region had been synced.
        let start = offset(of: 12)
        fileSystem.corrupt(path, at: start, with: [UInt8](repeating: 0, count: offset(of: 14) - start))
        expectCorruption(fileSystem, at: start, zxid: nil, "zeroed records 12-13")
    }

    @Test("damage to the last synced record that bears no mark of a torn write is corruption")
    func rottenLastRecord() async throws {
        let (fileSystem, path) = try await threeBatches()
        let start = offset(of: 30)
        let byte = fileSystem.contents(of: path)![start + 25]
        fileSystem.corrupt(path, at: start + 25, with: [byte ^ 0x5A])
        expectCorruption(fileSystem, at: start, zxid: zxid(30), "flipped byte in the last record")
    }

    @Test("a damaged segment header is corruption")
    func damagedHeader() async throws {
        let (fileSystem, path) = try await threeBatches()
        fileSystem.corrupt(path, at: 20, with: [0x42])
        expectCorruption(fileSystem, at: 0, zxid: nil, "header byte 20")
    }

    @Test("a missing middle segment is detected")
    func missingSegment() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem, segmentRecords: 5))
        // Segments roll at batch boundaries: one batch per segment.
        for start in [1, 6, 11] { try await appendDurably(log, start...(start + 4)) }
        let middle = log.segments()[1].path
        try log.close()
        try fileSystem.remove(middle)
        #expect {
            try KeeperLog.open(configuration(fileSystem, segmentRecords: 5))
        } throws: { error in
            guard case KeeperLogError.corruption(let corruption) = error else { return false }
            return corruption.file.hasSuffix("log.000000010000000b") && corruption.expected.contains("missing")
        }
    }

    @Test("another database's segments are refused")
    func foreignDatabase() async throws {
        let (fileSystem, _) = try await threeBatches()
        #expect(throws: KeeperLogError.foreignDatabase(file: logDirectory + "/log.0000000100000001", expected: 8, found: 7)) {
            try KeeperLog.open(configuration(fileSystem, databaseID: 8))
        }
    }

    @Test("the reader refuses a record damaged after the log opened")
    func readerVerifies() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem))
        try await appendDurably(log, 1...10)
        let path = log.segments()[0].path
        let start = offset(of: 4)
        let byte = fileSystem.contents(of: path)![start + 26]
        fileSystem.corrupt(path, at: start + 26, with: [byte ^ 0x01])
        let reader = log.read(from: .zero)
        for _ in 1...3 { _ = try reader.next() }
        #expect {
            try reader.next()
        } throws: { error in
            guard case KeeperLogError.corruption(let corruption) = error else { return false }
            return corruption.offset == Int64(start) && corruption.zxid == zxid(4)
        }
        try log.close()
    }
}
