import KeeperModel
import Testing
@testable import KeeperZAB

@Suite struct ElectionTests {
    @Test func newestHistoryWinsOverHigherID() {
        var cluster = Cluster(voters: [1, 2, 3], durable: [
            1: durable(epoch: 1, count: 5),
            2: durable(epoch: 1, count: 3),
            3: durable(epoch: 1, count: 4),
        ])
        cluster.start()
        cluster.settle()
        cluster.tick(2)
        #expect(cluster.role(1) == .leading(epoch: 2))
        #expect(cluster.role(2) == .following(leader: ServerID(1), epoch: 2))
        #expect(cluster.role(3) == .following(leader: ServerID(1), epoch: 2))
    }

    @Test func currentEpochBeatsLongerLog() {
        // Server 1 logged more, but server 2 accepted a newer epoch's history.
        var cluster = Cluster(voters: [1, 2, 3], durable: [
            1: durable(epoch: 1, count: 9, appliedThrough: 2),
            2: durable(epoch: 1, count: 2, currentEpoch: 2),
            3: durable(epoch: 1, count: 1),
        ])
        cluster.start()
        cluster.settle()
        cluster.tick(2)
        #expect(cluster.role(2) == .leading(epoch: 3))
        #expect(cluster.role(1) == .following(leader: ServerID(2), epoch: 3))
    }

    @Test func tieGoesToHighestID() {
        var cluster = Cluster(voters: [1, 2, 3])
        cluster.start()
        cluster.settle()
        cluster.tick(2)
        #expect(cluster.role(3) == .leading(epoch: 1))
        #expect(cluster.role(1) == .following(leader: ServerID(3), epoch: 1))
    }

    @Test func observerNeverLeadsNorVotes() {
        // The observer has as new a history as anyone and the highest id, and still observes.
        var cluster = Cluster(voters: [1, 2], observers: [9], durable: [
            1: durable(epoch: 1, count: 3), 2: durable(epoch: 1, count: 3), 9: durable(epoch: 1, count: 3),
        ])
        cluster.start()
        cluster.settle()
        cluster.tick(3)
        #expect(cluster.role(2) == .leading(epoch: 2))
        #expect(cluster.role(9) == .observing(leader: ServerID(2), epoch: 2))
        // No voter ever adopted the observer as its candidate.
        let adopted = cluster.delivered.contains {
            if case .notification(let n) = $0.message, $0.from != ServerID(9) { n.vote.leader == ServerID(9) } else { false }
        }
        #expect(!adopted)
    }

    @Test func latecomerJoinsTheEstablishedLeader() {
        var cluster = Cluster(voters: [1, 2, 3])
        cluster.down = [ServerID(3)]
        cluster.start([1, 2])
        cluster.settle()
        cluster.tick(3)
        #expect(cluster.role(2) == .leading(epoch: 1))
        cluster.down = []
        cluster.start([3])
        cluster.settle()
        cluster.tick(2)
        #expect(cluster.role(3) == .following(leader: ServerID(2), epoch: 1))
    }

    @Test func singleVoterLeadsAlone() throws {
        var cluster = Cluster(voters: [1])
        cluster.start()
        cluster.settle()
        #expect(cluster.role(1) == .leading(epoch: 1))
        let zxid = try cluster.propose(7)
        #expect(zxid == Zxid(epoch: 1, counter: 1))
        #expect(cluster.applied(1) == zxid)
    }
}

@Suite struct EpochTests {
    @Test func newEpochIsAboveEveryAcceptedEpoch() {
        var cluster = Cluster(voters: [1, 2, 3], durable: [
            1: ZabDurableState(acceptedEpoch: 7, currentEpoch: 1, history: History(base: .zero, entries: []), applied: .zero),
            2: .empty,
            3: .empty,
        ])
        cluster.start()
        cluster.settle()
        cluster.tick(2)
        // Server 1 leads (its current epoch 1 beats 0) and picks max(7, 0, 0) + 1.
        #expect(cluster.role(1) == .leading(epoch: 8))
        #expect(cluster.cores[ServerID(2)]!.acceptedEpoch == 8)
        #expect(cluster.cores[ServerID(2)]!.currentEpoch == 8)
        #expect(cluster.actions[ServerID(1)]!.contains(.persistAcceptedEpoch(8)))
    }

