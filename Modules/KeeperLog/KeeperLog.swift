import KeeperModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The write-ahead log: every acknowledged write of SwiftKeeper rests on it.
///
/// One replica thread appends; the log's own writer thread gathers whatever arrived into one
/// `pwritev` (the payload bytes are not copied) and one `fdatasync`, so while batch N syncs,
/// batch N+1 accumulates: group commit with no timer (ARCHITECTURE.md, "Threads"). An appender
/// may instead write an idle log's batch itself (`flush(inline: true)`): the same batch, two
/// thread hand-offs fewer. The writer reports the highest durable zxid through `onEvent` (on
/// the thread that wrote the batch); `durable(n)` implies
/// every record before `n` is durable too, as ZAB requires before a follower ACKs a proposal
/// (ZAB paper, "Broadcast": a proposal is acknowledged once logged to stable storage).
///
/// Opening runs recovery: every record is verified; a torn tail (a batch whose sync never
/// completed) is cut off; anything else damaged stops the open with a precise error.
///
/// A large batch can also overlap its sync with the appender's own work
/// (`flush(overlappingSyncOf:_:)`): the appender writes it, the writer thread syncs it.
///
/// `@unchecked Sendable`: the mutable properties marked "guarded" are only touched with
/// `mutex` held; `writer` is only touched, once `open` has returned, by the writer thread or by
/// the one caller of `flush(inline:)` that set `inlineWriting` (the writer thread keeps off
/// while it is set, and the mutex orders the hand-over). The one exception: the sync an inline
/// writer hands over (`overlapped`), which the writer thread runs while the caller keeps off.
public final class KeeperLog: @unchecked Sendable {
    enum State {
        case ready
        case stalled(KeeperLogError)
        case failed(KeeperLogError)
        case closing
        case closed
    }

    /// A batch written by `flush(overlappingSyncOf:_:)` whose fdatasync the writer thread runs.
    final class OverlappedSync {
        let batch: [PendingRecord]
        let written: SegmentWriter.Written
        // Guarded by the log's `mutex`:
        var taken = false
        var done = false
        var error: KeeperLogError?
        init(batch: [PendingRecord], written: SegmentWriter.Written) {
            self.batch = batch
            self.written = written
        }
    }

    final class Control {
        let body: (SegmentWriter) throws -> Void
        var error: (any Error)?
        var done = false
        init(_ body: @escaping (SegmentWriter) throws -> Void) { self.body = body }
    }

    public let configuration: LogConfiguration
    /// What recovery found and did when the log was opened.
    public let recovery: LogRecoveryReport
    private let onEvent: @Sendable (LogEvent) -> Void
    private let writer: SegmentWriter

    private let mutex = LogMutex()
    private let workAvailable: LogCondition
    private let spaceAvailable: LogCondition
    private let progress: LogCondition
    // Guarded by `mutex`:
    private var state = State.ready
    private var pending: [PendingRecord] = []
    private var pendingBytes = 0
    private var lastAppended: Zxid
    private var durable: Zxid
    private var waiters: [(zxid: Zxid, continuation: CheckedContinuation<Void, any Error>)] = []
    private var controls: [Control] = []
    private var writerWaiting = false
    /// Callers of `waitForIdleWriter` (tests): the writer thread broadcasts `progress` when it
    /// starts to wait while there are any.
    private var idleWatchers = 0
    /// A caller of `flush(inline: true)` is writing a batch: the writer thread keeps off.
    private var inlineWriting = false
    /// The writer thread waits for an inline batch to finish.
    private var writerWaitingForInline = false
    /// The thread writing inline (valid while `inlineWriting`).
    private var inlineThread: pthread_t?
    /// The inline writer's batch, handed to the writer thread to sync
    /// (`flush(overlappingSyncOf:_:)`).
    private var overlapped: OverlappedSync?
    private var spaceWaiters = 0
    private var publishedSegments: [LogSegment]
    private var closeError: KeeperLogError?
    private var writerThread: pthread_t?

