import KeeperModel
import KeeperZAB

/// The ZAB properties (Junqueira, Reed, Serafini, DSN 2011, the problem statement), checked on every
/// event of a simulated run. A failure is a string that says what broke, where and when.
struct Checker {
    /// The one committed history every server's store must be a prefix of.
    private(set) var committed: [Proposal] = []
    /// Every txn any leader proposed, by zxid (a zxid is proposed once, by one leader).
    private var proposals: [Zxid: [UInt8]] = [:]
    /// Payloads clients submitted.
    private var submitted: Set<[UInt8]> = []
    /// The server that established each epoch.
    private var epochLeaders: [UInt32: Int] = [:]
    private(set) var failures: [String] = []

    mutating func fail(_ message: String) {
        if failures.count < 20 { failures.append(message) }
    }

    mutating func submitted(_ payload: [UInt8]) { submitted.insert(payload) }

    /// A leader proposed `proposal`. Integrity of proposals: it carries a client's txn and its
    /// zxid is new (one leader per epoch, counters never reused).
    mutating func proposed(_ proposal: Proposal, by node: Int, at time: UInt64) {
        if !submitted.contains(proposal.payload) {
            fail("t=\(time) server.\(node) proposed \(proposal.zxid) with a payload no client sent")
        }
        if let earlier = proposals[proposal.zxid], earlier != proposal.payload {
            fail("t=\(time) server.\(node) proposed \(proposal.zxid) again with another txn (two primaries in one epoch?)")
        }
        proposals[proposal.zxid] = proposal.payload
    }

    /// `node` applied `entry` as its store's `index`-th txn, after `previous`.
    ///
    /// Integrity: a leader proposed it. Agreement and total order: position `index` holds the
    /// same txn on every server. Local and global primary order: zxids strictly increase along
    /// the history, so a primary's txns stay in its order and epochs never interleave.
    mutating func applied(_ entry: Proposal, index: Int, previous: Zxid, node: Int, at time: UInt64) {
        if proposals[entry.zxid] != entry.payload {
            fail("t=\(time) server.\(node) applied \(entry.zxid) that no leader proposed with that txn")
        }
        if entry.zxid <= previous {
            fail("t=\(time) server.\(node) applied \(entry.zxid) after \(previous): out of zxid order")
        }
        if index < committed.count {
            if committed[index] != entry {
                fail("t=\(time) server.\(node) applied \(entry.zxid) at position \(index) where another server applied \(committed[index].zxid): agreement broken")
            }
        } else if index == committed.count {
            committed.append(entry)
        } else {
            fail("t=\(time) server.\(node) applied position \(index) past the committed history (\(committed.count)): a gap")
        }
    }

    /// `node` established `epoch` with `history` (its store, then its log). Primary integrity:
    /// a new primary already holds every txn committed before it broadcasts; and one primary
    /// per epoch.
    mutating func established(epoch: UInt32, node: Int, history: [Proposal], at time: UInt64) {
        if let other = epochLeaders[epoch], other != node {
            fail("t=\(time) server.\(node) established epoch \(epoch) that server.\(other) already established")
        }
        epochLeaders[epoch] = node
        if history.count < committed.count || Array(history.prefix(committed.count)) != committed {
            let missing = committed.first { !history.contains($0) }
            fail("t=\(time) server.\(node) leads epoch \(epoch) without the committed txn \(missing.map { "\($0.zxid)" } ?? "order"): primary integrity broken (committed txn lost)")
        }
    }
}
