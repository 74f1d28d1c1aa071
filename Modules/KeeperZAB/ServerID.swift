import KeeperModel

/// A server's id in the ensemble: ZooKeeper's `myid` (`server.N` in zoo.cfg).
///
/// Votes break ties on it (the higher id wins, ZooKeeper's FastLeaderElection), so it is
/// ordered.
public struct ServerID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }
    @inlinable public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    @inlinable public static func < (lhs: ServerID, rhs: ServerID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "server.\(rawValue)" }
}

/// The static configuration of one ZAB core: who votes, who observes, and the timeouts.
///
/// Timeouts are counted in calls to `ZabCore.tick()`; the driver calls `tick()` once per
/// ZooKeeper `tickTime`, so `initLimit` and `syncLimit` mean exactly what they mean in zoo.cfg
/// (ZooKeeper Administrator's Guide, "Cluster Options").
public struct ZabConfig: Hashable, Sendable {
    /// This server.
    public var myID: ServerID
    /// The participants: they vote in elections and their ACKs make a quorum.
    public var voters: Set<ServerID>
    /// Observers learn committed txns (INFORM) but never vote and never count in a quorum.
    public var observers: Set<ServerID>
    /// `initLimit`: ticks a learner may take to connect and synchronize with a leader, and a
    /// new leader may wait for each step of discovery and synchronization.
    public var initLimit: Int = 10
    /// `syncLimit`: ticks a follower may go unheard in broadcast before the leader drops it, and
    /// a learner may go without a message from the leader before it looks for a new one.
    public var syncLimit: Int = 5
    /// Ticks between re-sends of our vote while no leader is found (FastLeaderElection re-sends
    /// when its notification timeout expires).
    public var electionResendTicks: Int = 1
    /// Ticks a learner waits before following again a leader whose epoch was below its
    /// accepted epoch (`Action.leaderEpochBehind`). Without the wait, the rest of the ensemble
    /// answering our vote with "we follow that leader" makes the learner rejoin and be refused
    /// again at the speed of the network.
    public var rejoinBackoffTicks: Int = 5
    /// `commitLogCount`: committed txns the core keeps in memory to bring a learner up to date
    /// by DIFF; a learner further behind gets a SNAP (ZooKeeper keeps 500).
    public var maxDiffEntries: Int = 500
    /// Proposals the leader keeps in flight (proposed, not yet committed) before it refuses
    /// more: the bound on the uncommitted history in memory (ZooKeeper's
    /// `globalOutstandingLimit`, 1000).
    public var maxOutstandingProposals: Int = 1000

    public init(myID: ServerID, voters: Set<ServerID>, observers: Set<ServerID> = []) {
        precondition(voters.isDisjoint(with: observers), "a server is either a voter or an observer")
        precondition(voters.contains(myID) || observers.contains(myID), "myID \(myID) is not in the ensemble")
        precondition(!voters.isEmpty, "an ensemble needs at least one voter")
        self.myID = myID
        self.voters = voters
        self.observers = observers
    }

    /// Votes that make a quorum: a strict majority of the voters (ZooKeeper's QuorumMaj).
    public var quorumSize: Int { voters.count / 2 + 1 }
    /// Whether this server is an observer.
    public var isObserver: Bool { observers.contains(myID) }
    /// Every other server.
    public var peers: [ServerID] { (voters.union(observers)).subtracting([myID]).sorted() }
}