    private init(configuration: LogConfiguration, recovery: LogRecoveryReport, writer: SegmentWriter,
                 onEvent: @escaping @Sendable (LogEvent) -> Void) {
        self.configuration = configuration
        self.recovery = recovery
        self.writer = writer
        self.onEvent = onEvent
        workAvailable = LogCondition(mutex)
        spaceAvailable = LogCondition(mutex)
        progress = LogCondition(mutex)
        lastAppended = writer.lastZxid
        durable = writer.lastZxid
        publishedSegments = writer.segments
    }

    // MARK: Opening and recovery

    /// Opens (creating if needed) the log in `configuration.directory` and recovers it.
    ///
    /// - Parameter onEvent: called on the writer thread (or in `flush(inline: true)`, on its
    ///   caller's) whenever records become durable or a batch fails, in order. Keep it short;
    ///   it may call `append`.
    /// - Throws: `KeeperLogError.corruption` when a record before the tail is damaged (the log
    ///   never drops a record that may have been acknowledged), `.foreignDatabase`, `.io`.
    public static func open(
        _ configuration: LogConfiguration,
        onEvent: @escaping @Sendable (LogEvent) -> Void = { _ in }
    ) throws -> KeeperLog {
        let fileSystem = configuration.fileSystem
        let directory = configuration.directory
        if try fileSystem.createDirectory(directory) {
            try fileSystem.syncDirectory(SimulatedLogFileSystem.parent(of: directory))
        }
        let names = try fileSystem.contentsOfDirectory(directory).sorted()
        let temporary = names.filter { $0.hasPrefix(LogFormat.segmentPrefix) && $0.hasSuffix(LogFormat.temporarySuffix) }
        for name in temporary { try fileSystem.remove(directory + "/" + name) }
        if !temporary.isEmpty { try fileSystem.syncDirectory(directory) }

        let segmentNames = names.filter { LogFormat.baseZxid(ofSegmentNamed: $0) != nil }
        var scans: [SegmentScan] = []
        var sealed: [LogSegment] = []
        var active: SegmentWriter.Active?
        var last: Zxid?
        var tornTail: SegmentEnding?
        for (index, name) in segmentNames.enumerated() {
            let path = directory + "/" + name
            let isLast = index == segmentNames.count - 1
            let file = try fileSystem.open(path, mode: isLast ? .readWrite : .readOnly)
            var scan = try SegmentScanner.scan(file: file, path: path, name: name, isLast: isLast, after: last)
            guard scan.databaseID == configuration.databaseID else {
                throw KeeperLogError.foreignDatabase(file: path, expected: configuration.databaseID, found: scan.databaseID)
            }
            guard scan.baseZxid == LogFormat.baseZxid(ofSegmentNamed: name)! else {
                throw KeeperLogError.corruption(LogCorruption(file: path, offset: 24, expected: "base zxid \(LogFormat.baseZxid(ofSegmentNamed: name)!) as the file name says",
                                                              found: "\(scan.baseZxid)"))
            }
            if let last, scan.previousZxid != last {
                throw KeeperLogError.corruption(LogCorruption(
                    file: path, offset: 32,
                    expected: "the previous segment to end at zxid \(scan.previousZxid) (a segment is missing or was cut)",
                    found: "the log before this segment ends at \(last)"))
            }
            switch scan.ending {
            case .clean:
                break
            case .corrupt(let corruption):
                throw KeeperLogError.corruption(corruption)
            case .tornTail:
                precondition(isLast, "only the last segment can have a torn tail")
                tornTail = scan.ending
                try file.truncate(to: scan.endOffset)
                try file.syncData()
                scan.fileSize = scan.endOffset
            }
            scans.append(scan)
            last = scan.lastZxid ?? scan.previousZxid
            let info = LogSegment(name: name, path: path, baseZxid: scan.baseZxid, previousZxid: scan.previousZxid,
                                  firstZxid: scan.firstZxid, lastZxid: scan.lastZxid, recordCount: scan.recordCount,
                                  byteCount: scan.endOffset, isActive: isLast)
            if isLast {
                // What the scan read may have come from the page cache of a crashed process:
                // sync it before anything builds on it.
                try file.syncData()
                active = SegmentWriter.Active(file: file, info: info, allocatedEnd: scan.fileSize)
            } else {
                // Verified and never written again: its pages go back at once, so the next
                // segment's reads reuse them instead of taking fresh memory (as the writer's
                // drops do), and recovery does not fill the page cache with the whole log.
                file.dropCache(0..<scan.fileSize)
                try file.close()
                sealed.append(info)
            }
        }
        try fileSystem.syncDirectory(directory)
        let lastZxid = last ?? .zero
        let report = LogRecoveryReport(
            segments: scans, recordCount: scans.reduce(0) { $0 + $1.recordCount }, lastZxid: lastZxid,
            tornTail: tornTail, removedTemporaryFiles: temporary)
        let writer = SegmentWriter(configuration: configuration, sealed: sealed, active: active, lastZxid: lastZxid)
        let log = KeeperLog(configuration: configuration, recovery: report, writer: writer, onEvent: onEvent)
        let thread = startThread { log.writerLoop() }
        log.mutex.withLock { log.writerThread = thread }
        return log
    }

