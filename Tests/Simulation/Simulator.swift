import KeeperModel
import KeeperZAB

/// The knobs of one simulated run, all drawn from the seed.
struct SimParameters: CustomStringConvertible {
    var voters: Int
    var observers: Int
    /// Ticks of faults (crashes, partitions, lossy network) before everything heals.
    var chaosTicks: Int
    /// Ticks the healed ensemble gets to elect a leader and commit a probe write everywhere.
    var calmTicks: Int
    var maxDiffEntries: Int
    var dropRate: Double
    var duplicateRate: Double
    var slowRate: Double
    var faultRate: Double
    var slowDiskRate: Double
    var writeInterval: Int
    var maxOutstanding: Int

    init(seed: UInt64, chaosTicks: Int) {
        var rng = SimRandom(seed: seed ^ 0x5EED)
        voters = [1, 3, 3, 3, 5, 5][rng.int(0...5)]
        observers = rng.chance(0.3) ? 1 : 0
        self.chaosTicks = chaosTicks
        calmTicks = 200
        maxDiffEntries = rng.int(1...12)
        dropRate = rng.chance(0.3) ? 0 : rng.double(0...0.08)
        duplicateRate = rng.double(0...0.05)
        slowRate = rng.double(0...0.2)
        faultRate = rng.double(0.01...0.06)
        slowDiskRate = rng.chance(0.5) ? rng.double(0...0.5) : 0
        writeInterval = rng.int(2...12)
        maxOutstanding = rng.chance(0.3) ? rng.int(1...8) : 1000
    }

    var description: String {
        "\(voters) voters + \(observers) observers, \(chaosTicks) chaos ticks, diff window \(maxDiffEntries), drop \(dropRate), dup \(duplicateRate), slow \(slowRate), faults \(faultRate)/tick, slow disk \(slowDiskRate), outstanding \(maxOutstanding)"
    }
}

/// A server's disk: epoch files, a log whose unsynced tail a crash may lose, and the store.
struct SimDisk {
    var acceptedEpoch: UInt32 = 0
    var currentEpoch: UInt32 = 0
    var logBase: Zxid = .zero
    var synced: [Proposal] = []
    var unsynced: [Proposal] = []
    /// The store: every applied txn in order (a snapshot is a copy of it).
    var store: [Proposal] = []
    /// The data was lost (a damaged disk replaced): the server abstains from elections until
    /// it has synchronized once (`ZabCore.start(abstaining:)`).
    var recovering = false

    var lastLogged: Zxid { unsynced.last?.zxid ?? synced.last?.zxid ?? logBase }
    var lastSynced: Zxid { synced.last?.zxid ?? logBase }
    var applied: Zxid { store.last?.zxid ?? .zero }

    func logEntry(_ zxid: Zxid) -> Proposal? {
        if let entry = synced.first(where: { $0.zxid == zxid }) { return entry }
        return unsynced.first { $0.zxid == zxid }
    }
}

struct SimNode {
    var id: ServerID
    var core: ZabCore?
    var incarnation = 0
    var disk = SimDisk()
    var syncScheduled = false
    var role: Role = .looking
}

/// A message in flight. Peer messages travel on a connection (`generation`); election
/// notifications are datagrams.
struct Envelope {
    var from: Int
    var to: Int
    var message: Message
    var generation: UInt64?
    var snapshot: [Proposal]?
}

enum SimEvent {
    case tick(node: Int, incarnation: Int)
    case deliver(Envelope)
    case notifyDisconnect(node: Int, peer: Int, generation: UInt64)
    case diskSync(node: Int, incarnation: Int)
    case clientWrite
    case fault
    case restart(node: Int)
}

/// The connection between two servers, modelled as TCP: FIFO while it lasts; a break drops
/// what is in flight and each end learns of it (`peerDisconnected`) before it receives
/// anything of a later connection, or after a while; an end that has not learned yet writes
/// into the dead connection.
struct SimChannel {
    var generation: UInt64 = 0
    /// Ends that have not yet been told of the last break.
    var unaware: Set<Int> = []
    /// Delivery time of the last message each way, to keep FIFO order.
    var lastDelivery: [Int: UInt64] = [:]
}