    @Test func learnerRefusesAnOlderEpoch() {
        var config = ZabConfig(myID: ServerID(1), voters: [ServerID(1), ServerID(2), ServerID(3)])
        config.initLimit = 3
        var core = ZabCore(config: config, durable: ZabDurableState(
            acceptedEpoch: 5, currentEpoch: 5, history: History(base: .zero, entries: []), applied: .zero))
        _ = core.start()
        // Server 3 claims to lead and a quorum follows it.
        let leaderVote = Vote(leader: ServerID(3), zxid: .zero, electionEpoch: 1, peerEpoch: 5)
        _ = core.step(.notification(Notification(vote: leaderVote, state: .leading)), from: ServerID(3))
        let joined = core.step(.notification(Notification(vote: leaderVote, state: .following)), from: ServerID(2))
        #expect(joined.contains(.send(to: ServerID(3), .followerInfo(acceptedEpoch: 5))))
        let refused = core.step(.leaderInfo(newEpoch: 4), from: ServerID(3))
        #expect(refused.contains(.disconnect(ServerID(3))))
        #expect(refused.contains(.leaderEpochBehind(leader: ServerID(3), leaderEpoch: 4, acceptedEpoch: 5)))
        #expect(!refused.contains { if case .persistAcceptedEpoch = $0 { true } else { false } })
        #expect(core.role == .looking)
    }

    @Test func learnerBacksOffFromALeaderThatRefusedIt() {
        var config = ZabConfig(myID: ServerID(1), voters: [ServerID(1), ServerID(2), ServerID(3)])
        config.rejoinBackoffTicks = 4
        var core = ZabCore(config: config, durable: ZabDurableState(
            acceptedEpoch: 5, currentEpoch: 5, history: History(base: .zero, entries: []), applied: .zero))
        _ = core.start()
        let leaderVote = Vote(leader: ServerID(3), zxid: .zero, electionEpoch: 1, peerEpoch: 4)
        func answers(_ core: inout ZabCore) -> [Action] {
            core.step(.notification(Notification(vote: leaderVote, state: .leading)), from: ServerID(3))
                + core.step(.notification(Notification(vote: leaderVote, state: .following)), from: ServerID(2))
        }
        func joins(_ actions: [Action]) -> Bool {
            actions.contains { if case .send(ServerID(3), .followerInfo) = $0 { true } else { false } }
        }
        #expect(joins(answers(&core)))
        _ = core.step(.leaderInfo(newEpoch: 4), from: ServerID(3))
        #expect(core.role == .looking)
        // Server 2 and 3 answer our new vote at once with the same leader: no rejoin (the loop
        // that used to run as fast as the network), however often they answer.
        for _ in 0..<3 {
            #expect(!joins(answers(&core)))
            _ = core.tick()
            #expect(core.role == .looking)
        }
        _ = core.tick()
        // The wait is over: the leader may have a newer epoch now; try it again.
        #expect(joins(answers(&core)))
        #expect(core.acceptedEpoch == 5)
    }

