import KeeperModel

/// What a server holds durably when its core starts: the epochs, the tail of its log and how
/// far its store has applied. The driver reads it from the epoch files, the log and the store.
public struct ZabDurableState: Hashable, Sendable {
    /// ZooKeeper's `acceptedEpoch`: the last epoch this server promised to follow (LEADERINFO).
    public var acceptedEpoch: UInt32
    /// ZooKeeper's `currentEpoch`: the last epoch whose history this server accepted (NEWLEADER).
    public var currentEpoch: UInt32
    /// The log's tail: at least every entry after `applied` (more lets learners DIFF).
    public var history: History
    /// The store's last applied zxid (its snapshot point).
    public var applied: Zxid

    public init(acceptedEpoch: UInt32, currentEpoch: UInt32, history: History, applied: Zxid) {
        precondition(currentEpoch <= acceptedEpoch, "currentEpoch \(currentEpoch) is after acceptedEpoch \(acceptedEpoch)")
        precondition(history.base <= applied && applied <= history.last,
                     "the log tail (\(history.base), \(history.last)] must cover the store's applied zxid \(applied) and everything after it")
        self.acceptedEpoch = acceptedEpoch
        self.currentEpoch = currentEpoch
        self.history = history
        self.applied = applied
    }

    /// A server that never wrote anything.
    public static let empty = ZabDurableState(
        acceptedEpoch: 0, currentEpoch: 0, history: History(base: .zero, entries: []), applied: .zero)
}

/// Why `ZabCore.propose(_:)` refused a txn.
public enum ProposeError: Error, Hashable, Sendable {
    /// Only a leader in broadcast proposes; forward the write to `role`'s leader or fail it.
    case notLeader(Role)
    /// The epoch's 32-bit counter is used up: the leader stepped down to force a new epoch
    /// (as ZooKeeper does on rollover). Carry out `actions`, then retry on the next leader.
    case zxidCounterExhausted(actions: [Action])
    /// `maxOutstandingProposals` txns are already in flight: slow the clients down.
    case tooManyOutstanding(limit: Int)
}

/// The ZAB replication core: a pure, deterministic state machine.
///
/// It owns no socket, thread, clock or file. The driver feeds it messages (`step`), time
/// (`tick`), client writes (`propose`) and storage events (`logDurable`), and carries out the
/// returned actions in order (see `Action` for the contract). The same inputs always give the
/// same outputs, which is what lets the simulation replay a failing seed exactly.
///
/// Phases (ZAB paper: Junqueira, Reed, Serafini, "Zab: High-performance broadcast for
/// primary-backup systems", DSN 2011, phases 1 to 3; ZooKeeper's FastLeaderElection, Leader,
/// LearnerHandler, Learner; the module's KeeperZAB.swift maps each to its sources):
/// - election: FastLeaderElection votes ordered by (current epoch, last zxid, server id).
/// - discovery (phase 1): FOLLOWERINFO, LEADERINFO with a new epoch above every accepted epoch
///   of a quorum, ACKEPOCH; a leader that finds a quorum member ahead of it abdicates.
/// - synchronization (phase 2): per learner DIFF, TRUNC then DIFF, or SNAP, then NEWLEADER;
///   the learner makes the history durable, records the current epoch, ACKs; a quorum of ACKs
///   commits the new leader's whole history and UPTODATE lets learners serve.
/// - broadcast (phase 3): PROPOSAL, ACK after the learner's log is durable, COMMIT on a quorum,
///   INFORM to observers; PING both ways; `syncLimit` without a quorum makes the leader step down.
///
/// Invariants the core keeps (checked by preconditions and by the simulation):
/// - applied <= durable <= last logged, and applied <= committed: the store never holds a txn
///   the log could lose, nor one that is not committed.
/// - A learner only appends zxids after its last, so a log is a prefix of some leader's history.
/// - currentEpoch is persisted only after the history it vouches for is durable.
/// - A leader commits in its own epoch only by quorum of durable ACKs, older txns only by a
///   quorum accepting NEWLEADER.
public struct ZabCore: Sendable {
    enum Mode: Hashable, Sendable {
        case looking
        case leading
        case learning
    }

    /// This server's configuration.
    public let config: ZabConfig
    let votersSorted: [ServerID]
    let peersSorted: [ServerID]

    /// The last epoch promised to a leader (mirrors what the driver persisted).
    public internal(set) var acceptedEpoch: UInt32
    /// The last epoch whose history was accepted (mirrors what the driver persisted).
    public internal(set) var currentEpoch: UInt32
    /// The in-memory tail of the log.
    public internal(set) var history: History
    /// The last zxid the driver reported durable in the log.
    public internal(set) var durableZxid: Zxid
    /// The last zxid known to be committed by a quorum.
    public internal(set) var committedZxid: Zxid
    /// The last zxid handed to the store with `.commit(upTo:)`.
    public internal(set) var appliedZxid: Zxid
    /// Ticks since start.
    public internal(set) var now: UInt64 = 0
    /// The election round (`logicalclock`).
    public internal(set) var electionRound: UInt64 = 0
    /// The vote this server proposes (looking) or followed (otherwise).
    public internal(set) var currentVote: Vote