/// A whole ensemble of ZAB cores on a simulated network, disks and clock.
struct Simulation {
    static let tickLength: UInt64 = 10

    let seed: UInt64
    let parameters: SimParameters
    var rng: SimRandom
    var time: UInt64 = 0
    var queue = EventQueue<SimEvent>()
    var nodes: [SimNode] = []
    var configs: [ZabConfig] = []
    /// Each server's tickTime in simulated time units: clocks drift apart.
    var tickLengths: [UInt64] = []
    var channels: [Int: SimChannel] = [:]
    var partition: [Int]?
    var lossy = true
    var checker = Checker()
    var trace = TraceHash()
    var transcript: [String]?
    var writes: UInt64 = 0
    var currentSnapshot: [Proposal]?
    var currentSnapshotFrom = 0
    var events = 0
    var syncs: UInt64 = 0
    /// Client syncs in flight: the server asked and the committed history length then.
    var pendingSyncs: [SyncID: (node: Int, committedBefore: Int)] = [:]

    init(seed: UInt64, chaosTicks: Int, recordTranscript: Bool = false) {
        self.seed = seed
        self.parameters = SimParameters(seed: seed, chaosTicks: chaosTicks)
        self.rng = SimRandom(seed: seed)
        self.transcript = recordTranscript ? [] : nil
        let total = parameters.voters + parameters.observers
        let voters = Set((1...parameters.voters).map { ServerID(UInt64($0)) })
        let observers = Set((0..<parameters.observers).map { ServerID(UInt64(parameters.voters + 1 + $0)) })
        for index in 0..<total {
            var config = ZabConfig(myID: ServerID(UInt64(index + 1)), voters: voters, observers: observers)
            config.initLimit = 10
            config.syncLimit = 5
            config.electionResendTicks = 2
            config.maxDiffEntries = parameters.maxDiffEntries
            config.maxOutstandingProposals = parameters.maxOutstanding
            configs.append(config)
            nodes.append(SimNode(id: config.myID))
            tickLengths.append(Self.tickLength - 3 + UInt64(rng.int(0...6)))
        }
    }

    var tracing: Bool { transcript != nil }

    mutating func record(_ text: String) {
        transcript?.append("t=\(time) \(text)")
    }

    // MARK: Run

    /// Runs the chaos phase, heals, and gives the ensemble `calmTicks` to make progress.
    mutating func run() {
        for index in nodes.indices { restart(index) }
        queue.push(.clientWrite, at: 1)
        queue.push(.fault, at: Self.tickLength)
        let chaosEnd = UInt64(parameters.chaosTicks) * Self.tickLength
        runUntil(chaosEnd)
        heal()
        let deadline = chaosEnd + UInt64(parameters.calmTicks) * Self.tickLength
        var probe: (entry: Proposal, leader: Int, epoch: UInt32)?
        var done = false
        while time < deadline && checker.failures.isEmpty && !done {
            runUntil(time + Self.tickLength)
            if let current = probe {
                if let position = checker.committed.firstIndex(of: current.entry) {
                    // Committed: done once every server applied it.
                    done = nodes.allSatisfy { $0.disk.store.count > position }
                    continue
                }
                // Not committed yet; if its leader is gone it may never be: probe again.
                if nodes[current.leader].role == .leading(epoch: current.epoch) { continue }
                probe = nil
            }
            guard let leader = nodes.indices.first(where: { if case .leading = nodes[$0].role { true } else { false } }),
                  case .leading(let epoch) = nodes[leader].role,
                  nodes.allSatisfy({ node in
                      switch node.role {
                      case .leading: true
                      case .following(let l, _), .observing(let l, _): Int(l.rawValue) - 1 == leader
                      case .looking: false
                      }
                  }) else { continue }
            let payload = nextPayload()
            checker.submitted(payload)
            do {
                let (zxid, actions) = try nodes[leader].core!.propose(payload)
                execute(actions, on: leader)
                probe = (Proposal(zxid: zxid, payload: payload), leader, epoch)
            } catch {
                if tracing { record("probe refused: \(error)") }
            }
        }
        guard checker.failures.isEmpty else { return }
        if !done {
            let roles = nodes.map { "\($0.id): \($0.role)" }.joined(separator: ", ")
            checker.fail("liveness: after \(parameters.calmTicks) calm ticks no probe write committed everywhere (\(roles))")
        }
        // No committed txn lost: agreement was checked on every apply, and every server now
        // holds the committed history up to the probe.
    }

