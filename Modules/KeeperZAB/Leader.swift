import KeeperModel

/// A client `sync` waiting at the leader for `target` to commit.
struct PendingSync: Hashable, Sendable {
    /// The learner that forwarded it, or nil for a client of the leader itself.
    var requester: ServerID?
    var id: SyncID
    var target: Zxid
}

/// The leader's view of one learner (ZooKeeper's LearnerHandler).
struct LearnerHandle: Hashable, Sendable {
    enum Phase: Hashable, Sendable {
        /// FOLLOWERINFO/OBSERVERINFO received; waiting for the new epoch.
        case info(acceptedEpoch: UInt32)
        /// LEADERINFO sent; waiting for ACKEPOCH.
        case epochSent
        /// ACKEPOCH received; waiting to be synchronized.
        case epochAcked(lastZxid: Zxid)
        /// DIFF/TRUNC/SNAP and NEWLEADER sent, the learner's history will end at `end`.
        case syncing(end: Zxid)
        /// NEWLEADER acknowledged: in broadcast, its ACKs count.
        case synced
    }
    var id: ServerID
    var isObserver: Bool
    var phase: Phase
    /// The last zxid the learner reported durable (voters).
    var match: Zxid = .zero
    var lastHeard: UInt64
}

/// The state of a leader, from its election to broadcast (ZooKeeper's `Leader.lead`).
struct LeaderState: Hashable, Sendable {
    enum Phase: Hashable, Sendable {
        /// Collecting FOLLOWERINFO from a quorum to choose the new epoch.
        case discovery
        /// LEADERINFO sent; collecting ACKEPOCH from a quorum.
        case awaitingEpochAcks
        /// Learners synchronized; collecting NEWLEADER ACKs from a quorum.
        case awaitingNewLeaderAcks
        /// Established: proposing.
        case broadcast
    }
    var phase: Phase = .discovery
    /// The tick by which the current establishment phase must finish (`initLimit`).
    var deadline: UInt64 = 0
    /// The new epoch, once chosen.
    var epoch: UInt32 = 0
    /// Learners by id, sorted so that actions come out in a reproducible order.
    var learners: [LearnerHandle] = []
    /// The last zxid of the history this leader brings into its epoch.
    var initialHistoryEnd: Zxid = .zero
    var pendingSyncs: [PendingSync] = []

    func index(of id: ServerID) -> Int? { learners.firstIndex { $0.id == id } }

    mutating func removeLearner(_ id: ServerID) {
        learners.removeAll { $0.id == id }
    }

    mutating func upsert(_ handle: LearnerHandle) {
        if let index = index(of: handle.id) {
            learners[index] = handle
        } else {
            learners.append(handle)
            learners.sort { $0.id < $1.id }
        }
    }
}

extension ZabCore {
    mutating func becomeLeader(_ actions: inout [Action]) {
        mode = .leading
        leading = LeaderState()
        leading.deadline = now + UInt64(config.initLimit)
        checkDiscovery(&actions)
    }

    /// Voters (we included) whose learner handle satisfies `predicate`.
    func voterCount(_ predicate: (LearnerHandle) -> Bool) -> Int {
        1 + leading.learners.reduce(0) { $0 + (!$1.isObserver && predicate($1) ? 1 : 0) }
    }

    // MARK: Discovery (ZAB phase 1)

    /// A quorum sent its accepted epoch: choose a new epoch above all of them.
    mutating func checkDiscovery(_ actions: inout [Action]) {
        guard leading.phase == .discovery else { return }
        let informed = voterCount { if case .info = $0.phase { true } else { false } }
        guard informed >= config.quorumSize else { return }
        var highest = acceptedEpoch
        for learner in leading.learners {
            if case .info(let epoch) = learner.phase { highest = max(highest, epoch) }
        }
        precondition(highest < UInt32.max, "the epoch space is exhausted")
        let epoch = highest + 1
        leading.epoch = epoch
        acceptedEpoch = epoch
        actions.append(.persistAcceptedEpoch(epoch))
        for index in leading.learners.indices {
            if case .info = leading.learners[index].phase {
                leading.learners[index].phase = .epochSent
                actions.append(.send(to: leading.learners[index].id, .leaderInfo(newEpoch: epoch)))
            }
        }
        leading.phase = .awaitingEpochAcks
        leading.deadline = now + UInt64(config.initLimit)
        checkEpochAcks(&actions)
    }