    var mode: Mode = .looking
    /// A voter that lost its data (a damaged log or store was moved aside) takes no part in
    /// elections until it has synchronized with an established leader once: its empty history
    /// must never help a quorum elect a leader that lacks txns it had acknowledged
    /// (protocol-aware recovery; Alagappan et al., FAST'18). It still follows, and its ACKs
    /// count once it holds the leader's history.
    public internal(set) var abstaining = false
    /// Whether this server's vote counts in elections now.
    var votes: Bool { !config.isObserver && !abstaining }
    var election: ElectionState
    var leading = LeaderState()
    var learning = LearnerState(leader: ServerID(0), isObserver: false, lastHeard: 0)
    var started = false
    /// A leader that refused us for leading an older epoch than we accepted, and the tick
    /// before which we do not follow it again.
    var refusedLeader: (leader: ServerID, until: UInt64)?

    /// Builds a core from what the server has on disk. Call `start()` next.
    public init(config: ZabConfig, durable: ZabDurableState) {
        self.config = config
        self.votersSorted = config.voters.sorted()
        self.peersSorted = config.peers
        self.acceptedEpoch = durable.acceptedEpoch
        self.currentEpoch = durable.currentEpoch
        self.history = durable.history
        self.durableZxid = durable.history.last
        self.committedZxid = durable.applied
        self.appliedZxid = durable.applied
        self.history.trim(keepAfter: durable.applied, maxEntries: config.maxDiffEntries)
        let vote = Vote(leader: config.myID, zxid: durable.history.last, electionEpoch: 0, peerEpoch: durable.currentEpoch)
        self.currentVote = vote
        self.election = ElectionState(proposal: vote)
    }

    /// Whether the server is in an election (neither leading, even in discovery, nor
    /// following a chosen leader).
    public var isElecting: Bool { mode == .looking }

    /// The role as clients should see it.
    public var role: Role {
        switch mode {
        case .looking:
            return .looking
        case .leading:
            return leading.phase == .broadcast ? .leading(epoch: leading.epoch) : .looking
        case .learning:
            guard case .broadcast(let epoch) = learning.phase else { return .looking }
            return learning.isObserver
                ? .observing(leader: learning.leader, epoch: epoch)
                : .following(leader: learning.leader, epoch: epoch)
        }
    }

    /// The zxid the next `propose` will get, if this server is a leader in broadcast.
    public var nextZxid: Zxid? {
        guard mode == .leading, leading.phase == .broadcast else { return nil }
        let last = history.last
        if last.epoch < leading.epoch { return Zxid(epoch: leading.epoch, counter: 1) }
        guard let next = last.next, next.counter != UInt32.max else { return nil }
        return next
    }

    /// Txns proposed (or received) and not yet known committed.
    public var outstandingProposals: Int {
        history.entries.count - history.firstIndex(after: max(committedZxid, history.base))
    }

    /// `nextZxid` and `outstandingProposals` for a driver's per-write path. It is `mutating`
    /// (it changes nothing) so that a driver keeping the core in a class property calls it in
    /// place: a getter called across modules on a class's stored struct runs on a copy of the
    /// whole core (its retains and releases were 4% of a leader's replica thread).
    public mutating func proposalSlot() -> (next: Zxid?, outstanding: Int) {
        (nextZxid, outstandingProposals)
    }

    /// Starts the first election. Call once, before anything else. `abstaining`: this voter
    /// recovers from lost data and must not vote before it synchronized once (see
    /// `abstaining`); `.recovered` follows when it may vote again.
    public mutating func start(abstaining: Bool = false) -> [Action] {
        precondition(!started, "ZabCore.start() called twice")
        self.abstaining = abstaining && !config.isObserver
        started = true
        var actions: [Action] = []
        startLooking(&actions, leaving: false)
        return actions
    }

    /// A message from a peer.
    public mutating func step(_ message: Message, from peer: ServerID) -> [Action] {
        precondition(started, "ZabCore.step before start()")
        precondition(peer != config.myID, "a message from ourselves")
        guard config.voters.contains(peer) || config.observers.contains(peer) else { return [] }
        var actions: [Action] = []
        if case .notification(let notification) = message {
            receiveNotification(notification, from: peer, &actions)
            return actions
        }
        switch mode {
        case .looking:
            switch message {
            case .followerInfo, .observerInfo:
                // Nobody leads here: fail the learner fast instead of letting it wait initLimit.
                actions.append(.disconnect(peer))
            case .notification, .leaderInfo, .ackEpoch, .diff, .trunc, .snap, .newLeader, .upToDate,
                 .proposal, .ack, .commit, .inform, .ping, .request, .sync:
                break
            }
        case .leading:
            leaderReceive(message, from: peer, &actions)
        case .learning:
            learnerReceive(message, from: peer, &actions)
        }
        return actions
    }

