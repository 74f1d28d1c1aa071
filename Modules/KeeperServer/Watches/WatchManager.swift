import KeeperModel
import Synchronization

/// A change the store made while applying a txn, as far as watches care.
public enum TreeChange: Hashable, Sendable {
    case created(String)
    case deleted(String)
    case dataChanged(String)
}

/// An event to deliver to one watcher: the notification and the zxid for its ReplyHeader.
public struct WatchDelivery: Hashable, Sendable {
    public var watcher: WatcherID
    public var event: WatchEvent
    public var zxid: Int64
}

/// Which watch a read registers, if any.
public enum WatchRegistration: Hashable, Sendable {
    /// getData/exists with watch=true: a one-shot data watch (also for a node that does not
    /// exist yet, for exists).
    case data(String)
    /// getChildren with watch=true: a one-shot child watch.
    case children(String)
    /// addWatch: persistent (data and child tables) or persistent-recursive (data table only),
    /// as ZooKeeper's DataTree.addWatch does it.
    case persistent(String, recursive: Bool)
}

/// The server's watches: ZooKeeper's data and child watch tables behind one lock.
///
/// The lock is what makes "read + register" atomic with "apply + trigger": a read that sets a
/// watch holds it from the start of its read transaction until the watch is registered, and the
/// replica thread holds it from the store commit until the watches fired. So a watch never misses
/// a change committed after the read it came from, and never fires for one the read already saw.
public final class WatchManager: Sendable {
    private struct Tables: Sendable {
        var data = WatchTable()
        var child = WatchTable()
    }
    private let tables = Mutex(Tables())

    public init() {}

    /// Runs `body` (a read) and registers what it returns, under the watch lock.
    public func withRegistration<T>(
        for watcher: WatcherID, _ body: () throws -> (T, WatchRegistration?)
    ) rethrows -> T {
        try tables.withLock { t in
            let (value, registration) = try body()
            if let registration { Self.register(registration, watcher, &t) }
            return value
        }
    }

    /// Runs `body` (a read) and registers every watch it returns, under the watch lock.
    public func withRegistrations<T>(
        for watcher: WatcherID, _ body: () throws -> (T, [WatchRegistration])
    ) rethrows -> T {
        try tables.withLock { t in
            let (value, registrations) = try body()
            for r in registrations { Self.register(r, watcher, &t) }
            return value
        }
    }

    /// Registers a watch outside a read (setWatches after its checks, tests).
    public func register(_ registration: WatchRegistration, for watcher: WatcherID) {
        tables.withLock { Self.register(registration, watcher, &$0) }
    }

    private static func register(_ r: WatchRegistration, _ w: WatcherID, _ t: inout Tables) {
        switch r {
        case .data(let path): t.data.add(path, w, .standard)
        case .children(let path): t.child.add(path, w, .standard)
        case .persistent(let path, let recursive):
            // ZooKeeper 3.8's DataTree.addWatch registers both modes in both tables.
            let mode: WatchMode = recursive ? .persistentRecursive : .persistent
            t.data.add(path, w, mode)
            t.child.add(path, w, mode)
        }
    }

    /// Runs the caller's commit step and the triggers it causes under the lock, and hands the
    /// deliveries to `post` while still holding it. `commit` runs first (the store's write
    /// transaction), so no read registering a watch can interleave between the commit and the
    /// triggers, and a connection that passes `barrier()` after reading finds in its mailbox
    /// the events of every change its read could see.
    public func commitAndTrigger<T>(
        _ commit: () throws -> (T, [(change: TreeChange, zxid: Int64)]),
        post: ([WatchDelivery]) -> Void = { _ in }
    ) rethrows -> (T, [WatchDelivery]) {
        try tables.withLock { t in
            let (value, changes) = try commit()
            var out: [WatchDelivery] = []
            for (change, zxid) in changes { Self.trigger(change, zxid, &t, into: &out) }
            if !out.isEmpty { post(out) }
            return (value, out)
        }
    }

    /// Waits for any commit-and-trigger in progress to finish (see `commitAndTrigger`).
    public func barrier() {
        tables.withLock { _ in }
    }

    private static func trigger(_ change: TreeChange, _ zxid: Int64, _ t: inout Tables, into out: inout [WatchDelivery]) {
        func emit(_ watchers: Set<WatcherID>, _ type: EventType, _ path: String) {
            for w in watchers.sorted() {
                out.append(WatchDelivery(watcher: w, event: WatchEvent(type: type, state: .syncConnected, path: path), zxid: zxid))
            }
        }
        switch change {
        case .created(let path):
            emit(t.data.trigger(path, .nodeCreated), .nodeCreated, path)
            if let parent = ZNodePath.parent(of: path) {
                emit(t.child.trigger(String(parent), .nodeChildrenChanged), .nodeChildrenChanged, String(parent))
            }
        case .deleted(let path):
            let fired = t.data.trigger(path, .nodeDeleted)
            emit(fired, .nodeDeleted, path)
            emit(t.child.trigger(path, .nodeDeleted, suppressing: fired), .nodeDeleted, path)
            if let parent = ZNodePath.parent(of: path) {
                emit(t.child.trigger(String(parent), .nodeChildrenChanged), .nodeChildrenChanged, String(parent))
            }
        case .dataChanged(let path):
            emit(t.data.trigger(path, .nodeDataChanged), .nodeDataChanged, path)
        }
    }

    /// checkWatches / removeWatches as ZooKeeper 3.8 answers them: only the types Children (1),
    /// Data (2) and Any (3) exist there (others are refused by the caller as a marshalling
    /// error); checkWatches is true when any connection watches the path in that table;
    /// removeWatches removes this watcher's watches, whatever their mode.
    public func watches(_ path: String, type: WatcherType, watcher w: WatcherID, remove: Bool) -> Bool {
        tables.withLock { t in
            let data = type == .data || type == .any
            let child = type == .children || type == .any
            if remove {
                let c = child && t.child.remove(path, w)
                let d = data && t.data.remove(path, w)
                return c || d
            }
            return (child && t.child.hasWatchers(path)) || (data && t.data.hasWatchers(path))
        }
    }

    /// Drops every watch of a connection.
    public func removeAll(of watcher: WatcherID) {
        tables.withLock { t in
            t.data.removeAll(of: watcher)
            t.child.removeAll(of: watcher)
        }
    }

    /// Summary for `wchs`: (connections watching, paths watched, watches), counted over the data
    /// watch table only, as ZooKeeper's wchs/wchc/wchp do; `total` counts both tables (mntr's
    /// zk_watch_count).
    public func summary() -> (watchers: Int, paths: Int, watches: Int, total: Int) {
        tables.withLock { t in
            (t.data.byWatcher.count, t.data.byPath.count, t.data.count, t.data.count + t.child.count)
        }
    }

    /// For `wchp`: path -> watchers (data watches).
    public func byPath() -> [String: [WatcherID]] {
        tables.withLock { t in t.data.byPath.mapValues { $0.keys.sorted() } }
    }

    /// For `wchc`: watcher -> paths (data watches).
    public func byWatcher() -> [WatcherID: [String]] {
        tables.withLock { t in t.data.byWatcher.mapValues { $0.sorted() } }
    }
}