    @Test func leaderAbdicatesWhenAFollowerIsAhead() {
        var config = ZabConfig(myID: ServerID(3), voters: [ServerID(1), ServerID(2), ServerID(3)])
        config.initLimit = 3
        var core = ZabCore(config: config, durable: durable(epoch: 1, count: 2))
        _ = core.start()
        // Two peers vote for server 3 (stale votes: one of them is actually ahead).
        let vote = Vote(leader: ServerID(3), zxid: Zxid(epoch: 1, counter: 2), electionEpoch: 1, peerEpoch: 1)
        _ = core.step(.notification(Notification(vote: vote, state: .looking)), from: ServerID(1))
        _ = core.step(.notification(Notification(vote: vote, state: .looking)), from: ServerID(2))
        #expect(core.mode == .leading)
        _ = core.step(.followerInfo(acceptedEpoch: 1), from: ServerID(1))
        _ = core.step(.followerInfo(acceptedEpoch: 1), from: ServerID(2))
        let abdicated = core.step(.ackEpoch(currentEpoch: 1, lastZxid: Zxid(epoch: 1, counter: 9)), from: ServerID(1))
        #expect(core.mode == .looking)
        #expect(abdicated.contains(.disconnect(ServerID(1))))
        #expect(!abdicated.contains { if case .persistCurrentEpoch = $0 { true } else { false } })
    }

    @Test func counterExhaustionForcesANewEpoch() throws {
        var cluster = Cluster(voters: [1])
        cluster.start()
        cluster.settle()
        #expect(cluster.role(1) == .leading(epoch: 1))
        // Pretend 2^32 - 2 txns were proposed in epoch 1.
        cluster.cores[ServerID(1)]!.history.append(Proposal(zxid: Zxid(epoch: 1, counter: UInt32.max - 1), payload: [1]))
        #expect(cluster.cores[ServerID(1)]!.nextZxid == nil)
        var carried = false
        do {
            _ = try cluster.propose(2)
        } catch let error as ProposeError {
            guard case .zxidCounterExhausted(let actions) = error else { throw error }
            #expect(actions.contains(.roleChanged(.looking)))
            cluster.execute(actions, on: ServerID(1))
            carried = true
        }
        #expect(carried)
        cluster.releaseDisk(1)
        cluster.tick(2)
        #expect(cluster.role(1) == .leading(epoch: 2))
        #expect(try cluster.propose(3) == Zxid(epoch: 2, counter: 1))
    }
}

@Suite struct SynchronizationTests {
    /// Elects server 3 (newest history) and returns what each follower got first.
    func syncKinds(_ states: [UInt64: ZabDurableState], maxDiffEntries: Int = 500) -> (Cluster, [UInt64: Message]) {
        var cluster = Cluster(voters: [1, 2, 3], durable: states, maxDiffEntries: maxDiffEntries)
        cluster.start()
        cluster.settle()
        cluster.tick(2)
        var first: [UInt64: Message] = [:]
        for raw: UInt64 in [1, 2] {
            first[raw] = cluster.received(by: raw) {
                switch $0 {
                case .diff, .trunc, .snap: true
                default: false
                }
            }.first
        }
        return (cluster, first)
    }

    @Test func diffWhenTheFollowerIsAPrefix() {
        let (cluster, first) = syncKinds([
            1: durable(epoch: 1, count: 3), 2: durable(epoch: 1, count: 5), 3: durable(epoch: 1, count: 6, appliedThrough: 6),
        ])
        #expect(cluster.role(3) == .leading(epoch: 2))
        #expect(first[1] == .diff(lastZxid: Zxid(epoch: 1, counter: 3)))
        #expect(first[2] == .diff(lastZxid: Zxid(epoch: 1, counter: 5)))
        #expect(cluster.applied(1) == Zxid(epoch: 1, counter: 6))
        #expect(cluster.cores[ServerID(1)]!.history.entries.map(\.zxid) == cluster.cores[ServerID(3)]!.history.entries.map(\.zxid))
    }