    /// A quorum accepted the epoch and our history is durable: record the epoch as current and
    /// synchronize the followers.
    mutating func checkEpochAcks(_ actions: inout [Action]) {
        guard leading.phase == .awaitingEpochAcks else { return }
        let acked = voterCount { if case .epochAcked = $0.phase { true } else { false } }
        guard acked >= config.quorumSize, durableZxid == history.last else { return }
        currentEpoch = leading.epoch
        actions.append(.persistCurrentEpoch(leading.epoch))
        leading.initialHistoryEnd = history.last
        leading.phase = .awaitingNewLeaderAcks
        leading.deadline = now + UInt64(config.initLimit)
        for index in leading.learners.indices where !leading.learners[index].isObserver {
            if case .epochAcked = leading.learners[index].phase { synchronize(index, &actions) }
        }
        checkNewLeaderAcks(&actions)
    }

    // MARK: Synchronization (ZAB phase 2)

    /// Sends a learner what it lacks: DIFF, TRUNC then DIFF, or SNAP, then NEWLEADER
    /// (ZooKeeper's `LearnerHandler.syncFollower`).
    mutating func synchronize(_ index: Int, _ actions: inout [Action]) {
        let learner = leading.learners[index]
        guard case .epochAcked(let theirs) = learner.phase else {
            preconditionFailure("synchronize \(learner.id) in phase \(learner.phase)")
        }
        // Observers only ever see committed txns.
        let end = learner.isObserver ? committedZxid : history.last
        let from: Zxid
        if theirs == end || (theirs < end && history.contains(theirs)) {
            // Their log is a prefix of ours.
            from = theirs
            actions.append(.send(to: learner.id, .diff(lastZxid: theirs)))
        } else if theirs > history.base, let point = truncationPoint(theirs, end: end) {
            // They hold txns we do not have, after a point we share.
            from = point
            actions.append(.send(to: learner.id, .trunc(point)))
        } else {
            // Too far behind for the history in memory, or no safe point: a snapshot of the store.
            from = appliedZxid
            actions.append(.send(to: learner.id, .snap(appliedZxid)))
        }
        for entry in history.entries(after: from, through: end) {
            actions.append(.send(to: learner.id, .proposal(entry)))
        }
        let committed = min(committedZxid, end)
        if committed > .zero { actions.append(.send(to: learner.id, .commit(committed))) }
        actions.append(.send(to: learner.id, .newLeader(epoch: leading.epoch)))
        leading.learners[index].phase = .syncing(end: end)
        leading.learners[index].lastHeard = now
    }

    /// Where a learner whose last zxid is `theirs` (not in our history) can cut its log and
    /// still hold a prefix of ours: our largest zxid below theirs, if it is in the same epoch
    /// as theirs (their epoch's txns are one leader's stream, so they hold every txn of it
    /// before `theirs`). Across an epoch boundary they may lack our txns: nil, send a SNAP
    /// (ZooKeeper refuses a TRUNC across epochs too).
    func truncationPoint(_ theirs: Zxid, end: Zxid) -> Zxid? {
        let point = theirs > end ? end : history.largest(below: theirs)
        guard point >= history.base, point.epoch == theirs.epoch else {
            return nil
        }
        return point
    }

    /// A quorum holds our history durably and recorded our epoch: it is committed; serve.
    mutating func checkNewLeaderAcks(_ actions: inout [Action]) {
        guard leading.phase == .awaitingNewLeaderAcks else { return }
        let synced = voterCount { $0.phase == .synced }
        guard synced >= config.quorumSize else { return }
        leading.phase = .broadcast
        // Peers that look for the leader later compare leader and epoch (`agree`).
        currentVote.peerEpoch = leading.epoch
        committedZxid = max(committedZxid, leading.initialHistoryEnd)
        actions.append(.roleChanged(.leading(epoch: leading.epoch)))
        applyCommits(&actions)
        for index in leading.learners.indices {
            switch leading.learners[index].phase {
            case .synced:
                actions.append(.send(to: leading.learners[index].id, .upToDate))
                actions.append(.send(to: leading.learners[index].id, .commit(committedZxid)))
            case .epochAcked:
                synchronize(index, &actions)
            case .info, .epochSent, .syncing:
                break
            }
        }
    }

