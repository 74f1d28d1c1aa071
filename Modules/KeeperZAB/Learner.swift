import KeeperModel

/// A client sync the leader answered: complete it once the store reaches `target`.
struct LearnerSync: Hashable, Sendable {
    var id: SyncID
    var target: Zxid
}

/// The state of a follower or observer, from its election to broadcast (ZooKeeper's
/// `Learner.registerWithLeader` and `syncWithLeader`).
struct LearnerState: Hashable, Sendable {
    enum Phase: Hashable, Sendable {
        /// FOLLOWERINFO/OBSERVERINFO sent; waiting for LEADERINFO.
        case connecting
        /// ACKEPOCH sent for this epoch; waiting for DIFF/TRUNC/SNAP.
        case epochAcked(UInt32)
        /// Receiving the history.
        case syncing(UInt32)
        /// NEWLEADER received; waiting for the history to be durable before the ACK.
        case awaitingDurable(UInt32)
        /// NEWLEADER acknowledged; waiting for UPTODATE.
        case newLeaderAcked(UInt32)
        /// Up to date: serving.
        case broadcast(UInt32)
    }
    var leader: ServerID
    var isObserver: Bool
    var phase: Phase = .connecting
    var lastHeard: UInt64
    /// The last zxid we ACKed.
    var lastAcked: Zxid = .zero
    /// Client syncs answered by the leader, waiting for our store to reach their zxid.
    var pendingSyncs: [LearnerSync] = []

    init(leader: ServerID, isObserver: Bool, lastHeard: UInt64) {
        self.leader = leader
        self.isObserver = isObserver
        self.lastHeard = lastHeard
    }

    var inSync: Bool {
        switch phase {
        case .connecting, .epochAcked: false
        case .syncing, .awaitingDurable, .newLeaderAcked, .broadcast: true
        }
    }

    var acksProposals: Bool {
        switch phase {
        case .connecting, .epochAcked, .syncing, .awaitingDurable: false
        case .newLeaderAcked, .broadcast: true
        }
    }
}

extension ZabCore {
    mutating func becomeLearner(of leader: ServerID, _ actions: inout [Action]) {
        mode = .learning
        learning = LearnerState(leader: leader, isObserver: config.isObserver, lastHeard: now)
        let info: Message = config.isObserver
            ? .observerInfo(acceptedEpoch: acceptedEpoch) : .followerInfo(acceptedEpoch: acceptedEpoch)
        actions.append(.send(to: leader, info))
    }