    @Test func truncThenDiffWhenTheFollowerHasAnUncommittedTailInTheSameEpoch() {
        // Server 1 logged 1.4' that the leader never had (same epoch): TRUNC to 1.3.
        let divergent = ZabDurableState(acceptedEpoch: 2, currentEpoch: 1, history: History(base: .zero, entries: [
            Proposal(zxid: Zxid(epoch: 1, counter: 1), payload: [1]),
            Proposal(zxid: Zxid(epoch: 1, counter: 2), payload: [2]),
            Proposal(zxid: Zxid(epoch: 1, counter: 3), payload: [3]),
            Proposal(zxid: Zxid(epoch: 1, counter: 4), payload: [0xEE]),
        ]), applied: Zxid(epoch: 1, counter: 2))
        let leaderState = ZabDurableState(acceptedEpoch: 2, currentEpoch: 2, history: History(base: .zero, entries: [
            Proposal(zxid: Zxid(epoch: 1, counter: 1), payload: [1]),
            Proposal(zxid: Zxid(epoch: 1, counter: 2), payload: [2]),
            Proposal(zxid: Zxid(epoch: 1, counter: 3), payload: [3]),
            Proposal(zxid: Zxid(epoch: 2, counter: 1), payload: [4]),
        ]), applied: Zxid(epoch: 1, counter: 3))
        // Server 1 still reports 1.4 (> 1.3) in the same epoch as the leader's 1.3.
        var cluster = Cluster(voters: [1, 2, 3], durable: [1: divergent, 2: .empty, 3: leaderState])
        cluster.start()
        cluster.settle()
        cluster.tick(2)
        #expect(cluster.role(3) == .leading(epoch: 3))
        let first = cluster.received(by: 1) { if case .trunc = $0 { true } else if case .diff = $0 { true } else if case .snap = $0 { true } else { false } }
        #expect(first.first == .trunc(Zxid(epoch: 1, counter: 3)))
        #expect(cluster.actions[ServerID(1)]!.contains(.truncateLog(after: Zxid(epoch: 1, counter: 3))))
        #expect(cluster.cores[ServerID(1)]!.history.entries.map(\.payload) == [[1], [2], [3], [4]])
    }

    @Test func snapAcrossAnEpochBoundary() {
        // Server 1's tail is from epoch 2, which the leader's history skips: no safe TRUNC.
        let follower = ZabDurableState(acceptedEpoch: 2, currentEpoch: 2, history: History(base: .zero, entries: [
            Proposal(zxid: Zxid(epoch: 1, counter: 1), payload: [1]),
            Proposal(zxid: Zxid(epoch: 2, counter: 1), payload: [0xEE]),
        ]), applied: Zxid(epoch: 1, counter: 1))
        let leaderState = ZabDurableState(acceptedEpoch: 3, currentEpoch: 3, history: History(base: .zero, entries: [
            Proposal(zxid: Zxid(epoch: 1, counter: 1), payload: [1]),
            Proposal(zxid: Zxid(epoch: 3, counter: 1), payload: [5]),
        ]), applied: Zxid(epoch: 1, counter: 1))
        var cluster = Cluster(voters: [1, 2, 3], durable: [1: follower, 2: .empty, 3: leaderState])
        cluster.start()
        cluster.settle()
        cluster.tick(2)
        #expect(cluster.role(3) == .leading(epoch: 4))
        let first = cluster.received(by: 1) { if case .snap = $0 { true } else if case .diff = $0 { true } else if case .trunc = $0 { true } else { false } }
        #expect(first.first == .snap(Zxid(epoch: 1, counter: 1)))
        #expect(cluster.actions[ServerID(1)]!.contains(.installSnapshot(from: ServerID(3), through: Zxid(epoch: 1, counter: 1))))
        #expect(cluster.cores[ServerID(1)]!.history.entries.map(\.payload) == [[5]])
    }

    @Test func snapWhenTheFollowerIsBehindTheDiffWindow() {
        let (cluster, first) = syncKinds([
            1: .empty, 2: durable(epoch: 1, count: 10), 3: durable(epoch: 1, count: 20),
        ], maxDiffEntries: 5)
        #expect(cluster.role(3) == .leading(epoch: 2))
        #expect(first[1] == .snap(Zxid(epoch: 1, counter: 20)))
        #expect(first[2] == .snap(Zxid(epoch: 1, counter: 20)))
        #expect(cluster.applied(1) == Zxid(epoch: 1, counter: 20))
    }