    mutating func runUntil(_ end: UInt64) {
        while let next = queue.nextTime, next <= end, let (at, event) = queue.pop() {
            time = at
            events += 1
            handle(event)
            if !checker.failures.isEmpty { return }
        }
        time = end
    }

    mutating func heal() {
        lossy = false
        partition = nil
        if tracing { record("heal") }
        for index in nodes.indices where nodes[index].core == nil { restart(index) }
    }

    // MARK: Events

    mutating func handle(_ event: SimEvent) {
        switch event {
        case .tick(let node, let incarnation):
            guard nodes[node].incarnation == incarnation, nodes[node].core != nil else { return }
            trace.mix(1 &+ UInt64(node) << 8 &+ time << 16)
            let actions = nodes[node].core!.tick()
            execute(actions, on: node)
            queue.push(.tick(node: node, incarnation: incarnation), at: time + tickLengths[node])

        case .deliver(let envelope):
            deliver(envelope)

        case .notifyDisconnect(let node, let peer, let generation):
            notify(node, about: peer, generation: generation)

        case .diskSync(let node, let incarnation):
            guard nodes[node].incarnation == incarnation, nodes[node].core != nil else { return }
            nodes[node].syncScheduled = false
            nodes[node].disk.synced += nodes[node].disk.unsynced
            nodes[node].disk.unsynced.removeAll()
            let durable = nodes[node].disk.lastSynced
            trace.mix(3 &+ UInt64(node) << 8 &+ UInt64(bitPattern: durable.rawValue) << 16)
            let actions = nodes[node].core!.logDurable(upTo: durable)
            execute(actions, on: node)

        case .clientWrite:
            clientWrite()
            queue.push(.clientWrite, at: time + UInt64(rng.int(1...parameters.writeInterval)))

        case .fault:
            if lossy { fault() }
            queue.push(.fault, at: time + Self.tickLength)

        case .restart(let node):
            if lossy && nodes[node].core == nil { restart(node) }
        }
    }

    mutating func nextPayload() -> [UInt8] {
        writes += 1
        return withUnsafeBytes(of: writes.bigEndian) { Array($0) }
    }

    mutating func clientWrite() {
        let node = rng.int(0...(nodes.count - 1))
        guard nodes[node].core != nil else { return }
        if rng.chance(0.1) {
            // A client sync: once it completes, this server must have applied every txn
            // committed before the sync was asked, up to its leader's epoch (a leader cut off
            // but not yet stepped down answers for its own epoch, as in ZooKeeper).
            let epoch: UInt32
            switch nodes[node].role {
            case .looking: return
            case .leading(let e), .following(_, let e), .observing(_, let e): epoch = e
            }
            syncs += 1
            let id = SyncID(syncs)
            if let actions = nodes[node].core!.requestSync(id) {
                let before = checker.committed.firstIndex { $0.zxid.epoch > epoch } ?? checker.committed.count
                pendingSyncs[id] = (node, before)
                execute(actions, on: node)
            }
            return
        }
        let payload = nextPayload()
        checker.submitted(payload)
        switch nodes[node].role {
        case .leading:
            do {
                let (_, actions) = try nodes[node].core!.propose(payload)
                execute(actions, on: node)
            } catch {
                if case .zxidCounterExhausted(let actions) = error { execute(actions, on: node) }
            }
        case .following, .observing:
            execute(nodes[node].core!.forward(payload), on: node)
        case .looking:
            break
        }
    }