    // MARK: Appending

    /// Queues a record for the next batch and returns at once (it blocks only when
    /// `maxPendingBytes` are already waiting: back-pressure). Durability is reported later
    /// through `onEvent` and `waitUntilDurable`.
    ///
    /// - Precondition: `zxid` is greater than every zxid appended before, and positive.
    /// - Throws: `KeeperLogError.stalled` after a failed batch (until `resume()`), `.failed`,
    ///   `.closed`.
    public func append(zxid: Zxid, payload: [UInt8]) throws {
        try append(zxid: zxid, payload: payload, wake: true)
    }

    /// `append`; with `wake: false` the writer thread is not woken for this record: the
    /// caller calls `flush(inline:)` once it has appended what it had (a batch of records
    /// then costs one wake-up, or none).
    public func append(zxid: Zxid, payload: [UInt8], wake: Bool) throws {
        precondition(payload.count <= configuration.maxPayloadBytes,
                     "payload of \(payload.count) bytes exceeds maxPayloadBytes \(configuration.maxPayloadBytes)")
        let checksum = LogFormat.payloadChecksum(payload)
        let extent = LogFormat.recordExtent(payloadLength: payload.count)
        mutex.lock()
        defer { mutex.unlock() }
        try checkAppendable()
        precondition(zxid.rawValue > 0, "log zxids must be positive, got \(zxid)")
        precondition(zxid > lastAppended, "zxid \(zxid) appended after \(lastAppended): zxids must be strictly increasing")
        if pendingBytes >= configuration.maxPendingBytes && !onWriterThread {
            spaceWaiters += 1
            progress.broadcast()
            // Records appended with `wake: false` may be what fills the queue.
            if writerWaiting { workAvailable.signal() }
            while pendingBytes >= configuration.maxPendingBytes, case .ready = state { spaceAvailable.wait() }
            spaceWaiters -= 1
            try checkAppendable()
            precondition(zxid > lastAppended, "zxid \(zxid) appended after \(lastAppended): zxids must be strictly increasing")
        }
        pending.append(PendingRecord(zxid: zxid, payload: payload, payloadChecksum: checksum))
        pendingBytes += extent
        lastAppended = zxid
        if wake && writerWaiting { workAvailable.signal() }
    }

    /// Gets the records appended with `wake: false` written. With `inline: true`, when the
    /// writer thread is idle (no batch in flight: a light load), the calling thread writes and
    /// syncs the batch itself and `onEvent` runs on it before this returns: two thread
    /// hand-offs fewer for that batch, the same group commit otherwise. When a batch is in
    /// flight, or with `inline: false`, the writer thread is woken and this returns at once.
    public func flush(inline: Bool) {
        mutex.lock()
        guard !pending.isEmpty else {
            mutex.unlock()
            return
        }
        guard inline, let batch = takeInlineBatch(minimumRecords: 1) else {
            if writerWaiting { workAvailable.signal() }
            mutex.unlock()
            return
        }
        mutex.unlock()
        writeBatch(batch)
        endInlineWrite()
    }

