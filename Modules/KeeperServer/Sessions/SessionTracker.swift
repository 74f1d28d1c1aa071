import KeeperModel

/// Session bookkeeping on the replica thread: negotiated timeouts, passwords, and ZooKeeper's
/// expiry buckets (ExpiryQueue): a session expires at the first tick boundary after
/// `lastSeen + timeout`, so the tracker only looks at one bucket per tick.
public struct SessionTracker: Sendable {
    public struct Session: Hashable, Sendable {
        public var id: SessionID
        public var timeout: Int32
        /// Milliseconds (monotonic) at which the session expires unless it is seen again.
        public var expiresAt: Int64
        /// Set once a closeSession txn is proposed: no more requests are accepted for it.
        public var isClosing = false
    }

    public private(set) var sessions: [SessionID: Session] = [:]
    private var buckets: [Int64: Set<SessionID>] = [:]
    /// The bucket width: ZooKeeper's expirationInterval is tickTime.
    public let interval: Int64
    private var nextID: Int64

    /// `serverID` seeds session ids as ZooKeeper's SessionTrackerImpl.initializeNextSessionId does:
    /// the server id in the high byte, the time in milliseconds shifted into the rest, so ids from
    /// different servers and restarts do not collide.
    public init(tickTime: Int, serverID: Int, wallClockMillis: Int64) {
        self.interval = Int64(max(1, tickTime))
        var next = (UInt64(bitPattern: wallClockMillis) << 24) >> 8
        next |= UInt64(serverID & 0xff) << 56
        self.nextID = Int64(bitPattern: next == UInt64(1) << 63 ? next + 1 : next)
    }

    /// A fresh session id (never reused while this process runs).
    public mutating func allocateID() -> SessionID {
        defer { nextID &+= 1 }
        return SessionID(nextID)
    }

    func bucket(_ time: Int64) -> Int64 { (time / interval + 1) * interval }

    /// Adds or refreshes a session (createSession applied, or revived after a restart).
    public mutating func add(_ id: SessionID, timeout: Int32, now: Int64) {
        if let old = sessions[id] { buckets[bucket(old.expiresAt)]?.remove(id) }
        let expires = now + Int64(timeout)
        sessions[id] = Session(id: id, timeout: timeout, expiresAt: expires)
        buckets[bucket(expires), default: []].insert(id)
    }

    /// Records activity from the session's client; false if the session is unknown or closing.
    @discardableResult
    public mutating func touch(_ id: SessionID, now: Int64) -> Bool {
        guard var s = sessions[id], !s.isClosing else { return false }
        let expires = now + Int64(s.timeout)
        let oldBucket = bucket(s.expiresAt)
        let newBucket = bucket(expires)
        s.expiresAt = expires
        sessions[id] = s
        if oldBucket != newBucket {
            buckets[oldBucket]?.remove(id)
            if buckets[oldBucket]?.isEmpty == true { buckets.removeValue(forKey: oldBucket) }
            buckets[newBucket, default: []].insert(id)
        }
        return true
    }

    /// Marks a session as closing (its closeSession txn is on its way).
    public mutating func markClosing(_ id: SessionID) {
        sessions[id]?.isClosing = true
    }

    public mutating func remove(_ id: SessionID) {
        guard let s = sessions.removeValue(forKey: id) else { return }
        let b = bucket(s.expiresAt)
        buckets[b]?.remove(id)
        if buckets[b]?.isEmpty == true { buckets.removeValue(forKey: b) }
    }

    /// Sessions whose time is up at `now`, marked closing so they are returned once.
    public mutating func expire(now: Int64) -> [SessionID] {
        var out: [SessionID] = []
        for b in buckets.keys.sorted() where b <= now {
            for id in buckets.removeValue(forKey: b) ?? [] {
                guard var s = sessions[id] else { continue }
                if s.expiresAt <= now && !s.isClosing {
                    s.isClosing = true
                    sessions[id] = s
                    out.append(id)
                } else if !s.isClosing {
                    buckets[bucket(s.expiresAt), default: []].insert(id)
                }
            }
        }
        return out.sorted()
    }

    public func session(_ id: SessionID) -> Session? { sessions[id] }

    /// The timeout ZooKeeper negotiates: the client's request clamped to [min, max].
    public static func negotiate(_ requested: Int32, min: Int, max: Int) -> Int32 {
        Int32(clamping: Swift.min(Swift.max(Int(requested), min), max))
    }
}
