import KeeperModel
import NIOCore
import Synchronization

/// Watch events waiting for one connection. The replica appends to it inside the watch lock
/// (so a read that synchronises with that lock afterwards finds every event of every change
/// it can see); the connection drains it on its own event loop before any reply.
final class Mailbox: Sendable {
    private let events = Mutex<[WatchDelivery]>([])
    func append(_ d: WatchDelivery) { events.withLock { $0.append(d) } }
    func drain() -> [WatchDelivery] { events.withLock { e in defer { e.removeAll() }; return e } }
}

/// What the server knows about one open client connection, shared across threads.
final class ConnectionEntry: Sendable {
    let id: WatcherID
    let remote: String
    let remoteHost: String
    let eventLoop: any EventLoop
    let mailbox = Mailbox()
    /// Wakes the connection to drain its mailbox (hops to its event loop).
    let wake: @Sendable () -> Void
    /// Closes the connection (its session closed or moved).
    let close: @Sendable () -> Void
    let session = Atomic<Int64>(0)
    let established: Int64
    let received = Atomic<Int64>(0)
    let sent = Atomic<Int64>(0)
    let queued = Atomic<Int>(0)

    /// `crst`: resets the connection's counters.
    func resetStats() {
        received.store(0, ordering: .relaxed)
        sent.store(0, ordering: .relaxed)
    }

    init(
        id: WatcherID, remote: String, remoteHost: String, eventLoop: any EventLoop, established: Int64,
        wake: @escaping @Sendable () -> Void, close: @escaping @Sendable () -> Void
    ) {
        self.id = id
        self.remote = remote
        self.remoteHost = remoteHost
        self.eventLoop = eventLoop
        self.established = established
        self.wake = wake
        self.close = close
    }
}

/// Open connections by id, by session and by client address (for maxClientCnxns).
final class ConnectionRegistry: Sendable {
    private struct State {
        var byID: [WatcherID: ConnectionEntry] = [:]
        var bySession: [SessionID: WatcherID] = [:]
        var perHost: [String: Int] = [:]
        var nextID: WatcherID = 1
    }
    private let state = Mutex(State())

    func nextID() -> WatcherID { state.withLock { s in defer { s.nextID += 1 }; return s.nextID } }

    /// Adds a connection unless its address already has `limit` (0 = unlimited).
    func add(_ entry: ConnectionEntry, limit: Int) -> Bool {
        state.withLock { s in
            let count = s.perHost[entry.remoteHost, default: 0]
            if limit > 0 && count >= limit { return false }
            s.perHost[entry.remoteHost] = count + 1
            s.byID[entry.id] = entry
            return true
        }
    }

    func remove(_ id: WatcherID) {
        state.withLock { s in
            guard let e = s.byID.removeValue(forKey: id) else { return }
            s.perHost[e.remoteHost, default: 1] -= 1
            if s.perHost[e.remoteHost] == 0 { s.perHost.removeValue(forKey: e.remoteHost) }
            let session = SessionID(e.session.load(ordering: .relaxed))
            if s.bySession[session] == id { s.bySession.removeValue(forKey: session) }
        }
    }

    /// Binds a session to a connection; returns the connection it was bound to before, which
    /// the caller closes (ZooKeeper closes the old connection when a session reconnects).
    func bind(_ session: SessionID, to id: WatcherID) -> ConnectionEntry? {
        state.withLock { s in
            let old = s.bySession[session].flatMap { $0 == id ? nil : s.byID[$0] }
            s.bySession[session] = id
            s.byID[id]?.session.store(session.rawValue, ordering: .relaxed)
            return old
        }
    }

    func connection(for session: SessionID) -> ConnectionEntry? {
        state.withLock { s in s.bySession[session].flatMap { s.byID[$0] } }
    }

    func entry(_ id: WatcherID) -> ConnectionEntry? { state.withLock { $0.byID[id] } }

    func all() -> [ConnectionEntry] { state.withLock { Array($0.byID.values) }.sorted { $0.id < $1.id } }

    /// Routes events into mailboxes (called inside the watch lock) and returns whom to wake.
    func post(_ deliveries: [WatchDelivery]) -> [ConnectionEntry] {
        state.withLock { s in
            var woken: [WatcherID: ConnectionEntry] = [:]
            for d in deliveries {
                guard let e = s.byID[d.watcher] else { continue }
                e.mailbox.append(d)
                woken[d.watcher] = e
            }
            return Array(woken.values)
        }
    }
}
