import KeeperModel

/// What a ZAB server is doing, as the rest of the server needs to know it to route clients.
public enum Role: Hashable, Sendable {
    /// Electing, discovering or synchronizing: serve no client writes.
    case looking
    /// Leading `epoch` in broadcast: accept proposals.
    case leading(epoch: UInt32)
    /// Following `leader` in `epoch`, up to date: forward writes to it.
    case following(leader: ServerID, epoch: UInt32)
    /// Observing `leader` in `epoch`, up to date.
    case observing(leader: ServerID, epoch: UInt32)
}

/// A message that breaks the protocol. The core drops the connection and looks for a leader;
/// the driver logs it. With a correct peer and a FIFO connection it never happens (the
/// simulation fails on it).
public enum ProtocolViolation: Hashable, Sendable, CustomStringConvertible {
    /// A PROPOSAL or INFORM whose zxid is not after the last logged one.
    case proposalOutOfOrder(from: ServerID, got: Zxid, lastLogged: Zxid)
    /// A COMMIT for a zxid the learner never received.
    case commitBeyondLog(from: ServerID, commit: Zxid, lastLogged: Zxid)
    /// TRUNC or SNAP that would drop a txn this server already committed.
    case truncateCommitted(from: ServerID, to: Zxid, committed: Zxid)
    /// DIFF from a zxid that is not our last.
    case diffMismatch(from: ServerID, diff: Zxid, lastLogged: Zxid)
    /// A message that makes no sense in the current phase.
    case unexpected(from: ServerID, message: String, phase: String)

    public var description: String {
        switch self {
        case .proposalOutOfOrder(let from, let got, let last):
            "proposal \(got) from \(from) is not after our last logged zxid \(last)"
        case .commitBeyondLog(let from, let commit, let last):
            "commit \(commit) from \(from) is beyond our last logged zxid \(last)"
        case .truncateCommitted(let from, let to, let committed):
            "\(from) asked us to cut the history to \(to), below our committed zxid \(committed)"
        case .diffMismatch(let from, let diff, let last):
            "DIFF from \(diff) by \(from) does not start at our last logged zxid \(last)"
        case .unexpected(let from, let message, let phase):
            "unexpected \(message) from \(from) while \(phase)"
        }
    }
}

/// What the driver must do, in list order.
///
/// Contract ("persist before you send"): the driver carries out the actions of one returned
/// list in order. `persistAcceptedEpoch`, `persistCurrentEpoch`, `truncateLog` and
/// `installSnapshot` are synchronous: they are durable before the next action runs.
/// `appendLog` is asynchronous (group commit): the driver reports durability later with
/// `ZabCore.logDurable(upTo:)`, and the core sends no ACK and applies no commit for a txn
/// before that report. Before `truncateLog` or `installSnapshot` the driver finishes and
/// reports the appends already in flight.
public enum Action: Hashable, Sendable {
    /// Send a message to a peer (election notifications on the election channel, the rest on
    /// the learner connection).
    case send(to: ServerID, Message)
    /// Close the learner connection with this peer.
    case disconnect(ServerID)
    /// Append these txns to the log, in order, after everything appended before (asynchronous).
    case appendLog([Proposal])
    /// Drop every log entry after this zxid (synchronous and durable).
    case truncateLog(after: Zxid)
    /// Replace the store with the snapshot that came with the SNAP from `from`, whose state is
    /// at `through`, and restart the log after `through` (synchronous and durable).
    case installSnapshot(from: ServerID, through: Zxid)
    /// Record the accepted epoch durably (ZooKeeper's `acceptedEpoch` file).
    case persistAcceptedEpoch(UInt32)
    /// Record the current epoch durably (ZooKeeper's `currentEpoch` file).
    case persistCurrentEpoch(UInt32)
    /// Apply every logged txn up to this zxid to the store, in zxid order. Never beyond what
    /// `logDurable(upTo:)` reported, so the store is never ahead of the log. When the driver
    /// sends a SNAP it attaches the store exactly as of the last `commit` before it.
    case commit(upTo: Zxid)
    /// The role changed; route clients accordingly.
    case roleChanged(Role)
    /// A client `sync` finished: reads on this server now see every write committed before it.
    case syncCompleted(SyncID)
    /// A voter that started `abstaining` synchronized with an established leader: it votes
    /// again; the driver clears the durable mark that made it abstain.
    case recovered
    /// A peer broke the protocol (see `ProtocolViolation`); log it.
    case violation(ProtocolViolation)
    /// `leader` leads an epoch below the one this server already accepted, so this server
    /// cannot follow it (ZAB: an accepted epoch never goes back). Not a violation: a would-be
    /// leader that failed in discovery can leave a learner ahead of the leader elected next.
    /// The core looks again and waits `rejoinBackoffTicks` before following `leader` again;
    /// the driver logs it.
    case leaderEpochBehind(leader: ServerID, leaderEpoch: UInt32, acceptedEpoch: UInt32)
}