    mutating func fault() {
        let total = nodes.count
        if rng.chance(parameters.faultRate) {
            // Crash a server, the leader more often than not.
            let leader = nodes.indices.first { if case .leading = nodes[$0].role { true } else { false } }
            let victim = leader.flatMap { rng.chance(0.5) ? $0 : nil } ?? rng.int(0...(total - 1))
            if nodes[victim].core != nil {
                crash(victim)
                if rng.chance(0.15) && configs[victim].voters.count >= 3 && !nodes.contains(where: \.disk.recovering) {
                    // Its disk is found damaged: the data is moved aside and it rejoins empty.
                    // One such server at a time, in ensembles of 3 voters or more: a quorum's
                    // worth of lost disks loses data in any protocol, and the rest must still
                    // form a quorum without it.
                    if tracing { record("wipe \(nodes[victim].id)") }
                    nodes[victim].disk = SimDisk()
                    nodes[victim].disk.recovering = true
                }
                queue.push(.restart(node: victim), at: time + UInt64(rng.int(1...40)) * Self.tickLength / 2)
            }
        }
        if rng.chance(parameters.faultRate / 4) {
            // A power failure: several servers crash at once, each losing its unsynced writes.
            for victim in nodes.indices where nodes[victim].core != nil && rng.chance(0.7) {
                crash(victim)
                queue.push(.restart(node: victim), at: time + UInt64(rng.int(1...20)) * Self.tickLength / 2)
            }
        }
        if rng.chance(parameters.faultRate / 2) {
            if partition == nil {
                partition = (0..<total).map { _ in rng.int(0...1) }
                if tracing { record("partition \(partition!)") }
                for a in 0..<total {
                    for b in (a + 1)..<max(a + 1, total) where partition![a] != partition![b] {
                        breakChannel(a, b, initiator: nil)
                    }
                }
            } else {
                partition = nil
                if tracing { record("partition healed") }
            }
        }
    }

    mutating func crash(_ node: Int) {
        if tracing { record("crash \(nodes[node].id)") }
        trace.mix(4 &+ UInt64(node) << 8 &+ time << 16)
        nodes[node].core = nil
        nodes[node].incarnation += 1
        nodes[node].syncScheduled = false
        nodes[node].role = .looking
        // Unsynced writes are lost, except a prefix the OS may have written out already.
        let kept = rng.int(0...nodes[node].disk.unsynced.count)
        nodes[node].disk.synced += nodes[node].disk.unsynced.prefix(kept)
        nodes[node].disk.unsynced.removeAll()
        for peer in nodes.indices where peer != node {
            breakChannel(node, peer, initiator: node)
        }
    }

    mutating func restart(_ node: Int) {
        let disk = nodes[node].disk
        if disk.applied > disk.lastSynced {
            checker.fail("t=\(time) \(nodes[node].id): store applied \(disk.applied) beyond its durable log \(disk.lastSynced)")
            return
        }
        let tail = History(base: disk.logBase, entries: disk.synced)
        let durable = ZabDurableState(
            acceptedEpoch: disk.acceptedEpoch, currentEpoch: disk.currentEpoch, history: tail, applied: disk.applied)
        nodes[node].incarnation += 1
        nodes[node].core = ZabCore(config: configs[node], durable: durable)
        nodes[node].role = .looking
        if tracing { record("start \(nodes[node].id) applied \(disk.applied) logged \(disk.lastSynced) epochs \(disk.acceptedEpoch)/\(disk.currentEpoch)") }
        let actions = nodes[node].core!.start(abstaining: disk.recovering)
        execute(actions, on: node)
        queue.push(.tick(node: node, incarnation: nodes[node].incarnation), at: time + UInt64(rng.int(1...Int(Self.tickLength))))
    }

    // MARK: Network

    func channelKey(_ a: Int, _ b: Int) -> Int { min(a, b) * 64 + max(a, b) }

    func reachable(_ a: Int, _ b: Int) -> Bool {
        guard let partition else { return true }
        return partition[a] == partition[b]
    }

    mutating func delay() -> UInt64 {
        rng.chance(parameters.slowRate) ? UInt64(rng.int(5...40)) : UInt64(rng.int(1...3))
    }

