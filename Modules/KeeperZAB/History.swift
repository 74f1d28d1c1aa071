import KeeperModel

/// The tail of the log the core keeps in memory: every entry after `base`, in zxid order.
///
/// It plays ZooKeeper's `committedLog` plus the outstanding proposals: a learner whose last
/// zxid is `base` or one of `entries` can be brought up to date by DIFF (or TRUNC then DIFF);
/// one further behind gets a SNAP. Invariant: `base <= applied` of the core, so every entry
/// not yet applied to the store is here (a SNAP is always followed by the rest of the history).
public struct History: Hashable, Sendable {
    /// The zxid just before the first entry: a log start, or the state a snapshot installed.
    public private(set) var base: Zxid
    /// Entries after `base`, strictly increasing zxids.
    public private(set) var entries: [Proposal]

    public init(base: Zxid, entries: [Proposal]) {
        var last = base
        for entry in entries {
            precondition(entry.zxid > last, "history entries must follow \(last) in zxid order, got \(entry.zxid)")
            last = entry.zxid
        }
        self.base = base
        self.entries = entries
    }

    /// The last zxid of the history.
    public var last: Zxid { entries.last?.zxid ?? base }

    /// Index of the entry with this zxid, or nil.
    func index(of zxid: Zxid) -> Int? {
        var low = 0
        var high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].zxid < zxid { low = mid + 1 } else { high = mid }
        }
        return low < entries.count && entries[low].zxid == zxid ? low : nil
    }

    /// Index of the first entry after `zxid`.
    func firstIndex(after zxid: Zxid) -> Int {
        var low = 0
        var high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].zxid <= zxid { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Whether this history holds exactly this zxid (the base counts: it is our state there).
    func contains(_ zxid: Zxid) -> Bool { zxid == base || index(of: zxid) != nil }

    /// Entries in (`after`, `through`].
    func entries(after: Zxid, through: Zxid) -> ArraySlice<Proposal> {
        precondition(after >= base, "entries after \(after) are no longer in memory (base \(base))")
        let start = firstIndex(after: after)
        let end = firstIndex(after: through)
        return entries[start..<max(start, end)]
    }

    /// The largest zxid of the history below `zxid` (the base if none).
    func largest(below zxid: Zxid) -> Zxid {
        var low = 0
        var high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].zxid < zxid { low = mid + 1 } else { high = mid }
        }
        return low == 0 ? base : entries[low - 1].zxid
    }

    mutating func append(_ proposal: Proposal) {
        precondition(proposal.zxid > last, "append \(proposal.zxid) after \(last)")
        entries.append(proposal)
    }

    /// Drops every entry after `zxid`.
    mutating func truncate(after zxid: Zxid) {
        precondition(zxid >= base, "truncate to \(zxid) below the history base \(base)")
        entries.removeSubrange(firstIndex(after: zxid)...)
    }

    /// Starts over at a snapshot.
    mutating func reset(base zxid: Zxid) {
        base = zxid
        entries.removeAll(keepingCapacity: true)
    }

    /// Forgets the oldest entries, keeping every entry after `keepAfter` and at most
    /// `maxEntries` before it.
    mutating func trim(keepAfter: Zxid, maxEntries: Int) {
        let firstKept = firstIndex(after: keepAfter)
        let drop = firstKept - maxEntries
        guard drop > 0 else { return }
        base = entries[drop - 1].zxid
        entries.removeFirst(drop)
    }
}
