import KeeperModel

/// The state a server reports in an election notification (ZooKeeper's `ServerState`).
public enum PeerState: Hashable, Sendable {
    case looking
    case following
    case leading
    case observing
}

/// A vote: who should lead, and the claim that makes it a good choice.
///
/// Votes are ordered by (`peerEpoch`, `zxid`, `leader`): the candidate with the newest
/// accepted history wins, the highest server id breaks a tie (ZooKeeper's
/// `FastLeaderElection.totalOrderPredicate`).
public struct Vote: Hashable, Sendable, CustomStringConvertible {
    /// The proposed leader.
    public var leader: ServerID
    /// The proposed leader's last logged zxid.
    public var zxid: Zxid
    /// The election round (`logicalclock`) this vote belongs to.
    public var electionEpoch: UInt64
    /// The proposed leader's current epoch (the last epoch whose history it accepted).
    public var peerEpoch: UInt32

    public init(leader: ServerID, zxid: Zxid, electionEpoch: UInt64, peerEpoch: UInt32) {
        self.leader = leader
        self.zxid = zxid
        self.electionEpoch = electionEpoch
        self.peerEpoch = peerEpoch
    }

    /// Whether this vote's candidate beats `other`'s (the election round is not compared).
    public func beats(_ other: Vote) -> Bool {
        if peerEpoch != other.peerEpoch { return peerEpoch > other.peerEpoch }
        if zxid != other.zxid { return zxid > other.zxid }
        return leader > other.leader
    }

    /// Same candidate and same claim, ignoring the round.
    func sameCandidate(_ other: Vote) -> Bool {
        leader == other.leader && zxid == other.zxid && peerEpoch == other.peerEpoch
    }

    public var description: String { "vote(\(leader), \(zxid), round \(electionEpoch), epoch \(peerEpoch))" }
}

/// An election notification: the sender's vote and state (FastLeaderElection's `Notification`).
public struct Notification: Hashable, Sendable {
    public var vote: Vote
    public var state: PeerState
    public init(vote: Vote, state: PeerState) {
        self.vote = vote
        self.state = state
    }
}

/// Every message ZAB servers exchange. The driver maps each to ZooKeeper's election
/// notification or to a `QuorumPacket` of the same name (types in parentheses).
///
/// Election notifications may be lost, duplicated or reordered. Every other message travels on
/// the learner's connection to its leader, which must be FIFO and reliable while it lasts (TCP,
/// as the ZAB paper assumes of its channels); when it breaks, the driver calls
/// `ZabCore.peerDisconnected(_:)` before any message of a new connection from that peer.
public enum Message: Hashable, Sendable {
    /// A FastLeaderElection notification.
    case notification(Notification)
    /// FOLLOWERINFO (11): a follower's accepted epoch (discovery, ZAB phase 1).
    case followerInfo(acceptedEpoch: UInt32)
    /// OBSERVERINFO (16): the same from an observer.
    case observerInfo(acceptedEpoch: UInt32)
    /// LEADERINFO (17): the new epoch the leader proposes.
    case leaderInfo(newEpoch: UInt32)
    /// ACKEPOCH (18): the learner accepted the new epoch; its current epoch and last zxid let
    /// the leader pick the synchronization.
    case ackEpoch(currentEpoch: UInt32, lastZxid: Zxid)
    /// DIFF (13): the learner's log is a prefix of the leader's; PROPOSALs after `lastZxid` follow.
    case diff(lastZxid: Zxid)
    /// TRUNC (14): the learner must drop its log after this zxid; PROPOSALs after it follow.
    case trunc(Zxid)
    /// SNAP (15): the store snapshot at this zxid follows (the driver attaches it), then PROPOSALs.
    case snap(Zxid)
    /// NEWLEADER (10): the end of synchronization for `epoch`; ACK it once the history is durable.
    case newLeader(epoch: UInt32)
    /// UPTODATE (12): a quorum accepted the new leader; serve clients.
    case upToDate
    /// PROPOSAL (2).
    case proposal(Proposal)
    /// ACK (3): everything up to this zxid is durable in the sender's log (ACKs are cumulative
    /// because a log is appended in zxid order). `Zxid(epoch: e, counter: 0)` acknowledges NEWLEADER.
    case ack(Zxid)
    /// COMMIT (4): everything up to this zxid is committed.
    case commit(Zxid)
    /// INFORM (8): a committed txn for an observer.
    case inform(Proposal)
    /// PING (5), both ways: keeps the connection and the quorum alive.
    case ping
    /// REQUEST (1): a learner forwards a client write for the leader to propose.
    case request([UInt8])
    /// SYNC (7): a learner asks the leader to flush (zxid zero); the leader answers with the
    /// zxid the learner must have applied before the client's `sync` completes.
    case sync(SyncID, Zxid)
}
