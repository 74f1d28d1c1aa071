#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Zero-fills the active segment ahead of the writer, on a thread of its own, in chunks that
/// it writes back as it goes: the writer then finds preallocated space ready and its
/// fdatasync carries no pile of zero pages, so a 64 MiB preallocation block does not stall a
/// batch. The zeros become durable with the writer's next fdatasync (as does the new size);
/// until then a crash merely loses preallocated space, never a record.
///
/// `@unchecked Sendable`: `job`, `reached`, `failure`, `cancelled` and `stopping` are only
/// touched with `mutex` held; `zeros` is immutable after init.
final class Preallocator: @unchecked Sendable {
    struct Job {
        let file: any LogFile
        let from: Int64
        let to: Int64
    }

    /// Bytes written (and written back) per step, so a cancel waits at most one step.
    static let chunk = 1 << 20
    private let mutex = LogMutex()
    private let changed: LogCondition
    private var job: Job?
    private var reached: Int64 = 0
    private var failure: KeeperLogError?
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

    /// Starts zero-filling `from..<to` of `file`. Only one job at a time.
    func start(file: any LogFile, from: Int64, to: Int64) {
        mutex.withLock {
            precondition(job == nil, "one preallocation at a time")
            job = Job(file: file, from: from, to: to)
            reached = from
            failure = nil
            cancelled = false
            changed.broadcast()
        }
    }

    /// Waits until the running job on `file` has zero-filled through `end` (or ended), and
    /// returns how far it got; nil if no job runs on `file`. The job goes on past `end`, so
    /// the caller may use only bytes below the returned offset.
    func progress(of file: any LogFile, through end: Int64) -> Int64? {
        mutex.withLock {
            guard let current = job, (current.file as AnyObject) === (file as AnyObject) else { return nil }
            while let running = job, running.file as AnyObject === file as AnyObject, reached < end { changed.wait() }
            return reached
        }
    }

    /// Waits for the running job (stopping it early if `cancel`); returns how far it zero-filled
    /// and its error, or nil if there was no job. After it returns, nothing writes to the file.
    func finish(cancel: Bool) -> (file: any LogFile, reached: Int64, failure: KeeperLogError?)? {
        mutex.withLock {
            guard let current = job else { return nil }
            if cancel { cancelled = true }
            while job != nil { changed.wait() }
            return (current.file, reached, failure)
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
                mutex.unlock()
                let length = Int(min(Int64(Self.chunk), current.to - offset))
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
            failure = error
            job = nil
            changed.broadcast()
        }
        mutex.unlock()
    }
}
