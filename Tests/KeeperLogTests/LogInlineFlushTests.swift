import Foundation
import Synchronization
import KeeperModel
import Testing

@testable import KeeperLog

@Suite("KeeperLog inline flush")
struct LogInlineFlushTests {
    @Test("an idle writer lets flush(inline:) write and sync on the caller's thread, event included")
    func inlineWhenIdle() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let events = EventRecorder()
        let log = try KeeperLog.open(configuration(fileSystem)) { events.record($0) }
        try await appendDurably(log, 1...3)
        log.waitForPreallocator()
        let syncsBefore = fileSystem.count(of: .sync)
        for counter in 4...10 { try log.append(zxid: zxid(counter), payload: payload(counter), wake: false) }
        #expect(log.lastDurableZxid == zxid(3), "records appended without a wake-up wait for flush")
        log.flush(inline: true)
        // Durable, and the event delivered, before flush returned: one sync for all seven.
        #expect(log.lastDurableZxid == zxid(10))
        #expect(events.all.contains { if case .durable(let z) = $0 { z == zxid(10) } else { false } })
        #expect(fileSystem.count(of: .sync) - syncsBefore == 1)
        try log.close()
        #expect(try recordsAfterReopen(fileSystem).map(\.zxid) == (1...10).map(zxid))
    }

    @Test("with a batch in flight, flush(inline:) leaves the next batch to the writer thread")
    func writerWhenBusy() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem))
        try await appendDurably(log, 1...2)
        fileSystem.holdSyncs()
        try log.append(zxid: zxid(3), payload: payload(3))
        fileSystem.waitForHeldSync()
        for counter in 4...50 { try log.append(zxid: zxid(counter), payload: payload(counter), wake: false) }
        log.flush(inline: true)  // returns at once: the writer is syncing record 3
        #expect(log.lastDurableZxid == zxid(2))
        fileSystem.releaseSyncs()
        try await log.waitUntilDurable(zxid(50))
        #expect(try readAll(log).map(\.zxid) == (1...50).map(zxid))
        try log.close()
    }

    @Test("a failed inline batch stalls the log like a writer's batch; resume works again", arguments: [
        (SimulatedLogFileSystem.Operation.write, EIO), (.sync, ENOSPC),
    ])
    func inlineFailure(operation: SimulatedLogFileSystem.Operation, code: Int32) async throws {
        let (fileSystem, events, log) = try await Self.logWithFaultyBatch(code, on: operation)
        log.flush(inline: true)
        try Self.expectStalledThenResumed(log, fileSystem, events) { log.flush(inline: true) }
    }

    /// A log with records 1...5 durable, `code` injected on the next `operation`, and records
    /// 6...9 (tag 2: they must never resurface) appended without a wake-up.
    static func logWithFaultyBatch(
        _ code: Int32, on operation: SimulatedLogFileSystem.Operation
    ) async throws -> (SimulatedLogFileSystem, EventRecorder, KeeperLog) {
        let fileSystem = SimulatedLogFileSystem()
        let events = EventRecorder()
        let log = try KeeperLog.open(configuration(fileSystem)) { events.record($0) }
        try await appendDurably(log, 1...5)
        log.waitForPreallocator()
        fileSystem.injectFault(code, on: operation)
        for counter in 6...9 { try log.append(zxid: zxid(counter), payload: payload(counter, tag: 2), wake: false) }
        return (fileSystem, events, log)
    }

    /// After that batch failed: one failure reported, the log stalled at 5; once resumed,
    /// records 6...8 appended again and flushed with `flush` are durable, and a crash keeps
    /// exactly 1...8.
    static func expectStalledThenResumed(
        _ log: KeeperLog, _ fileSystem: SimulatedLogFileSystem, _ events: EventRecorder, flush: () -> Void,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        #expect(events.failures.count == 1, sourceLocation: sourceLocation)
        #expect(log.lastDurableZxid == zxid(5), sourceLocation: sourceLocation)
        #expect(throws: KeeperLogError.self, sourceLocation: sourceLocation) { try log.append(zxid: zxid(6), payload: payload(6)) }
        // A failure on the writer thread is reported before the thread is back at its wait; a
        // flush before then (on a loaded machine) would leave the batch to it and decline.
        #expect(log.waitForIdleWriter(), "the writer thread never went back to its wait", sourceLocation: sourceLocation)
        try log.resume()
        for counter in 6...8 { try log.append(zxid: zxid(counter), payload: payload(counter), wake: false) }
        flush()
        #expect(log.lastDurableZxid == zxid(8), sourceLocation: sourceLocation)
        try expectStandardRecordsAfterCrash(log, fileSystem, through: 8, sourceLocation: sourceLocation)
    }

    @Test("flush(overlappingSyncOf:) writes on the caller and runs `meanwhile` while the writer thread syncs")
    func overlappedSync() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let events = EventRecorder()
        let log = try KeeperLog.open(configuration(fileSystem)) { events.record($0) }
        try await appendDurably(log, 1...3)
        log.waitForPreallocator()
        for counter in 4...40 { try log.append(zxid: zxid(counter), payload: payload(counter), wake: false) }
        let syncsBefore = fileSystem.count(of: .sync)
        fileSystem.holdSyncs()
        var ran = false
        let flushed = log.flush(overlappingSyncOf: 8) { last, awaitSync in
            ran = true
            #expect(last == zxid(40))
            // The batch is written and its sync parked on the writer thread: not durable yet.
            fileSystem.waitForHeldSync()
            #expect(log.lastDurableZxid == zxid(3))
            #expect(!events.all.contains { if case .durable(let z) = $0 { z == zxid(40) } else { false } })
            fileSystem.releaseSyncs()
            #expect(throws: Never.self) { try awaitSync() }
            // Reported before awaitSync returned; a second wait returns at once.
            #expect(log.lastDurableZxid == zxid(40))
            #expect(events.all.contains { if case .durable(let z) = $0 { z == zxid(40) } else { false } })
            #expect(throws: Never.self) { try awaitSync() }
        }
        #expect(flushed && ran)
        #expect(fileSystem.count(of: .sync) - syncsBefore == 1, "one sync for the 37 records")
        // The writer thread takes the next batch as before.
        try await appendDurably(log, 41...45)
        try expectStandardRecordsAfterCrash(log, fileSystem, through: 45)
    }

    @Test("flush(overlappingSyncOf:) does nothing below its minimum or with a batch in flight")
    func overlappedSyncDeclines() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem))
        try await appendDurably(log, 1...2)
        for counter in 3...5 { try log.append(zxid: zxid(counter), payload: payload(counter), wake: false) }
        #expect(!log.flush(overlappingSyncOf: 4) { _, _ in Issue.record("meanwhile ran for 3 records") })
        #expect(log.lastDurableZxid == zxid(2))
        fileSystem.holdSyncs()
        log.flush(inline: false)
        fileSystem.waitForHeldSync()  // the writer thread is syncing 3...5
        for counter in 6...20 { try log.append(zxid: zxid(counter), payload: payload(counter), wake: false) }
        #expect(!log.flush(overlappingSyncOf: 4) { _, _ in Issue.record("meanwhile ran beside a batch in flight") })
        fileSystem.releaseSyncs()
        log.flush(inline: false)
        try await log.waitUntilDurable(zxid(20))
        #expect(try readAll(log).map(\.zxid) == (1...20).map(zxid))
        try log.close()
    }

    @Test("a failed overlapped batch is reported, then thrown by awaitSync; resume works again", arguments: [
        (SimulatedLogFileSystem.Operation.write, EIO), (.sync, ENOSPC), (.sync, EIO),
    ])
    func overlappedSyncFailure(operation: SimulatedLogFileSystem.Operation, code: Int32) async throws {
        let (fileSystem, events, log) = try await Self.logWithFaultyBatch(code, on: operation)
        var ran = false
        let flushed = log.flush(overlappingSyncOf: 1) { _, awaitSync in
            ran = true
            #expect(throws: KeeperLogError.self) { try awaitSync() }
            #expect(events.failures.count == 1, "the failure is reported before awaitSync throws")
        }
        #expect(flushed)
        // A write fails on the caller, before anything is handed over: `meanwhile` never runs.
        #expect(ran == (operation == .sync))
        try Self.expectStalledThenResumed(log, fileSystem, events) {
            #expect(log.flush(overlappingSyncOf: 1) { _, awaitSync in #expect(throws: Never.self) { try awaitSync() } })
        }
    }

    @Test("truncate and waitUntilDurable get records appended without a wake-up written")
    func unflushedRecordsAreNotStranded() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem))
        for counter in 1...5 { try log.append(zxid: zxid(counter), payload: payload(counter), wake: false) }
        try await log.waitUntilDurable(zxid(5))
        for counter in 6...9 { try log.append(zxid: zxid(counter), payload: payload(counter), wake: false) }
        try log.truncate(after: zxid(7))
        #expect(try readAll(log).map(\.zxid) == (1...7).map(zxid))
        try log.close()
    }

    @Test("inline flushes racing the writer thread and other appenders keep every record, in order")
    func inlineRacesWriter() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let durable = EventRecorder()
        let log = try KeeperLog.open(configuration(fileSystem)) { durable.record($0) }
        let next = Mutex(1)
        let appendErrors = Mutex<[String]>([])
        let total = 3_000
        // Appends take the zxid and append under one lock, so zxids arrive in order; half of
        // the threads flush inline, half wake the writer.
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            while true {
                let done: Bool = next.withLock { counter in
                    guard counter <= total else { return true }
                    do {
                        try log.append(zxid: zxid(counter), payload: payload(counter), wake: worker % 2 == 1)
                    } catch {
                        appendErrors.withLock { $0.append("\(counter): \(error)") }
                    }
                    counter += 1
                    return false
                }
                if done { break }
                if worker % 2 == 0 { log.flush(inline: true) }
            }
        }
        #expect(appendErrors.withLock { $0 }.isEmpty)
        log.flush(inline: false)
        try await log.waitUntilDurable(zxid(total))
        let zxids = durable.all.compactMap { if case .durable(let z) = $0 { z } else { nil } }
        #expect(zxids == zxids.sorted(), "durability events out of order")
        #expect(try readAll(log).map(\.zxid) == (1...total).map(zxid))
        try log.close()
    }
}
