import KeeperModel

/// Who watches: one client connection (its session's current connection).
public typealias WatcherID = UInt64

/// How a watcher watches one path (ZooKeeper's WatcherMode, as a set: one watcher may hold a
/// standard one-shot watch and a persistent one on the same path).
struct WatchModes: OptionSet, Hashable, Sendable {
    var rawValue: UInt8
    static let standard = WatchModes(rawValue: 1)
    static let persistent = WatchModes(rawValue: 2)
    static let persistentRecursive = WatchModes(rawValue: 4)
}

/// One of ZooKeeper's two watch tables (data watches or child watches): path -> watchers with
/// their modes, and watcher -> paths so a closing connection drops its watches in one step.
///
/// Trigger rules follow ZooKeeper's WatchManager.triggerWatch: on the path itself every watcher
/// fires (standard watches are consumed, persistent ones stay); on each ancestor only
/// persistent-recursive watchers fire.
struct WatchTable: Sendable {
    private(set) var byPath: [String: [WatcherID: WatchModes]] = [:]
    private(set) var byWatcher: [WatcherID: Set<String>] = [:]
    private(set) var recursiveCount = 0

    /// Adds a watch; false when the watcher already had that mode on the path.
    @discardableResult
    mutating func add(_ path: String, _ watcher: WatcherID, _ mode: WatchModes) -> Bool {
        let old = byPath[path]?[watcher] ?? []
        guard !old.contains(mode) else { return false }
        byPath[path, default: [:]][watcher] = old.union(mode)
        byWatcher[watcher, default: []].insert(path)
        if mode == .persistentRecursive { recursiveCount += 1 }
        return true
    }

    func modes(_ path: String, _ watcher: WatcherID) -> WatchModes {
        byPath[path]?[watcher] ?? []
    }

    /// Removes the given modes of one watcher on one path; returns the modes actually removed.
    @discardableResult
    mutating func remove(_ path: String, _ watcher: WatcherID, modes: WatchModes) -> WatchModes {
        guard let old = byPath[path]?[watcher] else { return [] }
        let removed = old.intersection(modes)
        set(path, watcher, old.subtracting(modes))
        if removed.contains(.persistentRecursive) { recursiveCount -= 1 }
        return removed
    }

    /// Drops every watch of a watcher (connection closed or session expired).
    mutating func removeAll(of watcher: WatcherID) {
        guard let paths = byWatcher.removeValue(forKey: watcher) else { return }
        for path in paths {
            if let modes = byPath[path]?.removeValue(forKey: watcher), modes.contains(.persistentRecursive) {
                recursiveCount -= 1
            }
            if byPath[path]?.isEmpty == true { byPath.removeValue(forKey: path) }
        }
    }

    /// Fires `path`: returns the watchers to notify, consuming standard watches.
    mutating func trigger(_ path: String, suppressing suppressed: Set<WatcherID> = []) -> Set<WatcherID> {
        var fired = Set<WatcherID>()
        if let watchers = byPath[path] {
            for (watcher, modes) in watchers where !suppressed.contains(watcher) {
                fired.insert(watcher)
                if modes.contains(.standard) { set(path, watcher, modes.subtracting(.standard)) }
            }
        }
        guard recursiveCount > 0 else { return fired }
        var ancestor = ZNodePath.parent(of: path)
        while let a = ancestor {
            let key = String(a)
            if let watchers = byPath[key] {
                for (watcher, modes) in watchers
                where modes.contains(.persistentRecursive) && !suppressed.contains(watcher) {
                    fired.insert(watcher)
                }
            }
            ancestor = key == "/" ? nil : ZNodePath.parent(of: key)
        }
        return fired
    }

    var count: Int { byPath.values.reduce(0) { $0 + $1.count } }

    private mutating func set(_ path: String, _ watcher: WatcherID, _ modes: WatchModes) {
        if modes.isEmpty {
            byPath[path]?.removeValue(forKey: watcher)
            if byPath[path]?.isEmpty == true { byPath.removeValue(forKey: path) }
            byWatcher[watcher]?.remove(path)
            if byWatcher[watcher]?.isEmpty == true { byWatcher.removeValue(forKey: watcher) }
        } else {
            byPath[path]![watcher] = modes
        }
    }
}
