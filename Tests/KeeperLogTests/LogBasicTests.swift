import KeeperModel
import Testing

@testable import KeeperLog

@Suite("KeeperLog basics")
struct LogBasicTests {
    @Test("appended records become durable, in order, and survive reopening")
    func roundTrip() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem))
        #expect(log.lastDurableZxid == .zero)
        try await appendDurably(log, 1...50)
        #expect(log.lastDurableZxid == zxid(50))
        let records = try readAll(log)
        #expect(records.map(\.zxid) == (1...50).map(zxid))
        #expect(records.allSatisfy { $0.payload == payload(Int($0.zxid.counter)) })
        try log.close()

        let reopened = try KeeperLog.open(configuration(fileSystem))
        #expect(reopened.recovery.recordCount == 50)
        #expect(reopened.recovery.tornTail == nil)
        #expect(reopened.lastDurableZxid == zxid(50))
        #expect(try readAll(reopened, from: zxid(45)).map(\.zxid) == (45...50).map(zxid))
        try await appendDurably(reopened, 51...60)
        #expect(try readAll(reopened).count == 60)
        try reopened.close()
    }

    @Test("the durability event reports every batch, highest zxid last")
    func durabilityEvents() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let events = EventRecorder()
        let log = try KeeperLog.open(configuration(fileSystem)) { events.record($0) }
        try await appendDurably(log, 1...20)
        try log.close()
        let durable = events.all.compactMap { if case .durable(let z) = $0 { z } else { nil } }
        #expect(durable.last == zxid(20))
        #expect(durable == durable.sorted())
        #expect(events.failures.isEmpty)
    }

    @Test("records that arrive while a sync runs share the next fdatasync (group commit)")
    func groupCommit() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem))
        let syncsBefore = fileSystem.count(of: .sync)
        fileSystem.holdSyncs()
        try log.append(zxid: zxid(1), payload: payload(1))
        fileSystem.waitForHeldSync()
        for counter in 2...200 { try log.append(zxid: zxid(counter), payload: payload(counter)) }
        fileSystem.releaseSyncs()
        try await log.waitUntilDurable(zxid(200))
        // One sync for record 1 (the segment's creation adds its own), one for 2...200.
        let batchSyncs = fileSystem.count(of: .sync) - syncsBefore
        #expect(batchSyncs == 3, "segment header sync + 2 batch syncs, got \(batchSyncs)")
        #expect(try readAll(log).count == 200)
        try log.close()
    }

    @Test("segments roll at the record limit; list, purge and read across them")
    func segmentsRollAndPurge() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem, segmentRecords: 10))
        for batch in 0..<5 { try await appendDurably(log, (batch * 10 + 1)...(batch * 10 + 10)) }
        var segments = log.segments()
        #expect(segments.count == 5)
        #expect(segments.map(\.baseZxid) == [1, 11, 21, 31, 41].map(zxid))
        #expect(segments.map(\.recordCount) == [10, 10, 10, 10, 10])
        #expect(segments.last?.isActive == true)
        #expect(segments.dropLast().allSatisfy { !$0.isActive })
        #expect(segments[2].firstZxid == zxid(21) && segments[2].lastZxid == zxid(30))
        #expect(try readAll(log, from: zxid(17)).map(\.zxid) == (17...50).map(zxid))

        let removed = try log.purge(before: zxid(25))
        #expect(removed.map(\.baseZxid) == [zxid(1), zxid(11)])
        segments = log.segments()
        #expect(segments.map(\.baseZxid) == [21, 31, 41].map(zxid))
        #expect(try readAll(log).map(\.zxid) == (21...50).map(zxid))
        // The active segment is never purged.
        try log.purge(before: zxid(1000))
        #expect(log.segments().map(\.baseZxid) == [zxid(41)])
        try log.close()

        let reopened = try KeeperLog.open(configuration(fileSystem, segmentRecords: 10))
        #expect(reopened.recovery.segments.count == 1)
        #expect(try readAll(reopened).map(\.zxid) == (41...50).map(zxid))
        try reopened.close()
    }

    @Test("truncate(after:) drops later records and segments; appends continue from there")
    func truncateAfter() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem, segmentRecords: 10))
        // Segments roll at batch boundaries: one batch per segment.
        for start in [1, 11, 21, 31] { try await appendDurably(log, start...min(start + 9, 35)) }
        try log.truncate(after: zxid(17))
        #expect(log.lastDurableZxid == zxid(17))
        #expect(log.segments().map(\.baseZxid) == [zxid(1), zxid(11)])
        #expect(try readAll(log).map(\.zxid) == (1...17).map(zxid))
        // A new history from 18 on, with different payloads.
        try await appendDurably(log, 18...24, tag: 9)
        try log.close()

        let reopened = try KeeperLog.open(configuration(fileSystem, segmentRecords: 10))
        let records = try readAll(reopened)
        #expect(records.map(\.zxid) == (1...24).map(zxid))
        #expect(records[17...].allSatisfy { $0.payload == payload(Int($0.zxid.counter), tag: 9) })
        // Truncating before everything empties the log.
        try reopened.truncate(after: .zero)
        #expect(reopened.lastDurableZxid == .zero)
        #expect(try readAll(reopened).isEmpty)
        try await appendDurably(reopened, 1...3, tag: 4)
        #expect(try readAll(reopened).map(\.payload) == (1...3).map { payload($0, tag: 4) })
        try reopened.close()
    }

    @Test("empty and large payloads; a maxBatchDelay setting still commits")
    func payloadSizes() async throws {
        let fileSystem = SimulatedLogFileSystem()
        var config = configuration(fileSystem)
        config.maxBatchDelay = .milliseconds(1)
        let log = try KeeperLog.open(config)
        try log.append(zxid: zxid(1), payload: [])
        try log.append(zxid: zxid(2), payload: payload(2, length: 300_000))
        try log.append(zxid: zxid(3), payload: payload(3, length: 7))
        try await log.waitUntilDurable(zxid(3))
        let records = try readAll(log)
        #expect(records.map(\.payload) == [[], payload(2, length: 300_000), payload(3, length: 7)])
        try log.close()
        let reopened = try KeeperLog.open(config)
        #expect(try readAll(reopened).map(\.payload.count) == [0, 300_000, 7])
        try reopened.close()
    }

    @Test("appends block at maxPendingBytes and resume when the writer catches up")
    func backPressure() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem, maxPendingBytes: 1024))
        fileSystem.holdSyncs()
        try log.append(zxid: zxid(1), payload: payload(1, length: 100))
        fileSystem.waitForHeldSync()
        // These fill the queue; the last append blocks until the held sync is released.
        // A thread of its own: a blocked append must not hold one of the few threads of the
        // test's concurrency pool.
        let appender = startThread {
            for counter in 2...40 {
                #expect(throws: Never.self) { try log.append(zxid: zxid(counter), payload: payload(counter, length: 100)) }
            }
        }
        log.waitForBlockedAppender()
        fileSystem.releaseSyncs()
        joinThread(appender)
        try await log.waitUntilDurable(zxid(40))
        #expect(try readAll(log).count == 40)
        try log.close()
    }

    @Test("a segment name sorts in zxid order and round-trips")
    func segmentNames() {
        let name = LogFormat.segmentName(base: Zxid(epoch: 3, counter: 17))
        #expect(name == "log.0000000300000011")
        #expect(LogFormat.baseZxid(ofSegmentNamed: name) == Zxid(epoch: 3, counter: 17))
        #expect(LogFormat.baseZxid(ofSegmentNamed: "log.12") == nil)
        #expect(LogFormat.baseZxid(ofSegmentNamed: name + ".tmp") == nil)
    }
}