    mutating func learnerReceive(_ message: Message, from peer: ServerID, _ actions: inout [Action]) {
        guard peer == learning.leader else {
            // Not our leader. A learner that thinks we lead gets a prompt refusal.
            switch message {
            case .followerInfo, .observerInfo: actions.append(.disconnect(peer))
            case .notification, .leaderInfo, .ackEpoch, .diff, .trunc, .snap, .newLeader, .upToDate,
                 .proposal, .ack, .commit, .inform, .ping, .request, .sync:
                break
            }
            return
        }
        learning.lastHeard = now
        let phase = learning.phase
        switch message {
        case .followerInfo, .observerInfo:
            // The server we follow follows someone else: the election went stale (delayed
            // notifications). Look again rather than wait initLimit.
            startLooking(&actions, leaving: true)

        case .leaderInfo(let epoch):
            guard phase == .connecting else { return unexpectedFromLeader(message, &actions) }
            if epoch < acceptedEpoch {
                // A leader of an epoch we already left behind (a would-be leader of a later
                // epoch failed in discovery after we promised it). We can never follow this
                // leader; look again, and give the next election time to replace it.
                actions.append(.leaderEpochBehind(leader: peer, leaderEpoch: epoch, acceptedEpoch: acceptedEpoch))
                refusedLeader = (peer, now + UInt64(config.rejoinBackoffTicks))
                startLooking(&actions, leaving: true)
                return
            }
            if epoch > acceptedEpoch {
                acceptedEpoch = epoch
                actions.append(.persistAcceptedEpoch(epoch))
            }
            learning.phase = .epochAcked(epoch)
            actions.append(.send(to: peer, .ackEpoch(currentEpoch: currentEpoch, lastZxid: history.last)))

        case .diff(let zxid):
            guard case .epochAcked(let epoch) = phase else { return unexpectedFromLeader(message, &actions) }
            guard zxid == history.last else {
                return violation(.diffMismatch(from: peer, diff: zxid, lastLogged: history.last), &actions)
            }
            learning.phase = .syncing(epoch)

        case .trunc(let zxid):
            guard case .epochAcked(let epoch) = phase else { return unexpectedFromLeader(message, &actions) }
            guard zxid >= committedZxid, zxid >= history.base else {
                return violation(.truncateCommitted(from: peer, to: zxid, committed: committedZxid), &actions)
            }
            if zxid < history.last {
                history.truncate(after: zxid)
                durableZxid = min(durableZxid, zxid)
                actions.append(.truncateLog(after: zxid))
            }
            learning.phase = .syncing(epoch)

        case .snap(let zxid):
            guard case .epochAcked(let epoch) = phase else { return unexpectedFromLeader(message, &actions) }
            // The snapshot may be older than what we applied: a leader not yet established
            // only knows its own commit point. It is a committed prefix of the same history
            // (agreement), and the txns after it follow as PROPOSALs, so nothing is lost; the
            // store goes back while we serve no client.
            actions.append(.installSnapshot(from: peer, through: zxid))
            history.reset(base: zxid)
            durableZxid = zxid
            committedZxid = zxid
            appliedZxid = zxid
            learning.phase = .syncing(epoch)

        case .proposal(let proposal):
            guard learning.inSync else { return unexpectedFromLeader(message, &actions) }
            guard proposal.zxid > history.last else {
                return violation(.proposalOutOfOrder(from: peer, got: proposal.zxid, lastLogged: history.last), &actions)
            }
            appendEntry(proposal, &actions)

        case .inform(let proposal):
            guard learning.inSync, learning.isObserver else { return unexpectedFromLeader(message, &actions) }
            guard proposal.zxid > history.last else {
                return violation(.proposalOutOfOrder(from: peer, got: proposal.zxid, lastLogged: history.last), &actions)
            }
            appendEntry(proposal, &actions)
            committedZxid = proposal.zxid
            applyCommits(&actions)

        case .commit(let zxid):
            guard learning.inSync else { return unexpectedFromLeader(message, &actions) }
            guard zxid <= history.last else {
                return violation(.commitBeyondLog(from: peer, commit: zxid, lastLogged: history.last), &actions)
            }
            if zxid > committedZxid {
                committedZxid = zxid
                applyCommits(&actions)
            }

        case .newLeader(let epoch):
            guard case .syncing(let expected) = phase, expected == epoch else {
                return unexpectedFromLeader(message, &actions)
            }
            learning.phase = .awaitingDurable(epoch)
            acknowledgeNewLeader(&actions)

        case .upToDate:
            guard case .newLeaderAcked(let epoch) = phase else { return unexpectedFromLeader(message, &actions) }
            learning.phase = .broadcast(epoch)
            currentVote.peerEpoch = epoch
            if abstaining {
                abstaining = false
                actions.append(.recovered)
            }
            actions.append(.roleChanged(role))

        case .ping:
            actions.append(.send(to: peer, .ping))

        case .sync(let id, let target):
            guard case .broadcast = phase else { return }
            learning.pendingSyncs.append(LearnerSync(id: id, target: target))
            completeLearnerSyncs(&actions)

        case .notification:
            preconditionFailure("notifications are handled by the election")

        case .ackEpoch, .ack, .request:
            unexpectedFromLeader(message, &actions)
        }
    }

    mutating func unexpectedFromLeader(_ message: Message, _ actions: inout [Action]) {
        violation(.unexpected(from: learning.leader, message: "\(message)", phase: "learning \(learning.phase)"), &actions)
    }

    /// NEWLEADER is acknowledged only once everything received before it is durable, and the
    /// epoch is recorded as current only then (ZAB phase 2; ZooKeeper ZOOKEEPER-1282/1264).
    mutating func acknowledgeNewLeader(_ actions: inout [Action]) {
        guard case .awaitingDurable(let epoch) = learning.phase, durableZxid == history.last else { return }
        if epoch > currentEpoch {
            currentEpoch = epoch
            actions.append(.persistCurrentEpoch(epoch))
        }
        learning.lastAcked = history.last
        learning.phase = .newLeaderAcked(epoch)
        actions.append(.send(to: learning.leader, .ack(Zxid(epoch: epoch, counter: 0))))
    }

    mutating func learnerDurable(_ actions: inout [Action]) {
        switch learning.phase {
        case .connecting, .epochAcked, .syncing:
            break
        case .awaitingDurable:
            acknowledgeNewLeader(&actions)
        case .newLeaderAcked, .broadcast:
            if !learning.isObserver && durableZxid > learning.lastAcked {
                learning.lastAcked = durableZxid
                actions.append(.send(to: learning.leader, .ack(durableZxid)))
            }
        }
    }

    mutating func completeLearnerSyncs(_ actions: inout [Action]) {
        guard !learning.pendingSyncs.isEmpty else { return }
        var waiting: [LearnerSync] = []
        for sync in learning.pendingSyncs {
            if appliedZxid >= sync.target {
                actions.append(.syncCompleted(sync.id))
            } else {
                waiting.append(sync)
            }
        }
        learning.pendingSyncs = waiting
    }

    mutating func learnerTick(_ actions: inout [Action]) {
        let limit: Int = if case .broadcast = learning.phase { config.syncLimit } else { config.initLimit }
        if now - learning.lastHeard > UInt64(limit) {
            startLooking(&actions, leaving: true)
        }
    }
}