    // MARK: Messages

    mutating func leaderReceive(_ message: Message, from peer: ServerID, _ actions: inout [Action]) {
        let isObserver = config.observers.contains(peer)
        if let index = leading.index(of: peer) { leading.learners[index].lastHeard = now }
        switch message {
        case .followerInfo(let epoch), .observerInfo(let epoch):
            let claimsObserver: Bool = if case .observerInfo = message { true } else { false }
            guard claimsObserver == isObserver else {
                actions.append(.violation(.unexpected(from: peer, message: "\(message)", phase: "leading")))
                actions.append(.disconnect(peer))
                return
            }
            var handle = LearnerHandle(id: peer, isObserver: isObserver, phase: .info(acceptedEpoch: epoch), lastHeard: now)
            if leading.phase != .discovery {
                handle.phase = .epochSent
                actions.append(.send(to: peer, .leaderInfo(newEpoch: leading.epoch)))
            }
            leading.upsert(handle)
            checkDiscovery(&actions)

        case .ackEpoch(let theirEpoch, let theirZxid):
            guard let index = leading.index(of: peer), leading.learners[index].phase == .epochSent else {
                return unexpectedFromLearner(peer, message, &actions)
            }
            if leading.phase == .awaitingEpochAcks && !isObserver
                && (theirEpoch, theirZxid.rawValue) > (currentEpoch, history.last.rawValue) {
                // A quorum member accepted a newer history than ours: we must not lead.
                startLooking(&actions, leaving: true)
                return
            }
            leading.learners[index].phase = .epochAcked(lastZxid: theirZxid)
            switch leading.phase {
            case .discovery:
                preconditionFailure("ACKEPOCH before the epoch was chosen")
            case .awaitingEpochAcks:
                checkEpochAcks(&actions)
            case .awaitingNewLeaderAcks:
                if !isObserver { synchronize(index, &actions) }
            case .broadcast:
                synchronize(index, &actions)
            }

        case .ack(let zxid):
            guard let index = leading.index(of: peer) else { return }
            switch leading.learners[index].phase {
            case .syncing(let end):
                guard zxid == Zxid(epoch: leading.epoch, counter: 0) else {
                    return unexpectedFromLearner(peer, message, &actions)
                }
                leading.learners[index].phase = .synced
                leading.learners[index].match = end
                if leading.phase == .broadcast {
                    actions.append(.send(to: peer, .upToDate))
                    actions.append(.send(to: peer, .commit(committedZxid)))
                    recomputeCommit(&actions)
                } else {
                    checkNewLeaderAcks(&actions)
                }
            case .synced:
                guard !isObserver else { return }
                guard zxid <= history.last else { return unexpectedFromLearner(peer, message, &actions) }
                if zxid > leading.learners[index].match {
                    leading.learners[index].match = zxid
                    recomputeCommit(&actions)
                }
            case .info, .epochSent, .epochAcked:
                unexpectedFromLearner(peer, message, &actions)
            }

        case .ping:
            break

        case .request(let payload):
            // Over the limit the request is dropped; the client's request times out.
            guard leading.phase == .broadcast, outstandingProposals < config.maxOutstandingProposals else { return }
            guard let zxid = nextZxid else {
                // The epoch's counter is used up: force a new epoch (see `propose`).
                startLooking(&actions, leaving: true)
                return
            }
            leaderPropose(Proposal(zxid: zxid, payload: payload), &actions)

        case .sync(let id, _):
            guard leading.phase == .broadcast, leading.index(of: peer) != nil else { return }
            leading.pendingSyncs.append(PendingSync(requester: peer, id: id, target: history.last))
            completeLeaderSyncs(&actions)

        case .notification:
            preconditionFailure("notifications are handled by the election")

        case .leaderInfo, .diff, .trunc, .snap, .newLeader, .upToDate, .proposal, .commit, .inform:
            unexpectedFromLearner(peer, message, &actions)
        }
    }

