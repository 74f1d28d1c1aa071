import KeeperModel
@testable import KeeperZAB

/// A tiny deterministic driver for unit tests: messages are delivered in FIFO order, appends
/// become durable right after (unless a server's disk is held), snapshots are not modelled.
struct Cluster {
    enum Event {
        case message(from: ServerID, to: ServerID, Message)
        case durable(ServerID)
    }

    var cores: [ServerID: ZabCore] = [:]
    var ids: [ServerID]
    var queue: [Event] = []
    /// Servers whose messages (both ways) are dropped.
    var down: Set<ServerID> = []
    /// Servers whose appends stay unsynced until released.
    var heldDisks: Set<ServerID> = []
    /// Every action each server produced, in order.
    var actions: [ServerID: [Action]] = [:]
    /// Every message delivered, in order.
    var delivered: [(from: ServerID, to: ServerID, message: Message)] = []

    init(voters: [UInt64], observers: [UInt64] = [], durable: [UInt64: ZabDurableState] = [:], maxDiffEntries: Int = 500) {
        ids = (voters + observers).map { ServerID($0) }
        for raw in voters + observers {
            var config = ZabConfig(myID: ServerID(raw), voters: Set(voters.map { ServerID($0) }),
                                   observers: Set(observers.map { ServerID($0) }))
            config.maxDiffEntries = maxDiffEntries
            cores[ServerID(raw)] = ZabCore(config: config, durable: durable[raw] ?? .empty)
        }
    }

    mutating func start(_ which: [UInt64]? = nil) {
        for id in which.map({ $0.map { ServerID($0) } }) ?? ids {
            let produced = cores[id]!.start()
            execute(produced, on: id)
        }
    }

    mutating func execute(_ produced: [Action], on id: ServerID) {
        actions[id, default: []] += produced
        for action in produced {
            switch action {
            case .send(let to, let message):
                if !down.contains(id) && !down.contains(to) { queue.append(.message(from: id, to: to, message)) }
            case .appendLog:
                if !heldDisks.contains(id) { queue.append(.durable(id)) }
            case .disconnect(let peer):
                if !down.contains(peer) && !down.contains(id) {
                    let more = cores[peer]!.peerDisconnected(id)
                    execute(more, on: peer)
                }
            case .truncateLog, .installSnapshot, .persistAcceptedEpoch, .persistCurrentEpoch, .commit,
                 .roleChanged, .syncCompleted, .violation, .recovered, .leaderEpochBehind:
                break
            }
        }
    }

    /// Delivers until nothing is in flight (bounded, so a livelock fails the test).
    mutating func settle(limit: Int = 10_000) {
        var steps = 0
        while !queue.isEmpty {
            steps += 1
            if steps >= limit {
                let last = delivered.suffix(12).map { "\($0.from) -> \($0.to): \($0.message)" }.joined(separator: "\n")
                preconditionFailure("the cluster did not settle; last messages:\n\(last)")
            }
            let event = queue.removeFirst()
            switch event {
            case .message(let from, let to, let message):
                guard !down.contains(from), !down.contains(to) else { continue }
                delivered.append((from, to, message))
                let produced = cores[to]!.step(message, from: from)
                execute(produced, on: to)
            case .durable(let id):
                let produced = cores[id]!.logDurable(upTo: cores[id]!.history.last)
                execute(produced, on: id)
            }
        }
    }

    /// One tick on every server that is up, then settle.
    mutating func tick(_ count: Int = 1) {
        for _ in 0..<count {
            for id in ids where !down.contains(id) {
                let produced = cores[id]!.tick()
                execute(produced, on: id)
            }
            settle()
        }
    }

    mutating func releaseDisk(_ raw: UInt64) {
        let id = ServerID(raw)
        heldDisks.remove(id)
        let produced = cores[id]!.logDurable(upTo: cores[id]!.history.last)
        execute(produced, on: id)
        settle()
    }

    func role(_ raw: UInt64) -> Role { cores[ServerID(raw)]!.role }

    var leader: ServerID? {
        ids.first { if case .leading = cores[$0]!.role { true } else { false } }
    }

    /// Proposes on the leader and settles; returns the zxid.
    @discardableResult
    mutating func propose(_ byte: UInt8) throws -> Zxid {
        let leader = self.leader!
        let (zxid, produced) = try cores[leader]!.propose([byte])
        execute(produced, on: leader)
        settle()
        return zxid
    }

    /// Messages of a kind delivered to a server.
    func received(by raw: UInt64, _ predicate: (Message) -> Bool) -> [Message] {
        delivered.filter { $0.to == ServerID(raw) && predicate($0.message) }.map(\.message)
    }

    func applied(_ raw: UInt64) -> Zxid { cores[ServerID(raw)]!.appliedZxid }
}

/// A durable state with `count` txns in `epoch` (payload = counter), all applied.
func durable(epoch: UInt32, count: UInt32, appliedThrough: UInt32? = nil, currentEpoch: UInt32? = nil,
             extra: [Zxid] = []) -> ZabDurableState {
    var entries = (1...max(1, count)).prefix(Int(count)).map {
        Proposal(zxid: Zxid(epoch: epoch, counter: $0), payload: [UInt8(truncatingIfNeeded: $0)])
    }
    entries += extra.map { Proposal(zxid: $0, payload: [0xEE]) }
    let history = History(base: .zero, entries: entries)
    let applied = appliedThrough.map { Zxid(epoch: epoch, counter: $0) } ?? (count == 0 ? .zero : Zxid(epoch: epoch, counter: count))
    let current = currentEpoch ?? epoch
    let accepted = max(current, extra.map(\.epoch).max() ?? 0)
    return ZabDurableState(acceptedEpoch: accepted, currentEpoch: current, history: history, applied: applied)
}
