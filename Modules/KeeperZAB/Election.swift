import KeeperModel

/// The state of one FastLeaderElection run (ZooKeeper's `lookForLeader`).
struct ElectionState: Hashable, Sendable {
    /// The vote we propose now.
    var proposal: Vote
    /// Votes of this round: LOOKING votes and the FOLLOWING/LEADING ones of the same round
    /// (`recvset`), voters only.
    var received: [ServerID: Notification] = [:]
    /// Votes of servers that already left the election (`outofelection`), any round.
    var outOfElection: [ServerID: Notification] = [:]
    /// Tick of the last broadcast of our vote.
    var lastSent: UInt64 = 0
    /// A quorum agrees on `proposal`; decide at this tick unless a better vote arrives first
    /// (FastLeaderElection's `finalizeWait`).
    var decideAt: UInt64?
}

extension ZabCore {
    var myPeerState: PeerState {
        switch mode {
        case .looking: .looking
        case .leading: .leading
        case .learning: learning.isObserver ? .observing : .following
        }
    }

    /// Leaves the current role and starts a new election round (FastLeaderElection:
    /// `logicalclock` + 1, vote for ourselves with our current epoch and last zxid).
    mutating func startLooking(_ actions: inout [Action], leaving: Bool) {
        switch mode {
        case .looking: break
        case .leading:
            for learner in leading.learners { actions.append(.disconnect(learner.id)) }
            leading = LeaderState()
        case .learning:
            actions.append(.disconnect(learning.leader))
        }
        if mode != .looking || !leaving { actions.append(.roleChanged(.looking)) }
        mode = .looking
        electionRound += 1
        let vote = Vote(leader: config.myID, zxid: history.last, electionEpoch: electionRound, peerEpoch: currentEpoch)
        currentVote = vote
        election = ElectionState(proposal: vote)
        if votes {
            election.received[config.myID] = Notification(vote: vote, state: .looking)
        }
        sendVote(&actions)
        checkLookingQuorum(&actions)
    }

    func ownNotification() -> Notification {
        Notification(vote: mode == .looking ? election.proposal : currentVote, state: myPeerState)
    }

    mutating func sendVote(_ actions: inout [Action]) {
        election.lastSent = now
        let notification = Notification(vote: election.proposal, state: .looking)
        for voter in votersSorted where voter != config.myID {
            actions.append(.send(to: voter, .notification(notification)))
        }
    }

    mutating func receiveNotification(_ notification: Notification, from peer: ServerID, _ actions: inout [Action]) {
        guard mode == .looking else {
            // Out of the election: tell a looking peer whom we follow or that we lead.
            if notification.state == .looking {
                actions.append(.send(to: peer, .notification(ownNotification())))
            }
            return
        }
        guard config.voters.contains(peer) else {
            // An observer's vote never counts; answer a looking one so it learns our state
            // (never answer an answer: two servers would echo forever).
            if notification.state == .looking {
                actions.append(.send(to: peer, .notification(ownNotification())))
            }
            return
        }
        let vote = notification.vote
        switch notification.state {
        case .looking:
            if !votes { return }
            if vote.electionEpoch > electionRound {
                electionRound = vote.electionEpoch
                election.received.removeAll()
                let mine = Vote(leader: config.myID, zxid: history.last, electionEpoch: electionRound, peerEpoch: currentEpoch)
                var best = vote.beats(mine) ? vote : mine
                best.electionEpoch = electionRound
                setProposal(best)
                sendVote(&actions)
            } else if vote.electionEpoch < electionRound {
                // A peer in an older round: bring it up to ours.
                actions.append(.send(to: peer, .notification(Notification(vote: election.proposal, state: .looking))))
                return
            } else if vote.beats(election.proposal) {
                var best = vote
                best.electionEpoch = electionRound
                setProposal(best)
                sendVote(&actions)
            }
            election.received[peer] = notification
            checkLookingQuorum(&actions)
        case .observing:
            return
        case .following, .leading:
            if vote.electionEpoch == electionRound && votes {
                election.received[peer] = notification
                if hasQuorum(election.received, for: notification) && leaderConfirmed(vote, in: election.received) {
                    decide(vote, &actions)
                    return
                }
            }
            // The rest of the ensemble may have settled without us (we restarted or were cut
            // off): join a leader that a quorum follows and that says it leads.
            election.outOfElection[peer] = notification
            if hasQuorum(election.outOfElection, for: notification) && leaderConfirmed(vote, in: election.outOfElection)
                && !backingOff(from: vote.leader) {
                electionRound = vote.electionEpoch
                decide(vote, &actions)
            }
        }
    }