    /// When the writer thread is idle and at least `minimumRecords` are pending: takes the
    /// next batch for the calling thread to write and sets `inlineWriting` (the writer thread
    /// keeps off until `endInlineWrite`); nil otherwise. Under `mutex`.
    private func takeInlineBatch(minimumRecords: Int) -> [PendingRecord]? {
        guard pending.count >= minimumRecords, writerWaiting, !writerWaitingForInline, !inlineWriting,
              controls.isEmpty, configuration.maxBatchDelay == .zero, case .ready = state
        else { return nil }
        inlineWriting = true
        inlineThread = pthread_self()
        var batch: [PendingRecord] = []
        takeBatch(into: &batch)
        return batch
    }

    /// Ends the caller's inline write and wakes the writer thread if anything waits for it.
    private func endInlineWrite() {
        mutex.lock()
        overlapped = nil
        inlineWriting = false
        inlineThread = nil
        if writerWaitingForInline || !pending.isEmpty || !controls.isEmpty { workAvailable.signal() }
        mutex.unlock()
    }

    /// `flush(inline: true)` with the batch's fdatasync overlapped: the calling thread writes
    /// the batch (when the writer thread is idle and at least `minimumRecords` are pending),
    /// the writer thread syncs it, and meanwhile `meanwhile(last, awaitSync)` runs on the
    /// caller, `last` being the batch's last zxid. `awaitSync` returns once the batch is
    /// durable, or throws the error that stopped it; either way `onEvent` has reported the
    /// outcome first, on the writer thread. The caller may thus prepare what depends on the
    /// batch (apply it to a store, uncommitted) while the disk syncs, and wait only where it
    /// must. Returns after the sync whatever `meanwhile` did, true; false, having done nothing,
    /// when the batch cannot be written here now (then call `flush(inline:)`).
    public func flush(overlappingSyncOf minimumRecords: Int, _ meanwhile: (Zxid, @escaping () throws -> Void) -> Void) -> Bool {
        mutex.lock()
        guard let batch = takeInlineBatch(minimumRecords: max(1, minimumRecords)) else {
            mutex.unlock()
            return false
        }
        mutex.unlock()
        do {
            let written = try writer.writeUnsynced(batch[...])
            let job = OverlappedSync(batch: batch, written: written)
            mutex.withLock {
                overlapped = job
                workAvailable.signal()
            }
            meanwhile(batch.last!.zxid) { [self] () throws in
                if let error = waitForSync(of: job) { throw error }
            }
            // Whatever `meanwhile` did, the writer must be done with the batch before this
            // thread lets go of the log; its outcome, failure included, is already reported
            // through `onEvent`.
            _ = waitForSync(of: job)
        } catch {
            failed(batch: batch, error: error)
        }
        endInlineWrite()
        return true
    }

    /// Waits until the writer thread synced `job`; returns the error that stopped it, if any.
    private func waitForSync(of job: OverlappedSync) -> KeeperLogError? {
        mutex.withLock {
            while !job.done { progress.wait() }
            return job.error
        }
    }

    /// On the writer thread: syncs the batch `flush(overlappingSyncOf:_:)` wrote and reports it.
    private func syncOverlapped(_ job: OverlappedSync) {
        var error: KeeperLogError?
        do {
            try writer.finish(job.batch[...], job.written)
            committed(through: job.batch.last!.zxid)
        } catch let failure {
            error = failed(batch: job.batch, error: failure)
        }
        mutex.withLock {
            job.error = error
            job.done = true
            progress.broadcast()
        }
    }

    /// A handed-over sync waits for the writer thread. Under `mutex`.
    private var syncHandedOver: Bool { overlapped.map { !$0.taken } ?? false }

