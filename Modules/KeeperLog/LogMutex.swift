#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A pthread mutex with condition variables: the log needs a condition to park its writer
/// thread and back-pressured appenders, which the standard library's Mutex does not offer.
///
/// `@unchecked Sendable`: the pthread objects live in heap memory that never moves, and pthread
/// mutexes and conditions are made to be shared between threads.
final class LogMutex: @unchecked Sendable {
    let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init failed: \(rc)")
    }

    deinit {
        let rc = pthread_mutex_destroy(mutex)
        precondition(rc == 0, "pthread_mutex_destroy failed: \(rc)")
        mutex.deallocate()
    }

    @inline(__always) func lock() {
        let rc = pthread_mutex_lock(mutex)
        precondition(rc == 0, "pthread_mutex_lock failed: \(rc)")
    }

    @inline(__always) func unlock() {
        let rc = pthread_mutex_unlock(mutex)
        precondition(rc == 0, "pthread_mutex_unlock failed: \(rc)")
    }

    @inline(__always) func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A condition variable bound to a `LogMutex`, on the monotonic clock.
///
/// `@unchecked Sendable`: as for `LogMutex`.
final class LogCondition: @unchecked Sendable {
    let condition: UnsafeMutablePointer<pthread_cond_t>
    let mutex: LogMutex

    init(_ mutex: LogMutex) {
        self.mutex = mutex
        condition = .allocate(capacity: 1)
        var attributes = pthread_condattr_t()
        var rc = pthread_condattr_init(&attributes)
        precondition(rc == 0, "pthread_condattr_init failed: \(rc)")
        #if os(Linux)
        rc = pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        precondition(rc == 0, "pthread_condattr_setclock failed: \(rc)")
        #endif
        rc = pthread_cond_init(condition, &attributes)
        precondition(rc == 0, "pthread_cond_init failed: \(rc)")
        rc = pthread_condattr_destroy(&attributes)
        precondition(rc == 0, "pthread_condattr_destroy failed: \(rc)")
    }

    deinit {
        let rc = pthread_cond_destroy(condition)
        precondition(rc == 0, "pthread_cond_destroy failed: \(rc)")
        condition.deallocate()
    }

    /// Waits; the caller holds the mutex and rechecks its predicate in a loop.
    func wait() {
        let rc = pthread_cond_wait(condition, mutex.mutex)
        precondition(rc == 0, "pthread_cond_wait failed: \(rc)")
    }

    /// Waits until signalled or until `deadline` (monotonic nanoseconds); false on timeout.
    func wait(untilNanoseconds deadline: UInt64) -> Bool {
        var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        let rc = pthread_cond_timedwait(condition, mutex.mutex, &time)
        precondition(rc == 0 || rc == ETIMEDOUT, "pthread_cond_timedwait failed: \(rc)")
        return rc == 0
    }

    func signal() {
        let rc = pthread_cond_signal(condition)
        precondition(rc == 0, "pthread_cond_signal failed: \(rc)")
    }

    func broadcast() {
        let rc = pthread_cond_broadcast(condition)
        precondition(rc == 0, "pthread_cond_broadcast failed: \(rc)")
    }
}

/// Monotonic time in nanoseconds.
@inline(__always) func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    let rc = clock_gettime(CLOCK_MONOTONIC, &time)
    precondition(rc == 0, "clock_gettime failed")
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// Starts a joinable thread running `body`.
func startThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    #if os(Linux)
    var thread = pthread_t()
    #else
    var thread: pthread_t?
    #endif
    let rc = pthread_create(&thread, nil, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        box.body()
        return nil
    }, context)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    #if os(Linux)
    return thread
    #else
    return thread!
    #endif
}

func joinThread(_ thread: pthread_t) {
    let rc = pthread_join(thread, nil)
    precondition(rc == 0, "pthread_join failed: \(rc)")
}