    mutating func setProposal(_ vote: Vote) {
        election.proposal = vote
        election.decideAt = nil
        currentVote = vote
        if votes {
            election.received[config.myID] = Notification(vote: vote, state: .looking)
        }
    }

    /// Whether a quorum of voters in `votes` agrees with `reference`.
    ///
    /// Two LOOKING votes agree when candidate, claim and round are equal. Votes of servers out
    /// of the election agree when they name the same leader in the same epoch: their zxid and
    /// round are those of whichever election each joined, which may differ (ZooKeeper's
    /// `Vote.equals`).
    func hasQuorum(_ votes: [ServerID: Notification], for reference: Notification) -> Bool {
        var count = 0
        for (id, notification) in votes where config.voters.contains(id) {
            if Self.agree(notification, reference) { count += 1 }
        }
        return count >= config.quorumSize
    }

    static func agree(_ a: Notification, _ b: Notification) -> Bool {
        if a.state == .looking || b.state == .looking {
            return a.vote.sameCandidate(b.vote) && a.vote.electionEpoch == b.vote.electionEpoch
        }
        return a.vote.leader == b.vote.leader && a.vote.peerEpoch == b.vote.peerEpoch
    }

    /// FastLeaderElection's `checkLeader`: never follow a leader we have not heard lead; lead
    /// only in our own round.
    func leaderConfirmed(_ vote: Vote, in votes: [ServerID: Notification]) -> Bool {
        if vote.leader == config.myID { return vote.electionEpoch == electionRound && self.votes }
        return votes[vote.leader]?.state == .leading
    }

    mutating func checkLookingQuorum(_ actions: inout [Action]) {
        guard mode == .looking, votes else { return }
        let proposal = election.proposal
        var agreeing = 0
        for (id, notification) in election.received where config.voters.contains(id) {
            if notification.vote.sameCandidate(proposal) { agreeing += 1 }
        }
        if agreeing == config.voters.count {
            decide(proposal, &actions)
        } else if agreeing >= config.quorumSize {
            if election.decideAt == nil { election.decideAt = now + 1 }
        } else {
            election.decideAt = nil
        }
    }

    mutating func electionTick(_ actions: inout [Action]) {
        if let decideAt = election.decideAt, now >= decideAt {
            decide(election.proposal, &actions)
            return
        }
        if now - election.lastSent >= UInt64(config.electionResendTicks) {
            sendVote(&actions)
        }
    }

    /// Whether `leader` refused us lately for leading an epoch below ours
    /// (`Action.leaderEpochBehind`). The votes we resend bring its followers' answers again
    /// once the wait is over.
    mutating func backingOff(from leader: ServerID) -> Bool {
        guard let refused = refusedLeader, refused.leader == leader else { return false }
        if now < refused.until { return true }
        refusedLeader = nil
        return false
    }

    /// The election is over: lead, follow or observe `vote.leader`.
    mutating func decide(_ vote: Vote, _ actions: inout [Action]) {
        if backingOff(from: vote.leader) { return }
        var decided = vote
        decided.electionEpoch = electionRound
        currentVote = decided
        if vote.leader == config.myID {
            precondition(!config.isObserver, "an observer was elected")
            becomeLeader(&actions)
        } else {
            becomeLearner(of: vote.leader, &actions)
        }
    }
}