    @Test func followerAcksNewLeaderOnlyOnceDurableAndAfterPersistingTheEpoch() {
        var cluster = Cluster(voters: [1, 2, 3], durable: [1: .empty, 2: .empty, 3: durable(epoch: 1, count: 4)])
        cluster.heldDisks = [ServerID(1), ServerID(2)]
        cluster.start()
        cluster.settle()
        cluster.tick(1)
        // The followers received the history and NEWLEADER but their logs are not durable.
        #expect(!cluster.received(by: 1) { $0 == .newLeader(epoch: 2) }.isEmpty)
        #expect(cluster.received(by: 3) { $0 == .ack(Zxid(epoch: 2, counter: 0)) }.isEmpty)
        #expect(cluster.role(3) == .looking)
        cluster.releaseDisk(1)
        let actions = cluster.actions[ServerID(1)]!
        let persisted = actions.firstIndex(of: .persistCurrentEpoch(2))
        let acked = actions.firstIndex(of: .send(to: ServerID(3), .ack(Zxid(epoch: 2, counter: 0))))
        #expect(persisted != nil && acked != nil && persisted! < acked!)
        #expect(cluster.role(3) == .leading(epoch: 2))
        #expect(cluster.role(1) == .following(leader: ServerID(3), epoch: 2))
    }
}

@Suite struct BroadcastTests {
    func established() -> Cluster {
        var cluster = Cluster(voters: [1, 2, 3], observers: [4])
        cluster.start()
        cluster.settle()
        cluster.tick(2)
        precondition(cluster.role(3) == .leading(epoch: 1))
        return cluster
    }

    @Test func commitNeedsAQuorumOfDurableLogs() throws {
        var cluster = established()
        cluster.heldDisks = [ServerID(1), ServerID(2), ServerID(3)]
        let zxid = try cluster.propose(1)
        #expect(cluster.applied(3) < zxid)
        // The leader's own durable log is one vote of three: not enough.
        cluster.releaseDisk(3)
        #expect(cluster.cores[ServerID(3)]!.committedZxid < zxid)
        cluster.releaseDisk(1)
        #expect(cluster.applied(3) == zxid)
        #expect(cluster.applied(1) == zxid)
        // Server 2 learns the commit but applies only once its own log is durable.
        #expect(cluster.cores[ServerID(2)]!.committedZxid == zxid)
        #expect(cluster.applied(2) < zxid)
        cluster.releaseDisk(2)
        #expect(cluster.applied(2) == zxid)
        // The observer got it as INFORM, never as PROPOSAL, and never ACKed.
        #expect(cluster.received(by: 4) { if case .inform(let p) = $0 { p.zxid == zxid } else { false } }.count == 1)
        #expect(cluster.received(by: 4) { if case .proposal(let p) = $0 { p.zxid == zxid } else { false } }.isEmpty)
        #expect(cluster.delivered.filter { $0.from == ServerID(4) && { if case .ack = $0 { true } else { false } }($0.message) }.count <= 1)
        #expect(cluster.applied(4) == zxid)
    }

    @Test func followersForwardWritesAndSyncsComplete() throws {
        var cluster = established()
        let forwarded = cluster.cores[ServerID(1)]!.forward([42])
        #expect(forwarded == [.send(to: ServerID(3), .request([42]))])
        cluster.execute(forwarded, on: ServerID(1))
        cluster.settle()
        #expect(cluster.applied(1) == Zxid(epoch: 1, counter: 1))
        let sync = cluster.cores[ServerID(2)]!.requestSync(SyncID(9))!
        cluster.execute(sync, on: ServerID(2))
        cluster.settle()
        #expect(cluster.actions[ServerID(2)]!.contains(.syncCompleted(SyncID(9))))
    }

    @Test func leaderStepsDownWithoutAQuorum() throws {
        var cluster = established()
        try cluster.propose(1)
        cluster.down = [ServerID(1), ServerID(2)]
        let limit = cluster.cores[ServerID(3)]!.config.syncLimit
        cluster.tick(limit)
        #expect(cluster.role(3) == .leading(epoch: 1))
        cluster.tick(2)
        #expect(cluster.role(3) == .looking)
        #expect(throws: ProposeError.self) { try cluster.cores[ServerID(3)]!.propose([2]) }
    }

