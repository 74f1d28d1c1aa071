/// Watch event types (Watcher.Event.EventType).
public enum EventType: Int32, Sendable, CaseIterable {
    case none = -1
    case nodeCreated = 1
    case nodeDeleted = 2
    case nodeDataChanged = 3
    case nodeChildrenChanged = 4
    case dataWatchRemoved = 5
    case childWatchRemoved = 6
    case persistentWatchRemoved = 7
}

/// Connection states carried in watch events (Watcher.Event.KeeperState).
public enum KeeperState: Int32, Sendable, CaseIterable {
    case disconnected = 0
    case syncConnected = 3
    case authFailed = 4
    case connectedReadOnly = 5
    case saslAuthenticated = 6
    case closed = 7
    case expired = -112
}

/// Watcher types for checkWatches/removeWatches (Watcher.WatcherType) and addWatch modes.
public enum WatcherType: Int32, Sendable, CaseIterable {
    case children = 1
    case data = 2
    case any = 3
    case persistent = 4
    case persistentRecursive = 5
}

/// Modes of `addWatch` (AddWatchMode): persistent 0, persistent-recursive 1.
public enum AddWatchMode: Int32, Sendable, CaseIterable {
    case persistent = 0
    case persistentRecursive = 1
}

/// A watch notification as the server sends it (WatcherEvent{type, state, path}).
public struct WatchEvent: Hashable, Sendable {
    public var type: EventType
    public var state: KeeperState
    public var path: String
    public init(type: EventType, state: KeeperState, path: String) {
        self.type = type
        self.state = state
        self.path = path
    }
}
