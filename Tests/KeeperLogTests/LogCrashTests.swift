import KeeperModel
import Testing

@testable import KeeperLog

/// Crashes at every point of a write and proves: no acknowledged record is lost, no record
/// that was not written whole is accepted, and recovery never stops on a mere torn tail.
@Suite("KeeperLog crash recovery")
struct LogCrashTests {
    /// Checks a recovered log: every acknowledged record is there with its payload; anything
    /// beyond is a prefix of what was appended, each record intact.
    func verifyRecovered(_ fileSystem: SimulatedLogFileSystem, acknowledged: Int, appended: Int,
                         segmentRecords: Int = 100_000, preallocation: Int = 64 * 1024, context: String) throws {
        let log = try KeeperLog.open(configuration(fileSystem, preallocation: preallocation, segmentRecords: segmentRecords))
        defer { #expect(throws: Never.self) { try log.close() } }
        let records = try readAll(log)
        #expect(records.count >= acknowledged, "lost acknowledged records: \(context)")
        #expect(records.count <= appended, "more records than appended: \(context)")
        for (index, record) in records.enumerated() {
            #expect(record.zxid == zxid(index + 1), "\(context)")
            #expect(record.payload == payload(index + 1), "wrong payload at \(record.zxid): \(context)")
        }
        #expect(log.lastDurableZxid == zxid(records.count) || records.isEmpty, "\(context)")
    }

    @Test("a crash that tears the unsynced batch at any byte offset loses nothing acknowledged")
    func tornAtEveryByte() async throws {
        // Find how many bytes the unsynced batch writes, then crash at each offset of it.
        let acknowledged = 5
        let unsynced = 6...9
        var total = 0
        do {
            let probe = SimulatedLogFileSystem()
            let log = try KeeperLog.open(configuration(probe))
            try await appendDurably(log, 1...acknowledged)
            try log.close()
            total = unsynced.reduce(0) { $0 + LogFormat.recordExtent(payloadLength: payload($1).count) }
        }
        for persisted in stride(from: 0, through: total, by: 1) {
            let fileSystem = SimulatedLogFileSystem()
            let log = try KeeperLog.open(configuration(fileSystem, preallocation: 4096))
            try await appendDurably(log, 1...acknowledged)
            fileSystem.holdSyncs()
            for counter in unsynced { try log.append(zxid: zxid(counter), payload: payload(counter)) }
            fileSystem.waitForHeldSync()
            fileSystem.crash(persistingUnsyncedBytes: persisted)
            fileSystem.releaseSyncs()
            // The old log's device is gone: its pending records can never become durable.
            await #expect(throws: KeeperLogError.self) { try await log.waitUntilDurable(zxid(unsynced.upperBound)) }
            try log.close()
            try verifyRecovered(fileSystem, acknowledged: acknowledged, appended: unsynced.upperBound,
                                preallocation: 4096, context: "torn after \(persisted) of \(total) unsynced bytes")
        }
    }

    @Test("a crash while a new segment is being created or filled loses nothing acknowledged")
    func crashAroundSegmentRoll() async throws {
        // With 4 records a segment, record 9 rolls a segment: crash at each sync of that roll.
        for heldSync in 0..<3 {
            for persisted in [0, 40, 200, 100_000] {
                let fileSystem = SimulatedLogFileSystem()
                let log = try KeeperLog.open(configuration(fileSystem, segmentRecords: 4))
                // Segments roll at batch boundaries: two durable rounds fill two segments
                // exactly, whatever batches the writer forms.
                try await appendDurably(log, 1...4)
                try await appendDurably(log, 5...8)
                fileSystem.holdSyncs()
                try log.append(zxid: zxid(9), payload: payload(9))
                for _ in 0..<heldSync {
                    fileSystem.waitForHeldSync()
                    fileSystem.releaseHeldSync()
                }
                fileSystem.waitForHeldSync()
                fileSystem.crash(persistingUnsyncedBytes: persisted)
                fileSystem.releaseSyncs()
                try log.close()
                try verifyRecovered(fileSystem, acknowledged: 8, appended: 9, segmentRecords: 4,
                                    context: "crash at sync \(heldSync) of the roll, \(persisted) bytes persisted")
            }
        }
    }

    @Test("segments created by a roll survive a crash (the directory is synced)")
    func rolledSegmentsSurvive() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem, segmentRecords: 5))
        try await appendDurably(log, 1...23)
        fileSystem.crash()
        try log.close()
        try verifyRecovered(fileSystem, acknowledged: 23, appended: 23, segmentRecords: 5, context: "after rolls")
    }

    @Test("random crashes under concurrent appends, with torn and reordered sectors", arguments: 0..<40)
    func randomCrashes(seed: UInt64) async throws {
        var random = SeededGenerator(seed: seed)
        let fileSystem = SimulatedLogFileSystem()
        let segmentRecords = Int.random(in: 3...40, using: &random)
        let log = try KeeperLog.open(configuration(fileSystem, preallocation: 4096, segmentRecords: segmentRecords))
        var appended = 0
        let rounds = Int.random(in: 1...8, using: &random)
        for _ in 0..<rounds {
            let count = Int.random(in: 1...30, using: &random)
            for _ in 0..<count {
                appended += 1
                try log.append(zxid: zxid(appended), payload: payload(appended))
            }
            if Bool.random(using: &random) { try await log.waitUntilDurable(zxid(appended)) }
        }
        // Crash at whatever point the writer has reached.
        let acknowledged = Int(log.lastDurableZxid.counter)
        if Bool.random(using: &random) {
            fileSystem.crash(persistingUnsyncedBytes: Int.random(in: 0...20_000, using: &random))
        } else {
            fileSystem.crash(persistingRandomSectorsUsing: &random)
        }
        try log.close()
        try verifyRecovered(fileSystem, acknowledged: acknowledged, appended: appended,
                            segmentRecords: segmentRecords, context: "seed \(seed)")
        // Recovery is idempotent: a second open finds the same log, clean.
        let again = try KeeperLog.open(configuration(fileSystem, segmentRecords: segmentRecords))
        #expect(again.recovery.tornTail == nil, "seed \(seed)")
        try again.close()
    }
}