    /// Moves the next batch (at most `maxBatchRecords`) out of `pending`. Under `mutex`.
    private func takeBatch(into batch: inout [PendingRecord]) {
        if pending.count <= configuration.maxBatchRecords {
            swap(&batch, &pending)
        } else {
            batch.append(contentsOf: pending[0..<configuration.maxBatchRecords])
            pending.removeFirst(configuration.maxBatchRecords)
        }
        for record in batch { pendingBytes -= LogFormat.recordExtent(payloadLength: record.payload.count) }
        if spaceWaiters > 0 { spaceAvailable.broadcast() }
    }

    /// Writes and syncs a batch (on the writer thread, or inline) and reports the outcome.
    private func writeBatch(_ batch: [PendingRecord]) {
        do {
            try writer.write(batch[...])
            committed(through: batch.last!.zxid)
        } catch {
            failed(batch: batch, error: error)
        }
    }

    private func checkAppendable() throws {
        switch state {
        case .ready: return
        case .stalled(let error), .failed(let error): throw error
        case .closing, .closed: throw KeeperLogError.closed
        }
    }

    /// Whether the caller is writing batches (the writer thread, or a thread in
    /// `flush(inline: true)`): it must never wait for the queue to drain.
    private var onWriterThread: Bool {
        if inlineWriting, let inlineThread, pthread_equal(inlineThread, pthread_self()) != 0 { return true }
        guard let writerThread else { return false }
        return pthread_equal(writerThread, pthread_self()) != 0
    }

    /// Acknowledges a failed batch: the records after `lastDurableZxid` are gone, and appends
    /// continue from there (after ENOSPC, once space returns). Throws if the log has failed.
    public func resume() throws {
        try mutex.withLock { () throws in
            switch state {
            case .ready, .stalled: state = .ready
            case .failed(let error): throw error
            case .closing, .closed: throw KeeperLogError.closed
            }
        }
    }

    /// The highest zxid known durable: every record up to it survives a crash.
    public var lastDurableZxid: Zxid { mutex.withLock { durable } }

    /// The highest zxid appended (durable or not).
    public var lastAppendedZxid: Zxid { mutex.withLock { lastAppended } }

