#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Zero-fills the active segment ahead of the writer, on a thread of its own, in chunks that
/// it writes back as it goes: the writer then finds preallocated space ready and its
/// fdatasync carries no pile of zero pages, so a 64 MiB preallocation block does not stall a
/// batch. It keeps only `lead` bytes ahead of the writer (paced by `allow(through:)`), so the
/// zeros trickle out at the log's own rate instead of competing in one burst with the
/// writer's syncs. The zeros become durable with the writer's next fdatasync (as does the new
/// size); until then a crash merely loses preallocated space, never a record.
///
/// `@unchecked Sendable`: `job`, `reached`, `limit`, `completed`, `cancelled` and `stopping` are only
/// touched with `mutex` held; `zeros` is immutable after init.
final class Preallocator: @unchecked Sendable {
    struct Job {
        let file: any LogFile
        let from: Int64
        let to: Int64
    }

    /// Bytes written (and written back) per step: a cancel, or a writer's fdatasync meeting
    /// pages under write-back, waits for at most one step.
    static let chunk = 256 << 10
    private let mutex = LogMutex()
    private let changed: LogCondition
    private var job: Job?
    private var reached: Int64 = 0
    /// How far the job may zero-fill for now.
    private var limit: Int64 = 0
    /// The last job's outcome, until `finish` takes it.
    private var completed: (file: any LogFile, reached: Int64, failure: KeeperLogError?)?
    private var cancelled = false
    private var stopping = false
    private var thread: pthread_t?
    private let zeros: UnsafeMutableRawPointer

    init() {
        changed = LogCondition(mutex)
        zeros = .allocate(byteCount: Self.chunk, alignment: 4096)
        zeros.initializeMemory(as: UInt8.self, repeating: 0, count: Self.chunk)
        let started = startThread { [unowned self] in self.run() }
        mutex.withLock { thread = started }
    }

    deinit { zeros.deallocate() }

    /// True while a job runs.
    var isBusy: Bool { mutex.withLock { job != nil } }

    /// Starts zero-filling `from..<to` of `file`, at first only up to `limit`. Only one job at
    /// a time.
    func start(file: any LogFile, from: Int64, to: Int64, limit: Int64) {
        mutex.withLock {
            precondition(job == nil, "one preallocation at a time")
            job = Job(file: file, from: from, to: to)
            completed = nil
            reached = from
            self.limit = limit
            cancelled = false
            changed.broadcast()
        }
    }

    /// Lets the running job on `file` zero-fill up to `end`. Wakes the thread only when it
    /// waits for this (it reached the old limit) and may now write a chunk: it writes whole
    /// chunks, so a writer that moves the limit by a few hundred bytes a batch wakes it about
    /// once a chunk, not once a batch (a futex wake and a context switch per write saved).
    func allow(_ file: any LogFile, through end: Int64) {
        mutex.withLock {
            guard let current = job, (current.file as AnyObject) === (file as AnyObject), end > limit else { return }
            let waiting = reached >= limit
            limit = end
            if waiting && end > reached { changed.broadcast() }
        }
    }

    /// Waits until the running job on `file` has zero-filled through `end` (or ended), and
    /// returns how far it got; nil if no job runs on `file`. The job goes on past `end`, so
    /// the caller may use only bytes below the returned offset.
    func progress(of file: any LogFile, through end: Int64) -> Int64? {
        mutex.withLock {
            guard let current = job, (current.file as AnyObject) === (file as AnyObject) else {
                guard let completed, (completed.file as AnyObject) === (file as AnyObject) else { return nil }
                return completed.reached
            }
            if end > limit {
                limit = end
                changed.broadcast()
            }
            while let running = job, running.file as AnyObject === file as AnyObject, reached < end { changed.wait() }
            return job == nil ? completed?.reached ?? reached : reached
        }
    }

    /// Waits for the running job (stopping it early if `cancel`) and takes the outcome of the
    /// last job: how far it zero-filled and its error, or nil if there is none to take. After
    /// it returns, nothing writes to the file.
    func finish(cancel: Bool) -> (file: any LogFile, reached: Int64, failure: KeeperLogError?)? {
        mutex.withLock {
            if job != nil && cancel {
                cancelled = true
                changed.broadcast()
            }
            while job != nil { changed.wait() }
            defer { completed = nil }
            return completed
        }
    }

    /// Waits until no job runs (for tests that inject faults on writes).
    func waitUntilIdle() {
        mutex.withLock {
            while job != nil { changed.wait() }
        }
    }

    /// Stops the thread (after cancelling any job).
    func stop() {
        // Closing: how far the zeros reached, and any error writing them, no longer matter
        // (preallocated space is never needed for correctness).
        _ = finish(cancel: true)
        let joined: pthread_t? = mutex.withLock {
            stopping = true
            changed.broadcast()
            return thread
        }
        if let joined { joinThread(joined) }
    }

    private func run() {
        mutex.lock()
        while true {
            while job == nil && !stopping { changed.wait() }
            guard let current = job else { break }
            var offset = reached
            var error: KeeperLogError?
            while offset < current.to && !cancelled {
                if offset >= limit {
                    changed.wait()
                    continue
                }
                mutex.unlock()
                let length = Int(min(Int64(Self.chunk), current.to - offset))
                // (`limit` may be passed by up to one chunk: chunks stay whole.)
                do {
                    let vector = iovec(iov_base: zeros, iov_len: length)
                    try withUnsafePointer(to: vector) { try current.file.write(UnsafeBufferPointer(start: $0, count: 1), at: offset) }
                    try current.file.writeBack(offset..<(offset + Int64(length)))
                } catch let failed as KeeperLogError {
                    error = failed
                } catch {
                    preconditionFailure("LogFile threw a non-KeeperLogError: \(error)")
                }
                mutex.lock()
                if error != nil {
                    // Possibly a partial write: only what came before counts as zero-filled.
                    break
                }
                offset += Int64(length)
                reached = offset
                changed.broadcast()
            }
            completed = (current.file, reached, error)
            job = nil
            changed.broadcast()
        }
        mutex.unlock()
    }
}
