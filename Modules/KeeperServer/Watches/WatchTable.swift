import KeeperModel

/// Who watches: one client connection (its session's current connection).
public typealias WatcherID = UInt64

/// How a watcher watches one path: ZooKeeper 3.8's WatcherMode. A watcher holds one mode per
/// path and table; the latest registration replaces the previous one (3.8's
/// WatcherModeManager), so `getData(watch)` after `addWatch` leaves a one-shot watch.
enum WatchMode: Hashable, Sendable {
    case standard
    case persistent
    case persistentRecursive
}

/// One of ZooKeeper's two watch tables (data watches or child watches): path -> watchers with
/// their mode, and watcher -> paths so a closing connection drops its watches in one step.
///
/// Trigger rules follow ZooKeeper 3.8's WatchManager.triggerWatch: on the path itself standard
/// and persistent watchers fire (standard ones are consumed); a persistent-recursive watcher
/// fires on the path and every descendant, for every event type except NodeChildrenChanged.
struct WatchTable: Sendable {
    private(set) var byPath: [String: [WatcherID: WatchMode]] = [:]
    private(set) var byWatcher: [WatcherID: Set<String>] = [:]
    private(set) var recursiveCount = 0

    mutating func add(_ path: String, _ watcher: WatcherID, _ mode: WatchMode) {
        let old = byPath[path]?[watcher]
        if old == .persistentRecursive { recursiveCount -= 1 }
        if mode == .persistentRecursive { recursiveCount += 1 }
        byPath[path, default: [:]][watcher] = mode
        byWatcher[watcher, default: []].insert(path)
    }

    func mode(_ path: String, _ watcher: WatcherID) -> WatchMode? { byPath[path]?[watcher] }

    func hasWatchers(_ path: String) -> Bool { !(byPath[path]?.isEmpty ?? true) }

    /// Removes a watcher's watch on a path; true if there was one.
    @discardableResult
    mutating func remove(_ path: String, _ watcher: WatcherID) -> Bool {
        guard let old = byPath[path]?.removeValue(forKey: watcher) else { return false }
        if old == .persistentRecursive { recursiveCount -= 1 }
        if byPath[path]?.isEmpty == true { byPath.removeValue(forKey: path) }
        byWatcher[watcher]?.remove(path)
        if byWatcher[watcher]?.isEmpty == true { byWatcher.removeValue(forKey: watcher) }
        return true
    }

    /// Drops every watch of a watcher (connection closed or session expired).
    mutating func removeAll(of watcher: WatcherID) {
        for path in byWatcher[watcher] ?? [] { remove(path, watcher) }
    }

    /// Fires `path` for an event of `type`: the watchers to notify, consuming standard watches.
    mutating func trigger(_ path: String, _ type: EventType, suppressing suppressed: Set<WatcherID> = []) -> Set<WatcherID> {
        var fired = Set<WatcherID>()
        var consumed: [WatcherID] = []
        if let watchers = byPath[path] {
            for (watcher, mode) in watchers where !suppressed.contains(watcher) {
                switch mode {
                case .persistentRecursive:
                    if type != .nodeChildrenChanged { fired.insert(watcher) }
                case .persistent:
                    fired.insert(watcher)
                case .standard:
                    fired.insert(watcher)
                    consumed.append(watcher)
                }
            }
        }
        for watcher in consumed { remove(path, watcher) }
        guard recursiveCount > 0, type != .nodeChildrenChanged else { return fired }
        var ancestor = ZNodePath.parent(of: path)
        while let a = ancestor {
            let key = String(a)
            if let watchers = byPath[key] {
                for (watcher, mode) in watchers where mode == .persistentRecursive && !suppressed.contains(watcher) {
                    fired.insert(watcher)
                }
            }
            ancestor = key == "/" ? nil : ZNodePath.parent(of: key)
        }
        return fired
    }

    var count: Int { byPath.values.reduce(0) { $0 + $1.count } }
}
