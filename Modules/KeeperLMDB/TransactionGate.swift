#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Lets transactions in and holds them out while the map is resized
/// (`mdb_env_set_mapsize` needs no transaction open in the process).
///
/// Unlike a reader-preferring read-write lock, a pending resize stops new transactions from
/// starting, so a steady stream of readers cannot starve it; a thread that already holds a
/// transaction may still open another (a read inside a write), so that cannot deadlock. A
/// resize requested from inside a transaction is a programmer error and crashes.
final class TransactionGate: @unchecked Sendable {
    // Sendable proof: `active` and `resizing` are only touched while holding `mutex`; the
    // per-thread depth lives in thread-specific storage, touched only by its own thread.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var key = pthread_key_t()
    private var active = 0
    private var resizing = false

    init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
        precondition(pthread_cond_init(condition, nil) == 0, "pthread_cond_init failed")
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
    }

    deinit {
        precondition(pthread_key_delete(key) == 0, "pthread_key_delete failed")
        precondition(pthread_cond_destroy(condition) == 0, "TransactionGate freed while waited on")
        precondition(pthread_mutex_destroy(mutex) == 0, "TransactionGate freed while held")
        condition.deallocate()
        mutex.deallocate()
    }

    /// Transactions this thread holds open through this gate.
    private var depth: Int {
        get { Int(bitPattern: pthread_getspecific(key)) }
        set { precondition(pthread_setspecific(key, UnsafeRawPointer(bitPattern: newValue)) == 0, "pthread_setspecific failed") }
    }

    private func lock() { precondition(pthread_mutex_lock(mutex) == 0, "pthread_mutex_lock failed") }
    private func unlock() { precondition(pthread_mutex_unlock(mutex) == 0, "pthread_mutex_unlock failed") }
    private func wait() { precondition(pthread_cond_wait(condition, mutex) == 0, "pthread_cond_wait failed") }
    private func wakeAll() { precondition(pthread_cond_broadcast(condition) == 0, "pthread_cond_broadcast failed") }

    func enter() {
        let d = depth
        lock()
        if d == 0 {
            while resizing { wait() }
        }
        active += 1
        unlock()
        depth = d + 1
    }

    func leave() {
        let d = depth
        precondition(d > 0, "TransactionGate.leave without enter")
        depth = d - 1
        lock()
        active -= 1
        if active == 0 { wakeAll() }
        unlock()
    }

    /// Whether a resize is waiting or running (for tests).
    var isResizePending: Bool {
        lock()
        defer { unlock() }
        return resizing
    }

    /// Runs `body` once no transaction is open, keeping new ones out meanwhile.
    func exclusive<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        precondition(depth == 0, "the LMDB map cannot be resized from inside a transaction")
        lock()
        while resizing { wait() }
        resizing = true
        while active > 0 { wait() }
        unlock()
        defer {
            lock()
            resizing = false
            wakeAll()
            unlock()
        }
        return try body()
    }
}