    mutating func unexpectedFromLearner(_ peer: ServerID, _ message: Message, _ actions: inout [Action]) {
        actions.append(.violation(.unexpected(from: peer, message: "\(message)", phase: "leading \(leading.phase)")))
        leading.removeLearner(peer)
        actions.append(.disconnect(peer))
    }

    // MARK: Broadcast (ZAB phase 3)

    mutating func leaderPropose(_ proposal: Proposal, _ actions: inout [Action]) {
        appendEntry(proposal, &actions)
        for learner in leading.learners where !learner.isObserver {
            switch learner.phase {
            case .syncing, .synced:
                actions.append(.send(to: learner.id, .proposal(proposal)))
            case .info, .epochSent, .epochAcked:
                break
            }
        }
    }

    mutating func leaderDurable(_ actions: inout [Action]) {
        switch leading.phase {
        case .discovery: break
        case .awaitingEpochAcks: checkEpochAcks(&actions)
        case .awaitingNewLeaderAcks: checkNewLeaderAcks(&actions)
        case .broadcast: recomputeCommit(&actions)
        }
    }

    /// Commits the highest zxid a quorum of voters holds durably (we count once our own log is).
    mutating func recomputeCommit(_ actions: inout [Action]) {
        guard leading.phase == .broadcast else { return }
        var durable: [Zxid] = [durableZxid]
        for learner in leading.learners where !learner.isObserver && learner.phase == .synced {
            durable.append(learner.match)
        }
        guard durable.count >= config.quorumSize else { return }
        durable.sort(by: >)
        let candidate = durable[config.quorumSize - 1]
        guard candidate > committedZxid else { return }
        let previous = committedZxid
        committedZxid = candidate
        for learner in leading.learners {
            switch learner.phase {
            case .syncing, .synced:
                if learner.isObserver {
                    for entry in history.entries(after: previous, through: candidate) {
                        actions.append(.send(to: learner.id, .inform(entry)))
                    }
                } else {
                    actions.append(.send(to: learner.id, .commit(candidate)))
                }
            case .info, .epochSent, .epochAcked:
                break
            }
        }
        applyCommits(&actions)
        completeLeaderSyncs(&actions)
    }

    mutating func completeLeaderSyncs(_ actions: inout [Action]) {
        guard !leading.pendingSyncs.isEmpty else { return }
        var waiting: [PendingSync] = []
        for sync in leading.pendingSyncs {
            if let requester = sync.requester {
                if committedZxid >= sync.target {
                    actions.append(.send(to: requester, .sync(sync.id, sync.target)))
                } else {
                    waiting.append(sync)
                }
            } else if appliedZxid >= sync.target {
                actions.append(.syncCompleted(sync.id))
            } else {
                waiting.append(sync)
            }
        }
        leading.pendingSyncs = waiting
    }

    mutating func leaderTick(_ actions: inout [Action]) {
        if leading.phase != .broadcast && now > leading.deadline {
            // initLimit passed without a quorum for this step of establishment.
            startLooking(&actions, leaving: true)
            return
        }
        var index = 0
        while index < leading.learners.count {
            let learner = leading.learners[index]
            let limit = learner.phase == .synced && leading.phase == .broadcast ? config.syncLimit : config.initLimit
            if now - learner.lastHeard > UInt64(limit) {
                actions.append(.disconnect(learner.id))
                leading.learners.remove(at: index)
            } else {
                index += 1
            }
        }
        if leading.phase == .broadcast && voterCount({ $0.phase == .synced }) < config.quorumSize {
            // Lost the quorum for syncLimit: step down (ZooKeeper: "Not sufficient followers synced").
            startLooking(&actions, leaving: true)
            return
        }
        for learner in leading.learners { actions.append(.send(to: learner.id, .ping)) }
    }
}
