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
        case .persistent(let path, recursive: true): t.data.add(path, w, .persistentRecursive)
        case .persistent(let path, recursive: false):
            t.data.add(path, w, .persistent)
            t.child.add(path, w, .persistent)
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
            emit(t.data.trigger(path), .nodeCreated, path)
            if let parent = ZNodePath.parent(of: path) {
                emit(t.child.trigger(String(parent)), .nodeChildrenChanged, String(parent))
            }
        case .deleted(let path):
            let fired = t.data.trigger(path)
            emit(fired, .nodeDeleted, path)
            emit(t.child.trigger(path, suppressing: fired), .nodeDeleted, path)
            if let parent = ZNodePath.parent(of: path) {
                emit(t.child.trigger(String(parent)), .nodeChildrenChanged, String(parent))
            }
        case .dataChanged(let path):
            emit(t.data.trigger(path), .nodeDataChanged, path)
        }
    }

    /// checkWatches / removeWatches (ZooKeeper's DataTree.containsWatcher / removeWatch): true
    /// when the watcher had a watch of that type on the path (and, with `remove`, it is gone).
    public func watches(_ path: String, type: WatcherType, watcher w: WatcherID, remove: Bool) -> Bool {
        tables.withLock { t in
            func has(_ table: WatchTable, _ modes: WatchModes) -> Bool {
                !table.modes(path, w).intersection(modes).isEmpty
            }
            let any: WatchModes = [.standard, .persistent, .persistentRecursive]
            switch (type, remove) {
            case (.children, false): return has(t.child, .standard)
            case (.data, false): return has(t.data, .standard)
            case (.persistent, false): return has(t.data, .persistent)
            case (.persistentRecursive, false): return has(t.data, .persistentRecursive)
            case (.any, false): return has(t.child, any) || has(t.data, any)
            case (.children, true): return !t.child.remove(path, w, modes: .standard).isEmpty
            case (.data, true): return !t.data.remove(path, w, modes: .standard).isEmpty
            case (.persistent, true):
                let c = t.child.remove(path, w, modes: .persistent)
                let d = t.data.remove(path, w, modes: .persistent)
                return !c.isEmpty || !d.isEmpty
            case (.persistentRecursive, true): return !t.data.remove(path, w, modes: .persistentRecursive).isEmpty
            case (.any, true):
                let c = t.child.remove(path, w, modes: any)
                let d = t.data.remove(path, w, modes: any)
                return !c.isEmpty || !d.isEmpty
            }
        }
    }

    /// Drops every watch of a connection.
    public func removeAll(of watcher: WatcherID) {
        tables.withLock { t in
            t.data.removeAll(of: watcher)
            t.child.removeAll(of: watcher)
        }
    }

    /// Summary for `wchs`/mntr: (connections watching, paths watched, total watches).
    public func summary() -> (watchers: Int, paths: Int, watches: Int) {
        tables.withLock { t in
            let watchers = Set(t.data.byWatcher.keys).union(t.child.byWatcher.keys).count
            let paths = Set(t.data.byPath.keys).union(t.child.byPath.keys).count
            return (watchers, paths, t.data.count + t.child.count)
        }
    }

    /// For `wchp`: path -> watchers; for `wchc`: watcher -> paths.
    public func byPath() -> [String: [WatcherID]] {
        tables.withLock { t in
            var out: [String: Set<WatcherID>] = [:]
            for table in [t.data, t.child] {
                for (path, ws) in table.byPath { out[path, default: []].formUnion(ws.keys) }
            }
            return out.mapValues { $0.sorted() }
        }
    }

    public func byWatcher() -> [WatcherID: [String]] {
        tables.withLock { t in
            var out: [WatcherID: Set<String>] = [:]
            for table in [t.data, t.child] {
                for (w, paths) in table.byWatcher { out[w, default: []].formUnion(paths) }
            }
            return out.mapValues { $0.sorted() }
        }
    }
}