    mutating func breakChannel(_ a: Int, _ b: Int, initiator: Int?) {
        let key = channelKey(a, b)
        var channel = channels[key] ?? SimChannel()
        channel.generation += 1
        channel.lastDelivery.removeAll()
        for end in [a, b] where end != initiator {
            channel.unaware.insert(end)
            // The end learns of the break some time later (RST, or a read timeout).
            let after = rng.chance(0.3) ? UInt64(rng.int(10...120)) : UInt64(rng.int(1...10))
            queue.push(.notifyDisconnect(node: end, peer: end == a ? b : a, generation: channel.generation), at: time + after)
        }
        if let initiator { channel.unaware.remove(initiator) }
        channels[key] = channel
    }

    mutating func notify(_ node: Int, about peer: Int, generation: UInt64) {
        let key = channelKey(node, peer)
        guard var channel = channels[key], channel.generation == generation, channel.unaware.contains(node) else { return }
        channel.unaware.remove(node)
        channels[key] = channel
        guard nodes[node].core != nil else { return }
        if tracing { record("\(nodes[node].id) learns its connection to \(nodes[peer].id) broke") }
        trace.mix(5 &+ UInt64(node) << 8 &+ UInt64(peer) << 16)
        let actions = nodes[node].core!.peerDisconnected(nodes[peer].id)
        execute(actions, on: node)
    }

    mutating func send(_ message: Message, from: Int, to: Int) {
        if case .notification = message {
            guard reachable(from, to), !(lossy && rng.chance(parameters.dropRate)) else { return }
            let envelope = Envelope(from: from, to: to, message: message)
            queue.push(.deliver(envelope), at: time + delay())
            if lossy && rng.chance(parameters.duplicateRate) {
                queue.push(.deliver(envelope), at: time + delay())
            }
            return
        }
        let key = channelKey(from, to)
        var channel = channels[key] ?? SimChannel()
        if channel.unaware.contains(from) { return }  // written into a dead connection
        if !reachable(from, to) || nodes[to].core == nil || (lossy && rng.chance(parameters.dropRate / 4)) {
            channels[key] = channel
            breakChannel(from, to, initiator: nil)
            return
        }
        var snapshot: [Proposal]?
        if case .snap(let zxid) = message {
            if nodes[from].disk.applied != zxid {
                checker.fail("t=\(time) \(nodes[from].id) sends SNAP at \(zxid) but its store is at \(nodes[from].disk.applied)")
            }
            snapshot = nodes[from].disk.store
        }
        let at = max(time + delay(), channel.lastDelivery[from] ?? 0)
        channel.lastDelivery[from] = at
        channels[key] = channel
        queue.push(.deliver(Envelope(from: from, to: to, message: message, generation: channel.generation, snapshot: snapshot)), at: at)
    }

    mutating func deliver(_ envelope: Envelope) {
        let to = envelope.to
        guard nodes[to].core != nil else { return }
        if let generation = envelope.generation {
            let key = channelKey(envelope.from, to)
            guard let channel = channels[key], channel.generation == generation else { return }
            if channel.unaware.contains(to) { notify(to, about: envelope.from, generation: generation) }
            guard nodes[to].core != nil else { return }
        } else if !reachable(envelope.from, to) {
            return
        }
        trace.mix(2 &+ UInt64(envelope.from) << 8 &+ UInt64(to) << 16 &+ time << 24)
        if tracing { record("\(nodes[envelope.from].id) -> \(nodes[to].id): \(envelope.message)") }
        currentSnapshot = envelope.snapshot
        currentSnapshotFrom = envelope.from
        let actions = nodes[to].core!.step(envelope.message, from: nodes[envelope.from].id)
        execute(actions, on: to)
        currentSnapshot = nil
    }

    // MARK: Actions

