import KeeperModel
import Testing

@testable import KeeperLog

#if canImport(Glibc)
import Glibc
#endif

/// EIO and ENOSPC on writes and syncs: the error reaches the appenders, the log stays
/// consistent, and it works again once the cause is gone.
@Suite("KeeperLog I/O faults")
struct LogFaultTests {
    @Test("ENOSPC reaches the appenders; the log is usable again once space returns")
    func noSpace() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let events = EventRecorder()
        let log = try KeeperLog.open(configuration(fileSystem, preallocation: 4096)) { events.record($0) }
        try await appendDurably(log, 1...10)
        log.waitForPreallocator()
        // The device is full: what is preallocated fills up, then no block can be added.
        fileSystem.setCapacity(fileSystem.contents(of: log.segments()[0].path)!.count + 100)
        // The failure may stall the log while these are appended: later appends then throw.
        appendUntilStalled(log, 11...400)
        await #expect { try await log.waitUntilDurable(zxid(400)) } throws: { error in
            (error as? KeeperLogError)?.isNoSpace == true
        }
        let durable = Int(log.lastDurableZxid.counter)
        #expect(durable >= 10 && durable < 400)
        #expect(events.failures.first.map { $0.0.lowerBound } == zxid(durable + 1))
        #expect(events.failures.allSatisfy { $0.1.isNoSpace })
        // Stalled until resumed.
        #expect { try log.append(zxid: zxid(durable + 1), payload: []) } throws: { error in
            guard case KeeperLogError.stalled(let lastDurable, _) = error else { return false }
            return lastDurable == zxid(durable)
        }
        // Still full (the repair freed the failed batch's space: take it away again): resuming
        // and appending fails again, cleanly.
        fileSystem.setCapacity(fileSystem.contents(of: log.segments()[0].path)!.count + 100)
        try log.resume()
        try log.append(zxid: zxid(durable + 1), payload: payload(durable + 1, length: 5000))
        await #expect(throws: KeeperLogError.self) { try await log.waitUntilDurable(zxid(durable + 1)) }
        #expect(log.lastDurableZxid == zxid(durable))
        // Space returns.
        fileSystem.setCapacity(nil)
        try log.resume()
        try await appendDurably(log, (durable + 1)...(durable + 30))
        #expect(log.lastDurableZxid == zxid(durable + 30))
        try log.close()
        fileSystem.crash()
        let reopened = try KeeperLog.open(configuration(fileSystem, preallocation: 4096))
        let records = try readAll(reopened)
        #expect(records.map(\.zxid) == (1...(durable + 30)).map(zxid))
        #expect(records.allSatisfy { $0.payload == payload(Int($0.zxid.counter)) })
        try reopened.close()
    }

    @Test("EIO or ENOSPC on a write or a sync fails the batch; nothing of it resurfaces", arguments: [
        (SimulatedLogFileSystem.Operation.write, EIO), (.write, ENOSPC), (.sync, EIO), (.sync, ENOSPC),
    ])
    func failedBatch(operation: SimulatedLogFileSystem.Operation, code: Int32) async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem))
        try await appendDurably(log, 1...10)
        log.waitForPreallocator()
        fileSystem.injectFault(code, on: operation)
        appendUntilStalled(log, 11...20, tag: 3)
        await #expect { try await log.waitUntilDurable(zxid(20)) } throws: { error in
            guard case KeeperLogError.stalled(_, let cause) = error,
                case .io(_, _, let errno) = cause else { return false }
            return errno == code
        }
        #expect(log.lastDurableZxid == zxid(10))
        // The same zxids, a different history: only it may be found after a crash.
        try log.resume()
        try await appendDurably(log, 11...15)
        try expectStandardRecordsAfterCrash(log, fileSystem, through: 15)
    }

    @Test("a failure the log cannot repair fails it for good; reopening recovers")
    func unrepairable() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem))
        try await appendDurably(log, 1...5)
        // The batch's sync fails, and so does the repair's truncate.
        fileSystem.injectFault(EIO, on: .sync)
        fileSystem.injectFault(EIO, on: .truncate)
        try log.append(zxid: zxid(6), payload: payload(6))
        await #expect(throws: KeeperLogError.self) { try await log.waitUntilDurable(zxid(6)) }
        #expect { try log.resume() } throws: { error in
            if case KeeperLogError.failed = error { return true }
            return false
        }
        #expect(throws: KeeperLogError.self) { try log.append(zxid: zxid(7), payload: []) }
        try log.close()
        fileSystem.crash()
        let reopened = try KeeperLog.open(configuration(fileSystem))
        #expect(try readAll(reopened).map(\.zxid) == (1...5).map(zxid))
        try reopened.close()
    }

    @Test("a failure while creating a segment leaves no half-made segment behind")
    func failedRoll() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem, segmentRecords: 5))
        try await appendDurably(log, 1...5)
        log.waitForPreallocator()
        fileSystem.injectFault(ENOSPC, on: .rename)
        try log.append(zxid: zxid(6), payload: payload(6))
        await #expect(throws: KeeperLogError.self) { try await log.waitUntilDurable(zxid(6)) }
        try log.resume()
        try await appendDurably(log, 6...10)
        try await appendDurably(log, 11...12)
        #expect(log.segments().map(\.baseZxid) == [zxid(1), zxid(6), zxid(11)])
        try log.close()
        fileSystem.crash()
        let reopened = try KeeperLog.open(configuration(fileSystem, segmentRecords: 5))
        #expect(reopened.recovery.removedTemporaryFiles.isEmpty)
        #expect(try readAll(reopened).map(\.zxid) == (1...12).map(zxid))
        try reopened.close()
    }
}

/// Appends until the log refuses (a failed batch stalls it); the refusal must be `.stalled`.
func appendUntilStalled(_ log: KeeperLog, _ counters: ClosedRange<Int>, tag: UInt8 = 1, length: Int? = nil) {
    for counter in counters {
        do {
            try log.append(zxid: zxid(counter), payload: payload(counter, tag: tag, length: length))
        } catch {
            guard case KeeperLogError.stalled = error else {
                Issue.record("append failed with \(error), expected .stalled")
                return
            }
            return
        }
    }
}