    /// One `tickTime` passed.
    public mutating func tick() -> [Action] {
        precondition(started, "ZabCore.tick before start()")
        now += 1
        var actions: [Action] = []
        switch mode {
        case .looking: electionTick(&actions)
        case .leading: leaderTick(&actions)
        case .learning: learnerTick(&actions)
        }
        return actions
    }

    /// The log is durable up to `zxid` (every `appendLog` up to it reached the disk).
    public mutating func logDurable(upTo zxid: Zxid) -> [Action] {
        precondition(started, "ZabCore.logDurable before start()")
        var actions: [Action] = []
        let capped = min(zxid, history.last)
        guard capped > durableZxid else { return actions }
        durableZxid = capped
        switch mode {
        case .looking: break
        case .leading: leaderDurable(&actions)
        case .learning: learnerDurable(&actions)
        }
        applyCommits(&actions)
        return actions
    }

    /// The connection with `peer` broke (or the driver closed it).
    public mutating func peerDisconnected(_ peer: ServerID) -> [Action] {
        precondition(started, "ZabCore.peerDisconnected before start()")
        var actions: [Action] = []
        switch mode {
        case .looking: break
        case .leading: leading.removeLearner(peer)
        case .learning:
            if peer == learning.leader { startLooking(&actions, leaving: true) }
        }
        return actions
    }

    /// Proposes a txn (leader in broadcast only): the core assigns its zxid, logs it and sends
    /// it to the followers. The txn is committed when a later `.commit(upTo:)` covers the zxid.
    public mutating func propose(_ payload: [UInt8]) throws(ProposeError) -> (zxid: Zxid, actions: [Action]) {
        precondition(started, "ZabCore.propose before start()")
        guard mode == .leading, leading.phase == .broadcast else { throw .notLeader(role) }
        guard outstandingProposals < config.maxOutstandingProposals else {
            throw .tooManyOutstanding(limit: config.maxOutstandingProposals)
        }
        guard let zxid = nextZxid else {
            var actions: [Action] = []
            startLooking(&actions, leaving: true)
            throw .zxidCounterExhausted(actions: actions)
        }
        var actions: [Action] = []
        leaderPropose(Proposal(zxid: zxid, payload: payload), &actions)
        return (zxid, actions)
    }

    /// A client write arrived at a learner: forward it to the leader (REQUEST). Returns no
    /// action when there is no leader to forward to; the server then fails the request.
    public mutating func forward(_ payload: [UInt8]) -> [Action] {
        guard mode == .learning, case .broadcast = learning.phase else { return [] }
        return [.send(to: learning.leader, .request(payload))]
    }

    /// A client `sync`: `.syncCompleted(id)` follows once this server has applied every txn
    /// the leader had proposed when it saw the sync. Returns nil when this server serves no
    /// clients now (fail the request).
    public mutating func requestSync(_ id: SyncID) -> [Action]? {
        switch role {
        case .looking:
            return nil
        case .leading:
            var actions: [Action] = []
            leading.pendingSyncs.append(PendingSync(requester: nil, id: id, target: history.last))
            completeLeaderSyncs(&actions)
            return actions
        case .following, .observing:
            return [.send(to: learning.leader, .sync(id, .zero))]
        }
    }

    // MARK: Shared

    /// Hands newly committed and durable txns to the store, and forgets old history.
    mutating func applyCommits(_ actions: inout [Action]) {
        let target = min(committedZxid, durableZxid)
        guard target > appliedZxid else { return }
        appliedZxid = target
        actions.append(.commit(upTo: target))
        history.trim(keepAfter: appliedZxid, maxEntries: config.maxDiffEntries)
        switch mode {
        case .looking: break
        case .leading: completeLeaderSyncs(&actions)
        case .learning: completeLearnerSyncs(&actions)
        }
    }

    /// Appends a txn to the in-memory history and the log.
    mutating func appendEntry(_ proposal: Proposal, _ actions: inout [Action]) {
        history.append(proposal)
        actions.append(.appendLog([proposal]))
    }

    mutating func violation(_ problem: ProtocolViolation, _ actions: inout [Action]) {
        actions.append(.violation(problem))
        startLooking(&actions, leaving: true)
    }
}

extension ZabCore {
    /// The learners a leader has, and whether each is synchronized (in broadcast) and an
    /// observer: what `mntr` reports as followers and synced followers. Empty unless leading.
    public var learnerStatus: [(id: ServerID, synced: Bool, observer: Bool)] {
        guard mode == .leading else { return [] }
        return leading.learners.map { ($0.id, $0.phase == .synced, config.observers.contains($0.id)) }
    }
}