    mutating func execute(_ actions: [Action], on node: Int) {
        for action in actions {
            guard nodes[node].core != nil else { return }
            switch action {
            case .send(let to, let message):
                send(message, from: node, to: Int(to.rawValue) - 1)
            case .disconnect(let peer):
                breakChannel(node, Int(peer.rawValue) - 1, initiator: node)
            case .appendLog(let entries):
                if case .leading = nodes[node].role {
                    for entry in entries { checker.proposed(entry, by: node + 1, at: time) }
                }
                nodes[node].disk.unsynced += entries
                if !nodes[node].syncScheduled {
                    nodes[node].syncScheduled = true
                    let latency = rng.chance(parameters.slowDiskRate) ? rng.int(10...60) : rng.int(1...6)
                    queue.push(.diskSync(node: node, incarnation: nodes[node].incarnation), at: time + UInt64(latency))
                }
            case .truncateLog(let zxid):
                if zxid < nodes[node].disk.applied {
                    checker.fail("t=\(time) \(nodes[node].id) truncates its log to \(zxid) below its store \(nodes[node].disk.applied)")
                }
                nodes[node].disk.synced.removeAll { $0.zxid > zxid }
                nodes[node].disk.unsynced.removeAll { $0.zxid > zxid }
            case .installSnapshot(let from, let zxid):
                guard let snapshot = currentSnapshot, Int(from.rawValue) - 1 == currentSnapshotFrom,
                      (snapshot.last?.zxid ?? .zero) == zxid else {
                    checker.fail("t=\(time) \(nodes[node].id) installs a snapshot at \(zxid) from \(from) that did not come with this message")
                    return
                }
                for (index, entry) in snapshot.enumerated() {
                    checker.applied(entry, index: index, previous: index == 0 ? .zero : snapshot[index - 1].zxid, node: node + 1, at: time)
                }
                nodes[node].disk.store = snapshot
                nodes[node].disk.logBase = zxid
                nodes[node].disk.synced.removeAll()
                nodes[node].disk.unsynced.removeAll()
            case .persistAcceptedEpoch(let epoch):
                nodes[node].disk.acceptedEpoch = epoch
            case .persistCurrentEpoch(let epoch):
                nodes[node].disk.currentEpoch = epoch
            case .commit(let zxid):
                apply(upTo: zxid, on: node)
            case .roleChanged(let role):
                nodes[node].role = role
                if tracing { record("\(nodes[node].id) is now \(role)") }
                trace.mix(6 &+ UInt64(node) << 8)
                if case .leading(let epoch) = role {
                    let disk = nodes[node].disk
                    let history = disk.store + (disk.synced + disk.unsynced).filter { $0.zxid > disk.applied }
                    checker.established(epoch: epoch, node: node + 1, history: history, at: time)
                }
            case .syncCompleted(let id):
                guard let (requester, committedBefore) = pendingSyncs.removeValue(forKey: id) else {
                    checker.fail("t=\(time) \(nodes[node].id) completed sync \(id.rawValue) that was not asked there")
                    return
                }
                if requester != node || nodes[node].disk.store.count < committedBefore {
                    checker.fail("t=\(time) \(nodes[node].id) completed sync \(id.rawValue) with \(nodes[node].disk.store.count) txns applied, \(committedBefore) were committed before it was asked")
                }
            case .recovered:
                nodes[node].disk.recovering = false
            case .leaderEpochBehind:
                break
            case .violation(let problem):
                checker.fail("t=\(time) \(nodes[node].id): protocol violation: \(problem)")
            }
        }
    }

    mutating func apply(upTo zxid: Zxid, on node: Int) {
        var disk = nodes[node].disk
        if zxid > disk.lastSynced {
            checker.fail("t=\(time) \(nodes[node].id) applies up to \(zxid) beyond its durable log \(disk.lastSynced)")
        }
        var fresh: [Proposal] = []
        for entry in (disk.synced + disk.unsynced).reversed() {
            if entry.zxid <= disk.applied { break }
            if entry.zxid <= zxid { fresh.append(entry) }
        }
        for entry in fresh.reversed() {
            checker.applied(entry, index: disk.store.count, previous: disk.applied, node: node + 1, at: time)
            disk.store.append(entry)
        }
        if disk.applied != zxid {
            checker.fail("t=\(time) \(nodes[node].id) was told to apply up to \(zxid) but its log reaches only \(disk.applied)")
        }
        nodes[node].disk = disk
    }
}