    /// Returns once every record up to `zxid` is durable; throws if it never will be (a failed
    /// batch, a closed log). For tests and benchmarks; the server uses `onEvent`.
    public func waitUntilDurable(_ zxid: Zxid) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            mutex.lock()
            if durable >= zxid {
                mutex.unlock()
                continuation.resume()
                return
            }
            switch state {
            case .ready:
                waiters.append((zxid, continuation))
                if !pending.isEmpty && writerWaiting { workAvailable.signal() }  // appended with `wake: false`
                mutex.unlock()
            case .stalled(let error), .failed(let error):
                mutex.unlock()
                continuation.resume(throwing: error)
            case .closing:
                waiters.append((zxid, continuation))
                mutex.unlock()
            case .closed:
                mutex.unlock()
                continuation.resume(throwing: KeeperLogError.closed)
            }
        }
    }

    // MARK: Segments, truncate, purge, read

    /// The segments, oldest first, with their zxid ranges (durable records only).
    public func segments() -> [LogSegment] { mutex.withLock { publishedSegments } }

    /// Removes every record after `zxid`: ZAB's TRUNC, when a follower holds proposals the new
    /// leader never committed. Waits for appended records to be durable first; appending while
    /// it runs is a programmer error. `lastDurableZxid` becomes the last record kept.
    public func truncate(after zxid: Zxid) throws {
        mutex.lock()
        if !pending.isEmpty && writerWaiting { workAvailable.signal() }  // appended with `wake: false`
        while !pending.isEmpty || durable < lastAppended, case .ready = state { progress.wait() }
        mutex.unlock()
        try perform { writer in try writer.truncate(after: zxid) }
    }

    /// Removes the segments whose records all precede `zxid` (never the active one), once the
    /// store checkpoint, follower catch-up and backups no longer need them. Returns them.
    @discardableResult
    public func purge(before zxid: Zxid) throws -> [LogSegment] {
        var removed: [LogSegment] = []
        try perform { writer in removed = try writer.purge(before: zxid) }
        return removed
    }

    /// Streams the durable records from `zxid` on (inclusive), one at a time, verifying each;
    /// records made durable after this call are not included.
    public func read(from zxid: Zxid) -> LogReader {
        LogReader(fileSystem: configuration.fileSystem, segments: segments(), from: zxid)
    }

    /// Returns once the preallocator is idle (for tests that inject write faults).
    func waitForPreallocator() { writer.preallocator.waitUntilIdle() }

    /// Returns once the writer thread waits (for tests). `flush(inline:)` and
    /// `flush(overlappingSyncOf:_:)` write on their caller only while it does; just after a
    /// failed batch is reported the thread may not be back at its wait, and they decline.
    /// False if it did not within `seconds`.
    func waitForIdleWriter(seconds: Double = 10) -> Bool {
        let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
        return mutex.withLock {
            idleWatchers += 1
            defer { idleWatchers -= 1 }
            while !writerWaiting {
                if !progress.wait(untilNanoseconds: deadline) { break }
            }
            return writerWaiting
        }
    }

    /// The writer thread is about to wait for work: `flush(inline:)` may take a batch now.
    /// Under `mutex`.
    private func writerWillWait() {
        writerWaiting = true
        if idleWatchers > 0 { progress.broadcast() }
    }

    /// Returns once an appender is blocked by back-pressure (for tests).
    func waitForBlockedAppender() {
        mutex.withLock {
            while spaceWaiters == 0 { progress.wait() }
        }
    }

    /// Runs `body` on the writer thread between batches and waits for it.
    private func perform(_ body: @escaping (SegmentWriter) throws -> Void) throws {
        let control = Control(body)
        mutex.lock()
        defer { mutex.unlock() }
        switch state {
        case .ready, .stalled: break
        case .failed(let error): throw error
        case .closing, .closed: throw KeeperLogError.closed
        }
        controls.append(control)
        if writerWaiting { workAvailable.signal() }
        while !control.done { progress.wait() }
        if let error = control.error { throw error }
    }

    /// Writes what is pending, stops the writer thread and closes the files. Waiters still
    /// pending fail with `.closed`.
    public func close() throws {
        mutex.lock()
        switch state {
        case .closed, .closing:
            mutex.unlock()
            return
        case .ready, .stalled, .failed:
            state = .closing
        }
        workAvailable.signal()
        spaceAvailable.broadcast()
        let thread = writerThread!
        mutex.unlock()
        joinThread(thread)
        mutex.lock()
        state = .closed
        let abandoned = waiters
        waiters = []
        let error = closeError
        mutex.unlock()
        for waiter in abandoned { waiter.continuation.resume(throwing: KeeperLogError.closed) }
        if let error { throw error }
    }

    // MARK: The writer thread

    private func writerLoop() {
        var batch: [PendingRecord] = []
        let delay = configuration.maxBatchDelay.components
        let delayNanoseconds = UInt64(delay.seconds) * 1_000_000_000 + UInt64(delay.attoseconds / 1_000_000_000)
        while true {
            mutex.lock()
            while pending.isEmpty && controls.isEmpty && !syncHandedOver, case .ready = state {
                writerWillWait()
                workAvailable.wait()
            }
            while pending.isEmpty && controls.isEmpty, case .stalled = state {
                writerWillWait()
                workAvailable.wait()
            }
            if let job = overlapped, !job.taken {
                job.taken = true
                writerWaiting = false
                mutex.unlock()
                syncOverlapped(job)
                continue
            }
            if inlineWriting {
                // Woken while a caller writes a batch inline: wait for it (or for the sync it
                // hands over), then look again.
                writerWaitingForInline = true
                while inlineWriting && !syncHandedOver { workAvailable.wait() }
                writerWaitingForInline = false
                writerWaiting = false
                mutex.unlock()
                continue
            }
            writerWaiting = false
            if !controls.isEmpty {
                let control = controls.removeFirst()
                mutex.unlock()
                do { try control.body(writer) } catch { control.error = error }
                mutex.lock()
                if pending.isEmpty {
                    durable = writer.lastZxid
                    lastAppended = writer.lastZxid
                }
                publishedSegments = writer.segments
                control.done = true
                progress.broadcast()
                mutex.unlock()
                continue
            }
            if pending.isEmpty {
                // Closing (or failed) with nothing left to write.
                if case .failed = state, !isClosing {
                    writerWillWait()
                    workAvailable.wait()
                    writerWaiting = false
                    mutex.unlock()
                    continue
                }
                mutex.unlock()
                break
            }
            if delayNanoseconds > 0 && pending.count < configuration.maxBatchRecords {
                let deadline = monotonicNanoseconds() + delayNanoseconds
                writerWillWait()
                while pending.count < configuration.maxBatchRecords, case .ready = state {
                    if !workAvailable.wait(untilNanoseconds: deadline) { break }
                }
                writerWaiting = false
            }
            takeBatch(into: &batch)
            mutex.unlock()
            writeBatch(batch)
            batch.removeAll(keepingCapacity: true)
        }
        do {
            try writer.close()
        } catch {
            mutex.withLock { closeError = asLogError(error) }
        }
    }

    private var isClosing: Bool {
        if case .closing = state { return true }
        return false
    }

    private func committed(through zxid: Zxid) {
        var ready: [CheckedContinuation<Void, any Error>] = []
        mutex.lock()
        durable = zxid
        if let active = writer.active {
            if publishedSegments.last?.isActive == true {
                publishedSegments[publishedSegments.count - 1] = active.info
            } else {
                publishedSegments.append(active.info)
            }
            if publishedSegments.count != writer.sealed.count + 1 { publishedSegments = writer.segments }
        }
        if !waiters.isEmpty {
            var kept: [(zxid: Zxid, continuation: CheckedContinuation<Void, any Error>)] = []
            for waiter in waiters {
                if waiter.zxid <= zxid { ready.append(waiter.continuation) } else { kept.append(waiter) }
            }
            waiters = kept
        }
        progress.broadcast()
        mutex.unlock()
        onEvent(.durable(zxid))
        for continuation in ready { continuation.resume() }
    }

    @discardableResult
    private func failed(batch: [PendingRecord], error: any Error) -> KeeperLogError {
        let cause = asLogError(error)
        var permanent: KeeperLogError?
        if case .failed = cause { permanent = cause }
        if permanent == nil {
            do { try writer.repair() } catch { permanent = .failed(cause: asLogError(error)) }
        }
        var doomed: [CheckedContinuation<Void, any Error>] = []
        mutex.lock()
        let range = batch.first!.zxid...lastAppended
        pending.removeAll()
        pendingBytes = 0
        lastAppended = durable
        let reported: KeeperLogError
        if let permanent {
            reported = permanent
            if !isClosing { state = .failed(permanent) }
        } else {
            reported = .stalled(lastDurable: durable, cause: cause)
            if !isClosing { state = .stalled(reported) }
        }
        var kept: [(zxid: Zxid, continuation: CheckedContinuation<Void, any Error>)] = []
        for waiter in waiters {
            // Nothing after the durable zxid can become durable until resume() and new appends.
            if waiter.zxid > durable { doomed.append(waiter.continuation) } else { kept.append(waiter) }
        }
        waiters = kept
        publishedSegments = writer.segments
        spaceAvailable.broadcast()
        progress.broadcast()
        mutex.unlock()
        onEvent(.failed(zxids: range, error: reported))
        for continuation in doomed { continuation.resume(throwing: reported) }
        return reported
    }
}

/// The log's file operations throw only `KeeperLogError` (the seam's methods are typed); the
/// writer's helpers are untyped for brevity, so this recovers the type.
func asLogError(_ error: any Error) -> KeeperLogError {
    guard let error = error as? KeeperLogError else { preconditionFailure("the log threw a foreign error: \(error)") }
    return error
}