    @Test func followerLooksWhenTheLeaderGoesQuiet() {
        var cluster = established()
        cluster.down = [ServerID(3)]
        let limit = cluster.cores[ServerID(1)]!.config.syncLimit
        cluster.tick(limit + 1)
        #expect(cluster.role(1) == .looking)
        cluster.tick(3)
        // Servers 1 and 2 elect a new leader among themselves, in a new epoch.
        #expect(cluster.role(2) == .leading(epoch: 2))
        #expect(cluster.role(1) == .following(leader: ServerID(2), epoch: 2))
    }

    @Test func aNewLeaderCommitsTheHistoryItInherits() throws {
        var cluster = established()
        // Proposed and logged on servers 3 and 1, never committed: server 2 never got it.
        cluster.down = [ServerID(2)]
        cluster.heldDisks = [ServerID(3)]
        let zxid = try cluster.propose(7)
        #expect(cluster.cores[ServerID(1)]!.history.last == zxid)
        #expect(cluster.applied(1) < zxid)
        // The leader dies before it commits; 1 and 2 elect 1 (it has the newest zxid).
        cluster.down = [ServerID(3)]
        cluster.tick(8)
        #expect(cluster.role(1) == .leading(epoch: 2))
        #expect(cluster.applied(1) == zxid)
        #expect(cluster.applied(2) == zxid)
    }
}

@Suite struct HistoryTests {
    let history = History(base: Zxid(epoch: 1, counter: 2), entries: [3, 4, 7].map {
        Proposal(zxid: Zxid(epoch: 1, counter: $0), payload: [UInt8($0)])
    })

    @Test func lookups() {
        #expect(history.last == Zxid(epoch: 1, counter: 7))
        #expect(history.contains(Zxid(epoch: 1, counter: 2)))
        #expect(history.contains(Zxid(epoch: 1, counter: 4)))
        #expect(!history.contains(Zxid(epoch: 1, counter: 5)))
        #expect(history.largest(below: Zxid(epoch: 1, counter: 6)) == Zxid(epoch: 1, counter: 4))
        #expect(history.largest(below: Zxid(epoch: 1, counter: 3)) == Zxid(epoch: 1, counter: 2))
        #expect(history.entries(after: Zxid(epoch: 1, counter: 3), through: Zxid(epoch: 1, counter: 7)).map(\.zxid.counter) == [4, 7])
    }

    @Test func truncateAndTrim() {
        var copy = history
        copy.truncate(after: Zxid(epoch: 1, counter: 4))
        #expect(copy.last == Zxid(epoch: 1, counter: 4))
        copy = history
        copy.trim(keepAfter: Zxid(epoch: 1, counter: 4), maxEntries: 1)
        #expect(copy.base == Zxid(epoch: 1, counter: 3))
        #expect(copy.entries.map(\.zxid.counter) == [4, 7])
    }
}

@Suite struct BackpressureTests {
    @Test func leaderRefusesPastTheOutstandingLimit() throws {
        var config = ZabConfig(myID: ServerID(1), voters: [ServerID(1)])
        config.maxOutstandingProposals = 2
        var core = ZabCore(config: config, durable: .empty)
        _ = core.start()
        #expect(core.role == .leading(epoch: 1))
        _ = try core.propose([1])
        _ = try core.propose([2])
        #expect(core.outstandingProposals == 2)
        #expect(throws: ProposeError.tooManyOutstanding(limit: 2)) { _ = try core.propose([3]) }
        // Durable on the only voter: committed, room again.
        _ = core.logDurable(upTo: Zxid(epoch: 1, counter: 2))
        #expect(core.outstandingProposals == 0)
        #expect(try core.propose([3]).zxid == Zxid(epoch: 1, counter: 3))
    }
}
