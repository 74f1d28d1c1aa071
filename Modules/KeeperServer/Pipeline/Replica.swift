import DequeModule
import Dispatch
import KeeperModel
import KeeperStore
import KeeperWire
import KeeperZAB
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The durable log as the replica uses it: append a txn's bytes, learn when they are durable,
/// replay after a zxid, cut it back (TRUNC) or empty it (SNAP). KeeperLog implements it.
protocol ReplicaLog: AnyObject, Sendable {
    /// Appends one record; durability is reported through the handler given to `start`.
    /// The record is written once `flush` is called.
    func append(zxid: Zxid, payload: [UInt8]) throws
    /// Gets the appended records written: on the calling thread when `inline` and no batch
    /// is in flight (the durability handler then runs before this returns), otherwise by the
    /// log's writer thread.
    func flush(inline: Bool)
    /// Writes an idle log's batch of at least `minimumRecords` on the calling thread while
    /// the log's writer thread syncs it, running `meanwhile(last, awaitSync)` in between
    /// (`KeeperLog.flush(overlappingSyncOf:_:)`); false when it cannot (nothing was done).
    func flush(overlappingSyncOf minimumRecords: Int, _ meanwhile: (Zxid, @escaping () throws -> Void) -> Void) -> Bool
    /// Starts the log; `onDurable(z)` is called (on any thread) whenever everything up to `z`
    /// is on disk, in increasing order; `onFailure` when a write or sync failed (the records
    /// not yet durable will not be).
    func start(onDurable: @escaping @Sendable (Zxid) -> Void, onFailure: @escaping @Sendable (any Error) -> Void) throws
    /// The newest zxid in the log (durable after open), or zero.
    var lastZxid: Zxid { get }
    /// The newest zxid known durable.
    var lastDurableZxid: Zxid { get }
    /// The zxid just before the oldest record the log still holds (zero when nothing was
    /// purged): a store behind it cannot be brought up to date from this log.
    var oldestZxid: Zxid { get }
    /// Every record after `zxid`, in order, for recovery.
    func forEach(after zxid: Zxid, _ body: (Zxid, [UInt8]) throws -> Void) throws
    /// Drops every record after `zxid` (waits for appends in flight first).
    func truncate(after zxid: Zxid) throws
    /// Drops every record (waits for appends in flight first).
    func reset() throws
    func close() throws
}

/// What a write's submitter learns: the txn as applied (its zxid and result), or that the
/// server could not take it (the log failed, the server lost its leader, or it is shutting down).
public enum WriteOutcome: Sendable {
    case applied(TxnEntry, TxnResult)
    case failed(KeeperErrorCode)
}

/// The store the server serves from. A learner that receives a SNAP replaces it whole; readers
/// that already hold the old one finish on it (LMDB closes it with its last reference).
final class StoreSlot: Sendable {
    private let current: Mutex<KeeperStore>
    init(_ store: KeeperStore) { current = Mutex(store) }
    var store: KeeperStore { current.withLock { $0 } }
    func replace(with store: KeeperStore) { current.withLock { $0 = store } }
}

/// The ensemble as this server sees it (zoo.cfg's `server.N` lines), in ZAB's terms.
struct Ensemble: Sendable {
    var zab: ZabConfig
    var peers: [ServerID: PeerAddress]
    /// Wall-clock milliseconds per core tick: a tenth of `tickTime` (at least 10 ms), so an
    /// election round and failure detection take a fraction of a tick while initLimit and
    /// syncLimit keep their zoo.cfg meaning (they are scaled by the same factor).
    var coreTickMillis: Int
    var isStandalone: Bool { zab.voters.count + zab.observers.count == 1 }

    /// Core ticks per zoo.cfg tick.
    static let ticksPerTick = 10

    init(config: ServerConfig) throws {
        let tickMillis = max(10, config.tickTime / Self.ticksPerTick)
        let scale = max(1, config.tickTime / tickMillis)
        if config.servers.count <= 1 {
            let id = ServerID(UInt64(config.myid ?? config.servers.keys.first ?? 0))
            zab = ZabConfig(myID: id, voters: [id])
            peers = config.servers.first.map { [ServerID(UInt64($0.key)): $0.value] } ?? [:]
        } else {
            guard let myid = config.myid, config.servers[myid] != nil else {
                throw ServerStartError(message: "myid \(config.myid.map(String.init) ?? "missing") is not one of the server.N lines")
            }
            var voters: Set<ServerID> = []
            var observers: Set<ServerID> = []
            var peers: [ServerID: PeerAddress] = [:]
            for (id, address) in config.servers {
                let sid = ServerID(UInt64(id))
                peers[sid] = address
                if address.role == .observer { observers.insert(sid) } else { voters.insert(sid) }
            }
            guard !voters.isEmpty else { throw ServerStartError(message: "every server.N line is an observer: an ensemble needs voters") }
            let me = ServerID(UInt64(myid))
            if config.peerType == .observer && !observers.contains(me) {
                throw ServerStartError(message: "peerType=observer but server.\(myid) is not marked :observer")
            }
            zab = ZabConfig(myID: me, voters: voters, observers: observers)
            self.peers = peers
        }
        zab.initLimit = config.initLimit * scale
        zab.syncLimit = config.syncLimit * scale
        zab.electionResendTicks = max(1, 100 / tickMillis)
        zab.rejoinBackoffTicks = max(1, 1000 / tickMillis)
        // Every server bounds its clients' writes in flight (globalOutstandingLimit); the leader
        // takes those of every server, plus session expiries: it never has to drop a forwarded
        // write (whose client would wait for an answer that never comes).
        zab.maxOutstandingProposals = max(1000, config.globalOutstandingLimit * max(1, config.servers.count)) + 1000
        coreTickMillis = tickMillis
    }
}

/// The replica: the one thread that owns the write path (ARCHITECTURE.md, "One write path")
/// and drives the ZAB core (KeeperZAB) that orders it.
///
/// A write: prep (on the leader, against its committed tree plus the txns in flight) -> txn ->
/// ZAB propose -> log append (group commit) and PROPOSAL to the followers -> ACKs of a quorum
/// (the leader's own once its log is durable) -> COMMIT -> store apply (batched) -> watches ->
/// completions. A follower or observer forwards its clients' writes to the leader (REQUEST)
/// and completes them when the txn with their session and cxid commits. Standalone is an
/// ensemble of one voter: the same path, where the quorum is the server's own log.
///
/// Every mutable field is confined to `loop`; public entry points hop onto it.
public final class Replica: @unchecked Sendable {
    // @unchecked Sendable: all mutable state below is only touched on `loop` (every method that
    // reads or writes it starts with `loop.preconditionInEventLoop()` or runs inside
    // `loop.execute`), so no two threads ever access it at once. `network` is set once in
    // `start` before any event can arrive.
    public let loop: any EventLoop
    let storeSlot: StoreSlot
    var store: KeeperStore { storeSlot.store }
    let log: any ReplicaLog
    let watches: WatchManager
    /// Posts watch events to connections' mailboxes; runs inside the watch lock.
    let deliver: @Sendable ([WatchDelivery]) -> Void
    let wallClock: @Sendable () -> Int64
    let monotonicMillis: @Sendable () -> Int64
    let maxBuffer: Int
    let tickTime: Int
    let logger = Logger(label: "swiftkeeper.replica")
    let ensemble: Ensemble
    let dataDir: String
    let storeConfiguration: StoreConfiguration
    let epochs: EpochFiles
    var myID: ServerID { ensemble.zab.myID }
    private(set) var network: PeerNetwork?

    private var core: ZabCore
    private var role: Role = .looking
    private let prepOptions: Prep.Options
    private var prep: Prep
    private(set) var sessions: SessionTracker
    /// Leader: the server each session is connected to, as last announced (createSession,
    /// REVALIDATE); a write from another server gets SessionMoved.
    private var owners: [SessionID: ServerID] = [:]
    /// Logged txns not yet applied, in zxid order. A deque: applying takes entries from the
    /// front without copying them or shifting the rest (an array's head removal was 5% of the
    /// replica thread at 12x80).
    private var unapplied: Deque<Unapplied> = []
    /// Completions of this server's clients' writes by (session, cxid), oldest first.
    private var waiting: [WaitKey: [@Sendable (WriteOutcome) -> Void]] = [:]
    private var syncs: [UInt64: @Sendable () -> Void] = [:]
    private var nextSyncID: UInt64 = 1
    /// Leader: writes that wait until the history it brought into its epoch is applied, so
    /// prep sees every committed txn.
    private var held: [(WriteRequest, RequestContext, ServerID, (@Sendable (WriteOutcome) -> Void)?)] = []
    private var leaderBase: Zxid = .zero
    /// Learner: sessions whose clients were heard since the last PING to the leader.
    private var touched: Set<SessionID> = []
    private var inboundLinks: [ServerID: UInt64] = [:]
    private var outboundLink: (peer: ServerID, generation: UInt64)?
    private var receiving: (leader: ServerID, zxid: Zxid, sink: SnapshotFileSink)?
    private var lastCommitted: Zxid
    private var failed: KeeperErrorCode?
    private let checkpointInterval: Int
    private var sinceCheckpoint = 0
    /// A store checkpoint runs on `checkpointQueue`: flushing the data file takes tens of
    /// milliseconds under load, and on the replica thread it stalled every write.
    private var checkpointRunning = false
    private let checkpointQueue = DispatchQueue(label: "swiftkeeper.checkpoint")
    private let publishedCommitted = Atomic<Int64>(0)
    private let publishedServing = Atomic<Bool>(false)
    private let published = Mutex<Published>(Published())
    /// Sessions whose closeSession committed: the server closes their connections.
    let onSessionClosed: @Sendable (SessionID) -> Void
    /// The server started (true) or stopped (false) serving clients: on false it closes every
    /// client connection, as ZooKeeper does when its server leaves the quorum.
    let onServingChanged: @Sendable (Bool) -> Void

    struct Unapplied {
        var zxid: Zxid
        var payload: [UInt8]
        var entry: TxnEntry?
        /// The leader's own client's write: answered when this txn is applied (writes from
        /// elsewhere are matched by session and cxid in `waiting`).
        var completion: (@Sendable (WriteOutcome) -> Void)? = nil
    }

    /// A write an event loop submitted, waiting in `intake` for the replica.
    struct Submitted {
        var request: WriteRequest
        var context: RequestContext
        var completion: @Sendable (WriteOutcome) -> Void
    }

    struct WaitKey: Hashable {
        var session: SessionID
        var cxid: Int32
    }

    /// What the reports read without waiting for the replica thread.
    struct Published: Sendable {
        var sessions: [(session: SessionID, expiresAtMillis: Int64)] = []
        var inFlight = 0
        var role: Role = .looking
        var learners: [(id: ServerID, synced: Bool, observer: Bool)] = []
        var electionRound: UInt64 = 0
    }

    public struct Options: Sendable {
        public var tickTime: Int
        public var serverID: Int
        public var prep: Prep.Options
        public var maxBuffer: Int
        /// Txns between store checkpoints (`snapCount`): the store is synced to disk this often.
        public var checkpointInterval: Int = 100_000
        public init(tickTime: Int, serverID: Int, prep: Prep.Options, maxBuffer: Int) {
            self.tickTime = tickTime
            self.serverID = serverID
            self.prep = prep
            self.maxBuffer = maxBuffer
        }
    }

    /// Opens the replica over an opened store and log. The log records after the store's last
    /// applied zxid become the core's history: they are applied once a quorum confirms them
    /// (at once for a standalone server), never before, so a TRUNC from a new leader can still
    /// drop them.
    init(
        loop: any EventLoop, store: StoreSlot, storeConfiguration: StoreConfiguration, dataDir: String,
        log: any ReplicaLog, watches: WatchManager, ensemble: Ensemble, options: Options,
        wallClock: @escaping @Sendable () -> Int64, monotonicMillis: @escaping @Sendable () -> Int64,
        deliver: @escaping @Sendable ([WatchDelivery]) -> Void,
        onSessionClosed: @escaping @Sendable (SessionID) -> Void,
        onServingChanged: @escaping @Sendable (Bool) -> Void
    ) throws {
        self.loop = loop
        self.storeSlot = store
        self.storeConfiguration = storeConfiguration
        self.dataDir = dataDir
        self.log = log
        self.watches = watches
        self.deliver = deliver
        self.wallClock = wallClock
        self.monotonicMillis = monotonicMillis
        self.onSessionClosed = onSessionClosed
        self.onServingChanged = onServingChanged
        self.maxBuffer = options.maxBuffer
        self.checkpointInterval = options.checkpointInterval
        self.prepOptions = options.prep
        self.prep = Prep(options: options.prep)
        self.ensemble = ensemble
        self.epochs = EpochFiles(directory: dataDir)
        self.tickTime = options.tickTime
        self.sessions = SessionTracker(
            tickTime: options.tickTime, serverID: Int(ensemble.zab.myID.rawValue), wallClockMillis: wallClock())

        // Snapshot files a crash left behind (a SNAP being sent or received) are stale.
        for name in try directoryEntries(dataDir) ?? [] where name.hasPrefix("snapshot.outgoing.") || name == "snapshot.incoming" {
            try removeFile(dataDir + "/" + name)
        }
        let applied = try store.store.read { try $0.lastAppliedZxid() }
        guard applied >= log.oldestZxid else {
            throw ServerStartError(
                message: "the store is at zxid \(applied) but the log starts after \(log.oldestZxid): "
                    + "the records in between were purged; restore this data directory from a backup or a peer")
        }
        var entries: [Proposal] = []
        var last = applied
        try log.forEach(after: applied) { zxid, payload in
            precondition(zxid > last, "log record \(zxid) does not follow \(last)")
            last = zxid
            entries.append(Proposal(zxid: zxid, payload: payload))
        }
        unapplied = Deque(entries.map { Unapplied(zxid: $0.zxid, payload: $0.payload, entry: nil) })
        let (accepted, current) = try epochs.load(recording: last.epoch)
        core = ZabCore(
            config: ensemble.zab,
            durable: ZabDurableState(
                acceptedEpoch: accepted, currentEpoch: current, history: History(base: applied, entries: entries), applied: applied))
        lastCommitted = applied
        publishedCommitted.store(applied.rawValue, ordering: .releasing)
        if entries.count > 10_000 {
            logger.notice("\(entries.count) logged txns after the store's zxid \(applied) wait for the quorum to confirm them")
        }
        reloadSessions()
    }

    /// Starts the peer transport, durability notifications, the ZAB core and the ticks.
    ///
    /// The peer connections (quorum and election) live on the replica's own event loop: a
    /// packet read from a peer reaches the core, and a packet the core sends reaches the
    /// socket, without a hop between threads. A 3-node write crosses about eight such hops
    /// (forward, PROPOSAL, ACK, COMMIT, each sent and received); on peer event loops of their
    /// own each cost a wake-up of another thread, and on a virtual machine that is tens of
    /// microseconds (BENCHMARKS.md, ninth round: 3 nodes, 2x8 1.43x to 1.50x the writes/s).
    func start(tickTime: Int) throws {
        var listen: (() throws -> Void)?
        if !ensemble.isStandalone, let me = ensemble.peers[myID] {
            let network = PeerNetwork(
                myID: myID, peers: ensemble.peers, group: loop, maxPacket: max(maxBuffer * 2, 1 << 20),
                logger: Logger(label: "swiftkeeper.peers")
            ) { [weak self] event in
                guard let self else { return }
                // One replica task per burst of peer events (a leader hears an ACK per
                // proposal from every follower), in arrival order. The event arrives on the
                // replica's loop, so this only queues the task behind the current one.
                let first = self.peerInbox.withLock { list in
                    list.append(event)
                    return list.count == 1
                }
                if first { self.loop.execute { self.drainPeerInbox() } }
            }
            self.network = network
            listen = {
                try network.start(quorumHost: me.host, quorumPort: me.quorumPort, electionHost: me.host, electionPort: me.electionPort)
            }
        }
        // The core starts before the ports listen and before durability events flow: nothing
        // may reach it before `start()`.
        let abstaining = !ensemble.isStandalone && access(dataDir + "/" + Self.recoveringMarker, F_OK) == 0
        if abstaining { logger.notice("recovering lost data: not voting until a leader has synchronized this server") }
        try loop.submit { self.execute(self.core.start(abstaining: abstaining)) }.wait()
        try listen?()
        try log.start(
            onDurable: { [weak self] _ in
                guard let self else { return }
                self.loop.execute { self.durable() }
            },
            onFailure: { [weak self] error in
                guard let self else { return }
                self.loop.execute { self.fail(because: error) }
            })
        let coreTick = Int64(ensemble.coreTickMillis)
        loop.scheduleRepeatedTask(initialDelay: .milliseconds(coreTick), delay: .milliseconds(coreTick)) { [weak self] _ in
            guard let self, self.failed == nil else { return }
            self.execute(self.core.tick())
            self.publish()
            self.deliverEarlyLearners()
        }
        loop.scheduleRepeatedTask(initialDelay: .milliseconds(Int64(tickTime)), delay: .milliseconds(Int64(tickTime))) {
            [weak self] _ in self?.expireSessions()
        }
    }

    func shutdown() { network?.shutdown() }

    // MARK: Carrying out the core's actions

    private func execute(_ actions: [Action]) {
        loop.preconditionInEventLoop()
        // The write path's own actions change nothing the reports show (learners' progress is
        // published on the next tick); anything else is published at once.
        var routine = true
        var appended = false
        for action in actions {
            guard failed == nil else { return }
            switch action {
            case .send, .appendLog, .commit: break
            default: routine = false
            }
            switch action {
            case .send(let peer, let message): send(message, to: peer)
            case .disconnect(let peer):
                network?.disconnect(peer)
                inboundLinks.removeValue(forKey: peer)
                if outboundLink?.peer == peer {
                    outboundLink = nil
                    receiving?.sink.abandon()
                    receiving = nil
                }
            case .appendLog(let proposals):
                unflushedRecords += proposals.count
                if !proposals.isEmpty { appended = true }
                for p in proposals {
                    do { try log.append(zxid: p.zxid, payload: p.payload) } catch {
                        fail(because: error)
                        return
                    }
                    var u = Unapplied(zxid: p.zxid, payload: p.payload, entry: nil)
                    if let mine = justPrepared, mine.zxid == p.zxid {
                        u.entry = mine.entry
                        u.completion = mine.completion
                        justPrepared = nil
                    }
                    unapplied.append(u)
                }
            case .truncateLog(let zxid):
                do { try log.truncate(after: zxid) } catch {
                    fail(because: error)
                    return
                }
                while let lastEntry = unapplied.last, lastEntry.zxid > zxid {
                    unapplied.removeLast().completion?(.failed(.connectionLoss))
                }
                logger.notice("log truncated after \(zxid) on the leader's request (TRUNC)")
            case .installSnapshot(let from, let through): installSnapshot(from: from, through: through)
            case .persistAcceptedEpoch(let epoch):
                do { try epochs.storeAccepted(epoch) } catch { fail(because: error) }
            case .persistCurrentEpoch(let epoch):
                do { try epochs.storeCurrent(epoch) } catch { fail(because: error) }
            case .commit(let zxid): commit(upTo: zxid)
            case .roleChanged(let newRole): changeRole(to: newRole)
            case .syncCompleted(let id):
                guard let done = syncs.removeValue(forKey: id.rawValue) else { break }
                if case .leading = role, !ensemble.isStandalone { confirmLeadership(done) } else { done() }
            case .recovered:
                let marker = dataDir + "/" + Self.recoveringMarker
                if unlink(marker) != 0 && errno != ENOENT {
                    fail(because: ServerStartError(message: "cannot remove \(marker): \(String(cString: strerror(errno)))"))
                    return
                }
                do { try syncDirectory(dataDir) } catch { fail(because: error) }
                logger.notice("recovered from the leader: voting again")
            case .violation(let problem):
                logger.warning("peer protocol violation: \(problem)")
            case .leaderEpochBehind(let leader, let leaderEpoch, let acceptedEpoch):
                logger.warning("server.\(leader.rawValue) leads epoch \(leaderEpoch), below the epoch \(acceptedEpoch) this server already accepted: cannot follow it; following it again no sooner than in \(core.config.rejoinBackoffTicks * ensemble.coreTickMillis) ms")
            }
        }
        if appended && !flushScheduled {
            // After the task that appends (a whole drained batch): one flush for all. Queued
            // after the sends of these actions: the peer links pump on this loop, so a leader's
            // PROPOSALs reach the followers' sockets before a flush that syncs inline holds
            // this thread (the core appends before it sends).
            flushScheduled = true
            loop.execute { self.flushLog() }
        }
        if !routine { publish() }
        if !early.isEmpty && !core.isElecting { deliverEarlyLearners() }
    }

    /// The last PROPOSAL encoded for the wire, shared by the sends of that zxid.
    private var lastProposalSent: (zxid: Zxid, bytes: ByteBuffer)?

    private func send(_ message: Message, to peer: ServerID) {
        guard let network else { return }
        switch message {
        case .notification(let n):
            network.sendNotification(PeerMessages.notification(n), to: peer)
        case .followerInfo, .observerInfo:
            if let link = network.connectToLeader(peer, first: PeerMessages.packet(message, myID: myID)) {
                outboundLink = (peer, link.generation)
            }
            receiving?.sink.abandon()
            receiving = nil
        case .snap(let zxid):
            precondition(zxid == lastCommitted, "SNAP at \(zxid) but the store is at \(lastCommitted)")
            // The store as of this very commit: the copy runs here, on the only writer's thread.
            let path = dataDir + "/snapshot.outgoing.\(peer.rawValue).\(network.nextGeneration())"
            do {
                let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
                guard fd >= 0 else { throw ServerStartError(message: "cannot create \(path): \(String(cString: strerror(errno)))") }
                do {
                    try store.snapshot(toFileDescriptor: fd)
                    close(fd)
                } catch {
                    close(fd)
                    throw error
                }
                let source = try SnapshotFileSource(path: path, zxid: zxid)
                network.send(.packet(PeerMessages.packet(message, myID: myID)), to: peer)
                network.send(.snapshot(source), to: peer)
            } catch {
                unlink(path)
                logger.error("cannot send a snapshot to \(peer): \(error)")
                network.disconnect(peer)
                execute(core.peerDisconnected(peer))
            }
        case .ping where outboundLink?.peer == peer:
            // A learner's PING carries the sessions its clients used (ZooKeeper's learner ping:
            // session id and timeout pairs), so the leader can keep them alive.
            var data = ByteBuffer()
            for id in touched {
                data.writeJuteLong(id.rawValue)
                data.writeJuteInt(sessions.session(id)?.timeout ?? 0)
            }
            touched.removeAll(keepingCapacity: true)
            // The zxid field echoes the round of the leader's PING being answered.
            network.send(.packet(QuorumPacket(type: .ping, zxid: Zxid(Int64(bitPattern: leaderPingRound)), data: data)), to: peer)
        case .ping:
            // A leader's PING carries its round number, which the learner's answer echoes.
            network.send(.packet(QuorumPacket(type: .ping, zxid: Zxid(Int64(bitPattern: pingRound)))), to: peer)
        case .proposal(let proposal):
            // The core sends a broadcast PROPOSAL to each follower in turn: encode it once.
            if lastProposalSent?.zxid != proposal.zxid {
                lastProposalSent = (proposal.zxid, PeerMessages.encodedProposal(proposal))
            }
            network.send(.encoded(lastProposalSent!.bytes), to: peer)
        case .sync where outboundLink?.peer != peer:
            // The answer to a learner's sync waits, like our own clients' syncs, until a quorum
            // has confirmed that we still lead.
            let packet = PeerMessages.packet(message, myID: myID)
            confirmLeadership { [network] in network.send(.packet(packet), to: peer) }
        default:
            network.send(.packet(PeerMessages.packet(message, myID: myID)), to: peer)
        }
    }

    /// A flush of the log is queued behind the current task.
    private var flushScheduled = false

    /// Writes what the last tasks appended. Standalone, when the log's writer is idle (a light
    /// load), this thread writes and syncs the batch itself: the write and its durability
    /// event skip two thread hand-offs (about 0.1 ms of wake-ups on a virtual machine). In an
    /// ensemble the replica must stay free for peers' messages meanwhile (inline for every
    /// batch cost 7% at 2x8), so the writer thread writes, except a lone record with no peer
    /// message and no client write waiting: a serial client's, with nothing to overlap
    /// (3 nodes, 1x1: +7.5% writes/s; 2x8 level).
    private func flushLog() {
        flushScheduled = false
        if ensemble.isStandalone && unflushedRecords >= Self.overlapMinimum && core.proposalSlot().next != nil {
            // A large batch: apply it to the store while the disk syncs it. The core learns
            // of durability early, but nothing it decides leaves this thread before the sync:
            // `commit(upTo:)` waits for it inside the store's write, before the store commits
            // and before any reply, watch or session change; a failed sync fails the server.
            unflushedRecords = 0
            let overlapped = log.flush(overlappingSyncOf: Self.overlapMinimum) { last, awaitSync in
                awaitLogSync = awaitSync
                execute(core.logDurable(upTo: last))
                awaitLogSync = nil
            }
            if overlapped { return }
        }
        var inline = ensemble.isStandalone
        if !inline && unflushedRecords == 1 {
            inline = peerInbox.withLock { $0.isEmpty } && intake.withLock { $0.isEmpty }
        }
        unflushedRecords = 0
        log.flush(inline: inline)
    }

    /// Records appended since the last `flushLog`.
    private var unflushedRecords = 0

    /// The smallest standalone batch whose apply overlaps its sync. A small batch's apply is
    /// too short to hide much of the sync, and handing the sync to the writer thread costs
    /// two wake-ups: it is written and synced inline.
    static let overlapMinimum = 32

    /// While a standalone batch's sync runs on the log's writer thread: waits for it (throws
    /// if it failed). `commit(upTo:)` calls it before the store commits.
    private var awaitLogSync: (() throws -> Void)?

    private func durable() {
        let zxid = log.lastDurableZxid
        execute(core.logDurable(upTo: zxid))
    }

    // MARK: Peer events

    /// Peer events read from the peer connections (on this loop), waiting for the replica's
    /// next task, oldest first.
    private let peerInbox = Mutex<[PeerEvent]>([])

    private func drainPeerInbox() {
        var events: [PeerEvent] = []
        peerInbox.withLock { swap(&events, &$0) }
        for event in events { handle(event) }
    }

    private func handle(_ event: PeerEvent) {
        loop.preconditionInEventLoop()
        guard failed == nil else { return }
        switch event {
        case .notification(let from, let raw):
            do {
                execute(core.step(.notification(try PeerMessages.notification(raw)), from: from))
            } catch {
                logger.info("dropped a notification from \(from): \(error)")
            }
        case .packet(let from, let link, let packet):
            switch link.direction {
            case .inbound:
                if let current = inboundLinks[from] {
                    if link.generation < current { return }
                    if link.generation > current { execute(core.peerDisconnected(from)) }
                }
                inboundLinks[from] = link.generation
            case .outbound:
                guard let current = outboundLink, current.peer == from, current.generation == link.generation else { return }
            }
            do {
                try receive(packet, from: from)
            } catch {
                logger.warning("closing the connection with \(from): \(error)")
                network?.disconnect(from)
                closeLink(from, link)
            }
        case .closed(let peer, let link):
            closeLink(peer, link)
        case .electionPeerConnected(let peer):
            // Tell a peer that just came up our vote at once, as ZooKeeper's connection manager
            // does, instead of at our next re-send: otherwise two servers that start together
            // may settle on a leader between themselves before they hear a better candidate.
            if core.isElecting {
                network?.sendNotification(PeerMessages.notification(Notification(vote: core.currentVote, state: .looking)), to: peer)
            }
        }
    }

    private func closeLink(_ peer: ServerID, _ link: PeerLinkID) {
        switch link.direction {
        case .inbound:
            guard inboundLinks[peer] == link.generation else { return }
            inboundLinks.removeValue(forKey: peer)
        case .outbound:
            guard let current = outboundLink, current.peer == peer, current.generation == link.generation else { return }
            outboundLink = nil
            receiving?.sink.abandon()
            receiving = nil
        }
        execute(core.peerDisconnected(peer))
    }

    private func receive(_ packet: QuorumPacket, from peer: ServerID) throws {
        if let r = receiving, r.leader == peer {
            guard packet.type == .snap, let data = packet.data else {
                throw PeerProtocolError("expected the snapshot stream after SNAP, got \(packet.type)")
            }
            if data.readableBytes == 0 {
                try r.sink.finish()
                logger.notice("received a snapshot at \(r.zxid) from \(peer) (\(r.sink.bytes) bytes)")
                execute(core.step(.snap(r.zxid), from: peer))
                // installSnapshot moved the file in; a leftover (the core refused it) goes.
                unlink(r.sink.path)
                receiving = nil
            } else {
                try r.sink.append(try SnapshotStream.decodeChunk(data))
            }
            return
        }
        switch packet.type {
        case .snap where outboundLink?.peer == peer && packet.data == nil:
            let sink = try SnapshotFileSink(path: dataDir + "/snapshot.incoming", zxid: packet.zxid)
            receiving = (peer, packet.zxid, sink)
            return
        case .ping:
            if outboundLink?.peer == peer {
                leaderPingRound = UInt64(bitPattern: packet.zxid.rawValue)
            } else {
                confirmedRound[peer] = max(confirmedRound[peer] ?? 0, UInt64(bitPattern: packet.zxid.rawValue))
                if var data = packet.data {
                    // A learner's sessions: keep them alive.
                    let now = monotonicMillis()
                    while let id = data.readInteger(as: Int64.self), data.readInteger(as: Int32.self) != nil {
                        _ = sessions.touch(SessionID(id), now: now)
                    }
                }
                checkConfirmations()
            }
        case .revalidate:
            guard case .leading = role, var data = packet.data, let id = data.readInteger(as: Int64.self) else { return }
            owners[SessionID(id)] = peer
            _ = sessions.touch(SessionID(id), now: monotonicMillis())
            return
        case .request:
            guard let data = packet.data else { throw PeerProtocolError("REQUEST without data") }
            let forwarded = try ForwardedWrite(decoding: Array(data.readableBytesView), maxLength: max(maxBuffer * 2, 1 << 20))
            guard case .leading = role else { return }  // the learner's client sees its connection close
            leaderPropose(forwarded.request, context: forwarded.context, origin: ServerID(forwarded.origin), completion: nil)
            return
        case .followerInfo where core.isElecting, .observerInfo where core.isElecting:
            // A learner that finished the election a moment before us: hold its first packet
            // until we know whether we lead (the core would turn it away while electing, and
            // the learner would start another election round).
            early[peer] = (inboundLinks[peer] ?? 0, packet, core.now)
            return
        default:
            break
        }
        execute(core.step(try PeerMessages.message(packet), from: peer))
    }

    /// First packets of learners that connected while this server was still electing.
    private var early: [ServerID: (generation: UInt64, packet: QuorumPacket, at: UInt64)] = [:]

    /// Hands held first packets to the core once the election is over (or drops them after
    /// initLimit, when the learner has given up on us).
    private func deliverEarlyLearners() {
        guard !early.isEmpty else { return }
        if core.isElecting {
            early = early.filter { core.now - $0.value.at <= UInt64(ensemble.zab.initLimit) }
            return
        }
        let held = early
        early.removeAll()
        for (peer, item) in held.sorted(by: { $0.key < $1.key }) where inboundLinks[peer] == item.generation {
            do {
                execute(core.step(try PeerMessages.message(item.packet), from: peer))
            } catch {
                logger.warning("dropped a held packet from \(peer): \(error)")
            }
        }
    }

    // MARK: Writes

    /// The txn leaderPropose just prepped, until the core's appendLog for its zxid takes it
    /// (saves decoding it again, and carries its completion).
    private var justPrepared: (zxid: Zxid, entry: TxnEntry, completion: (@Sendable (WriteOutcome) -> Void)?)?

    /// Writes the event loops submitted, in submission order; the replica takes them all in
    /// one task (one hop and one store read transaction per batch instead of per write).
    private let intake = Mutex<[Submitted]>([])

    /// Submits a write; `completion` runs on the replica's loop once it is applied.
    ///
    /// Order: a write submitted before another request hops to the replica (closeSession,
    /// sync) is proposed before that request runs: the drain task of a non-empty intake was
    /// scheduled before it, and the loop runs tasks in order.
    public func submit(
        _ request: WriteRequest, context: RequestContext, completion: @escaping @Sendable (WriteOutcome) -> Void
    ) {
        let first = intake.withLock { list in
            list.append(Submitted(request: request, context: context, completion: completion))
            return list.count == 1
        }
        if first { loop.execute { self.drainIntake() } }
    }

    private func drainIntake() {
        var batch: [Submitted] = []
        intake.withLock { swap(&batch, &$0) }
        guard case .leading = role, failed == nil, batch.count > 1 else {
            for s in batch { propose(s.request, context: s.context, completion: s.completion) }
            return
        }
        // The leader preps the whole batch against one read transaction: nothing is applied
        // to the store while it runs, and prep sees the txns in flight itself.
        var next = 0
        do {
            try store.read { view in
                while next < batch.count {
                    let s = batch[next]
                    next += 1
                    propose(s.request, context: s.context, completion: s.completion, view: view)
                }
            }
        } catch {
            fail(because: error)
        }
        while next < batch.count {
            batch[next].completion(.failed(failed ?? .systemError))
            next += 1
        }
    }

    private func propose(
        _ request: WriteRequest, context: RequestContext, completion: (@Sendable (WriteOutcome) -> Void)?,
        view: StoreView? = nil
    ) {
        loop.preconditionInEventLoop()
        if let failed {
            completion?(.failed(failed))
            return
        }
        switch role {
        case .leading:
            leaderPropose(request, context: context, origin: myID, completion: completion, view: view)
        case .following, .observing:
            let payload = ForwardedWrite(origin: myID.rawValue, context: context, request: request).encode()
            let actions = core.forward(payload)
            guard !actions.isEmpty else {
                completion?(.failed(.connectionLoss))
                return
            }
            if let completion { waiting[WaitKey(session: context.session, cxid: context.cxid), default: []].append(completion) }
            if case .closeSession = request { sessions.markClosing(context.session) }
            execute(actions)
        case .looking:
            completion?(.failed(.connectionLoss))
        }
    }

    private func leaderPropose(
        _ request: WriteRequest, context: RequestContext, origin: ServerID, completion: (@Sendable (WriteOutcome) -> Void)?,
        view: StoreView? = nil
    ) {
        // Held in order while the history this leader brought into its epoch is not applied
        // yet (prep must see it), and while the proposals in flight are at their bound (the
        // connections' own limits throttle the clients; a burst already read is held here,
        // never answered with an error).
        let slot = core.proposalSlot()
        if lastCommitted < leaderBase || !held.isEmpty || slot.outstanding >= ensemble.zab.maxOutstandingProposals {
            held.append((request, context, origin, completion))
            return
        }
        guard let zxid = slot.next else {
            // The epoch's counter is used up: the core steps down to start a new epoch.
            do {
                _ = try core.propose([])
            } catch {
                if case .zxidCounterExhausted(let actions) = error { execute(actions) }
            }
            completion?(.failed(.connectionLoss))
            return
        }
        let time = wallClock()
        var txn: Txn
        do {
            if let view {
                txn = prep.prepare(request, context: context, zxid: zxid.rawValue, time: time, tree: ViewTree(view: view))
            } else {
                txn = try store.read { view in
                    prep.prepare(request, context: context, zxid: zxid.rawValue, time: time, tree: ViewTree(view: view))
                }
            }
        } catch {
            fail(because: error)
            completion?(.failed(.systemError))
            return
        }
        switch request {
        case .createSession:
            owners[context.session] = origin
        default:
            // ZooKeeper's PrepRequestProcessor.checkSession: a session now owned by another server.
            if let owner = owners[context.session], owner != origin { txn = .error(.sessionMoved) }
        }
        let entry = TxnEntry(
            header: TxnHeader(clientID: context.session, cxid: context.cxid, zxid: zxid, time: time, type: txn.opCode),
            txn: txn)
        // One allocation sized for the txn (no realloc while it is written), one copy out.
        var buffer = ByteBufferAllocator().buffer(capacity: TxnCodec.sizeHint(txn))
        TxnCodec.write(entry, to: &buffer)
        let payload = buffer.withUnsafeReadableBytes { [UInt8]($0) }
        let actions: [Action]
        do {
            let (assigned, proposed) = try core.propose(payload)
            precondition(assigned == zxid, "the core assigned \(assigned), prep used \(zxid)")
            actions = proposed
        } catch {
            preconditionFailure("propose refused after its checks passed: \(error)")
        }
        if case .closeSession = txn { sessions.markClosing(context.session) }
        justPrepared = (zxid, entry, completion)
        execute(actions)
        if let unlogged = justPrepared {
            // No appendLog for it (the core stepped down meanwhile, and the writes waiting were
            // failed then): it is answered the same way; a leader still leading (never seen)
            // would answer it by session and cxid when the txn commits.
            justPrepared = nil
            if let completion = unlogged.completion {
                if case .leading = role, failed == nil {
                    waiting[WaitKey(session: context.session, cxid: context.cxid), default: []].append(completion)
                } else {
                    completion(.failed(failed ?? .connectionLoss))
                }
            }
        }
    }

    /// A request that must not be answered before this server has applied every write the
    /// leader had when it saw it (`sync`: ZooKeeper's guarantee that a read after sync sees
    /// every write completed before the sync was issued).
    public func barrier(_ done: @escaping @Sendable () -> Void) {
        loop.execute {
            let id = self.nextSyncID
            self.nextSyncID += 1
            guard let actions = self.core.requestSync(SyncID(id)) else {
                done()
                return
            }
            self.syncs[id] = done
            self.execute(actions)
        }
    }

    private func fail(because error: any Error) {
        guard failed == nil else { return }
        failed = .systemError
        // The log or store can no longer be trusted: refuse further writes, answer what is
        // pending with an error, leave the ensemble. Operators see the cause in the server log.
        logger.critical("replica stopped", metadata: ["error": "\(error)"])
        network?.shutdown()
        failWaiting(.systemError)
        if publishedServing.exchange(false, ordering: .acquiringAndReleasing) { onServingChanged(false) }
    }

    private func failWaiting(_ code: KeeperErrorCode) {
        let pending = waiting
        waiting.removeAll()
        for list in pending.values { for c in list { c(.failed(code)) } }
        failUnappliedCompletions(code)
        let heldWrites = held
        held.removeAll()
        for h in heldWrites { h.3?(.failed(code)) }
        // Syncs are dropped unanswered: an answer now could claim a state this server can no
        // longer vouch for, and their connections are being closed.
        syncs.removeAll()
        awaitingConfirmation.removeAll()
    }

    /// Answers the leader's own writes still in the log with `code`; their txns stay.
    private func failUnappliedCompletions(_ code: KeeperErrorCode) {
        var i = 0
        while i < unapplied.count {
            if let completion = unapplied[i].completion {
                unapplied[i].completion = nil
                completion(.failed(code))
            }
            i += 1
        }
    }

    // MARK: Confirming leadership (sync)

    /// Leader: the round of PINGs last sent; learners echo it in their answers.
    private var pingRound: UInt64 = 0
    /// Learner: the round of the leader's last PING.
    private var leaderPingRound: UInt64 = 0
    /// Leader: the newest round each learner answered.
    private var confirmedRound: [ServerID: UInt64] = [:]
    /// Leader: work that waits until a quorum answered a round at least this one.
    private var awaitingConfirmation: [(round: UInt64, run: @Sendable () -> Void)] = []

    /// Runs `body` once a quorum of voters has answered a PING sent after this call: proof
    /// that no other leader was elected meanwhile, so a sync answered now sees every write
    /// acknowledged before it (a leader that was paused and deposed must not answer from its
    /// stale state, which ZooKeeper 3.8 does; Raft's ReadIndex makes the same check).
    private func confirmLeadership(_ body: @escaping @Sendable () -> Void) {
        pingRound += 1
        awaitingConfirmation.append((pingRound, body))
        if let network {
            for learner in core.learnerStatus {
                network.send(.packet(QuorumPacket(type: .ping, zxid: Zxid(Int64(bitPattern: pingRound)))), to: learner.id)
            }
        }
        checkConfirmations()
    }

    private func checkConfirmations() {
        guard !awaitingConfirmation.isEmpty, case .leading = role else { return }
        let voters = core.learnerStatus.filter { $0.synced && !$0.observer }.map { confirmedRound[$0.id] ?? 0 }.sorted(by: >)
        // The round a quorum (this leader and quorumSize - 1 learners) has answered.
        let needed = ensemble.zab.quorumSize - 1
        let confirmed = needed == 0 ? pingRound : (voters.count >= needed ? voters[needed - 1] : 0)
        while let first = awaitingConfirmation.first, first.round <= confirmed {
            awaitingConfirmation.removeFirst()
            first.run()
        }
    }

    private func changeRole(to newRole: Role) {
        let wasServing = role != .looking
        role = newRole
        let serving = newRole != .looking
        switch newRole {
        case .leading:
            prep = Prep(options: prepOptions)
            leaderBase = core.history.last
            owners.removeAll()
            confirmedRound.removeAll()
            // Every session gets a full timeout from now (ZooKeeper's new leader does the same:
            // its learners' clients may have been cut off during the election).
            let now = monotonicMillis()
            for id in Array(sessions.sessions.keys) { _ = sessions.touch(id, now: now) }
            logger.notice("leading", metadata: ["epoch": "\(core.currentEpoch)", "zxid": "\(core.history.last)"])
        case .following(let leader, _), .observing(let leader, _):
            logger.notice("\(newRole == .looking ? "" : "following") \(leader)")
        case .looking:
            logger.notice("looking for a leader")
        }
        if wasServing && !serving { failWaiting(.connectionLoss) }
        if wasServing != serving {
            publishedServing.store(serving, ordering: .releasing)
            onServingChanged(serving)
        }
    }

    private func commit(upTo zxid: Zxid) {
        loop.preconditionInEventLoop()
        var batch: [TxnEntry] = []
        var completions: [(@Sendable (WriteOutcome) -> Void)?] = []
        while !unapplied.isEmpty && unapplied[0].zxid <= zxid {
            let u = unapplied.removeFirst()
            completions.append(u.completion)
            if let entry = u.entry {
                batch.append(entry)
            } else {
                var buffer = ByteBuffer()
                buffer.writeBytes(u.payload)
                do {
                    let (entry, _) = try TxnCodec.decode(buffer, maxLength: Int.max / 2)
                    precondition(entry.zxid == u.zxid, "log record \(u.zxid) holds txn \(entry.zxid)")
                    batch.append(entry)
                } catch {
                    fail(because: error)
                    return
                }
            }
        }
        guard !batch.isEmpty else { return }
        let results: [TxnResult]
        do {
            (results, _) = try watches.commitAndTrigger({
                let results = try store.write { writer in
                    let results = try batch.map { try writer.apply($0) }
                    try awaitLogSync?()
                    return results
                }
                var changes: [(change: TreeChange, zxid: Int64)] = []
                for r in results { Self.collect(r, into: &changes) }
                return (results, changes)
            }, post: deliver)
        } catch {
            fail(because: error)
            return
        }
        lastCommitted = results.last?.zxid ?? lastCommitted
        publishedCommitted.store(lastCommitted.rawValue, ordering: .releasing)
        prep.applied(upTo: lastCommitted.rawValue)
        sinceCheckpoint += results.count
        if sinceCheckpoint >= checkpointInterval && !checkpointRunning {
            // The store commits without syncing (the log is the source of truth); a checkpoint
            // bounds what an OS crash can take from it. Writes go on while it flushes.
            sinceCheckpoint = 0
            checkpointRunning = true
            let store = self.store
            checkpointQueue.async { [weak self] in
                let result = Result { try store.sync() }
                guard let self else { return }
                self.loop.execute {
                    self.checkpointRunning = false
                    // A store replaced meanwhile (SNAP, restore) may have lost its directory
                    // under the flush; only the store in use matters.
                    if case .failure(let error) = result, self.store === store { self.fail(because: error) }
                }
            }
        }
        let now = monotonicMillis()
        for (i, (entry, result)) in zip(batch, results).enumerated() {
            let session = entry.header.clientID
            switch entry.txn {
            case .createSession(let t):
                sessions.add(session, timeout: t.timeOut, now: now)
            case .closeSession:
                sessions.remove(session)
                owners.removeValue(forKey: session)
                onSessionClosed(session)
            default:
                break
            }
            if let completion = completions[i] {
                completion(.applied(entry, result))
                continue
            }
            guard !waiting.isEmpty else { continue }
            let key = WaitKey(session: session, cxid: entry.header.cxid)
            if var list = waiting[key], !list.isEmpty {
                let completion = list.removeFirst()
                if list.isEmpty { waiting.removeValue(forKey: key) } else { waiting[key] = list }
                completion(.applied(entry, result))
            }
        }
        if !held.isEmpty && lastCommitted >= leaderBase, case .leading = role {
            let writes = held
            held.removeAll()
            // Proposes until the bound, holding the rest again in their order.
            for (request, context, origin, completion) in writes {
                leaderPropose(request, context: context, origin: origin, completion: completion)
            }
        }
    }

    /// Replaces the store with the snapshot received after SNAP, and empties the log: every
    /// txn after the snapshot comes from the leader next (ZooKeeper's Learner.syncWithLeader).
    /// Crash-safe order: the log is emptied first (the old store alone is still a committed
    /// prefix), then the new store is moved in with renames that `KeeperServer.openStore`
    /// finishes if a crash cuts them short.
    private func installSnapshot(from leader: ServerID, through zxid: Zxid) {
        guard let r = receiving, r.zxid == zxid else {
            fail(because: ServerStartError(message: "installSnapshot at \(zxid) without a received snapshot"))
            return
        }
        do {
            try replaceStore(at: zxid, what: "the snapshot from \(leader)") { incoming in
                guard mkdir(incoming, 0o750) == 0 else {
                    throw ServerStartError(message: "cannot create \(incoming): \(String(cString: strerror(errno)))")
                }
                guard rename(r.sink.path, incoming + "/" + KeeperStore.dataFileName) == 0 else {
                    throw ServerStartError(message: "cannot move the snapshot into \(incoming): \(String(cString: strerror(errno)))")
                }
                try syncDirectory(incoming)
            }
        } catch {
            fail(because: error)
        }
    }

    /// Replaces the log and the store with a store at `zxid` that `stage` puts into
    /// `store.incoming` (complete and synced). Crash-safe order: the log is emptied first, so
    /// no record of the old history is ever replayed onto the new store; then the store moves
    /// in with renames that `KeeperServer.openStore` finishes if a crash cuts them short.
    private func replaceStore(at zxid: Zxid, what: String, stage: (_ incoming: String) throws -> Void) throws {
        try log.reset()
        failUnappliedCompletions(.connectionLoss)
        unapplied.removeAll()
        let directory = dataDir + "/store"
        try removeDirectory(directory + ".incoming")
        try stage(directory + ".incoming")
        try Self.swapInIncomingStore(dataDir: dataDir)
        let fresh = try KeeperStore(directory: directory, configuration: storeConfiguration)
        let applied = try fresh.lastAppliedZxid()
        guard applied == zxid else {
            throw ServerStartError(message: "\(what) is at zxid \(applied), expected \(zxid)")
        }
        storeSlot.replace(with: fresh)
        try removeDirectory(directory + ".old")
        lastCommitted = zxid
        publishedCommitted.store(zxid.rawValue, ordering: .releasing)
        prep = Prep(options: prepOptions)
        reloadSessions()
    }

    /// The admin `restore` command: replaces the whole state of a standalone server with the
    /// store prepared in the directory `prepared` (a complete, checked, synced LMDB snapshot
    /// at `zxid`).
    /// Clients are disconnected, writes in flight fail, the log is emptied, the store swapped
    /// in, and the server starts a new epoch on it (ZooKeeper 3.9's `restore` also replaces the
    /// server's database wholesale). An ensemble member refuses: restoring one member under a
    /// running quorum would fork the history (see the README's restore runbook).
    func restore(from prepared: String, to zxid: Zxid, completion: @escaping @Sendable (Result<Zxid, any Error>) -> Void) {
        loop.execute {
            guard self.ensemble.isStandalone else {
                completion(.failure(ServerStartError(
                    message: "restore is refused on an ensemble member: stop the ensemble, restore one server with keeperctl restore, wipe the others' data directories (keep myid) and start them all; they synchronize from it")))
                return
            }
            guard self.failed == nil else {
                completion(.failure(ServerStartError(message: "the server stopped accepting writes after an error; restart it first")))
                return
            }
            if self.publishedServing.exchange(false, ordering: .acquiringAndReleasing) { self.onServingChanged(false) }
            self.role = .looking
            self.failWaiting(.connectionLoss)
            do {
                try self.replaceStore(at: zxid, what: "the restored store") { incoming in
                    guard rename(prepared, incoming) == 0 else {
                        throw ServerStartError(message: "cannot move \(prepared) to \(incoming): \(String(cString: strerror(errno)))")
                    }
                    try syncDirectory(self.dataDir)
                }
                let (accepted, current) = try self.epochs.load(recording: zxid.epoch)
                self.core = ZabCore(
                    config: self.ensemble.zab,
                    durable: ZabDurableState(
                        acceptedEpoch: accepted, currentEpoch: current, history: History(base: zxid, entries: []),
                        applied: zxid))
                self.execute(self.core.start())
                self.logger.notice("restored the store at \(zxid) through the admin restore command")
                completion(.success(zxid))
            } catch {
                self.fail(because: error)
                completion(.failure(error))
            }
        }
    }

    /// The file in the data directory that says this server lost its data and must not vote
    /// before a leader synchronized it (see `ZabCore.abstaining`).
    static let recoveringMarker = "recovering"

    static func markRecovering(dataDir: String) throws {
        let path = dataDir + "/" + recoveringMarker
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw ServerStartError(message: "cannot create \(path): \(String(cString: strerror(errno)))") }
        let synced = fsync(fd)
        close(fd)
        guard synced == 0 else { throw ServerStartError(message: "cannot fsync \(path): \(String(cString: strerror(errno)))") }
        try syncDirectory(dataDir)
    }

    /// Moves `store.incoming` (a complete, synced snapshot) into place as `store`; the old
    /// store goes to `store.old`. Idempotent, so startup can finish an interrupted swap.
    static func swapInIncomingStore(dataDir: String) throws {
        let directory = dataDir + "/store"
        let incoming = directory + ".incoming"
        let old = directory + ".old"
        try removeDirectory(old)
        if rename(directory, old) != 0 && errno != ENOENT {
            throw ServerStartError(message: "cannot move \(directory) aside: \(String(cString: strerror(errno)))")
        }
        guard rename(incoming, directory) == 0 else {
            throw ServerStartError(message: "cannot move \(incoming) to \(directory): \(String(cString: strerror(errno)))")
        }
        try syncDirectory(dataDir)
    }

    private func reloadSessions() {
        sessions = SessionTracker(tickTime: tickTime, serverID: Int(myID.rawValue), wallClockMillis: wallClock())
        let now = monotonicMillis()
        do {
            for s in try store.read({ try $0.sessions() }) { sessions.add(s.sessionID, timeout: s.timeout, now: now) }
        } catch {
            fail(because: error)
        }
    }

    static func collect(_ result: TxnResult, into changes: inout [(change: TreeChange, zxid: Int64)]) {
        for c in result.changes {
            switch c {
            case .created(let p): changes.append((.created(p), result.zxid.rawValue))
            case .deleted(let p): changes.append((.deleted(p), result.zxid.rawValue))
            case .dataChanged(let p): changes.append((.dataChanged(p), result.zxid.rawValue))
            case .childrenChanged: break  // derived from created/deleted, as ZooKeeper's DataTree does
            }
        }
        if result.changes.isEmpty { for r in result.multi { collect(r, into: &changes) } }
    }

    // MARK: Sessions

    /// Creates a session: a createSession txn through the write path (it consumes a zxid, is
    /// known to every server of the ensemble, and survives restarts), answered once applied.
    public func createSession(timeout: Int32, completion: @escaping @Sendable (SessionID?) -> Void) {
        loop.execute {
            let id = self.sessions.allocateID()
            self.propose(
                .createSession(timeout: timeout), context: RequestContext(session: id, cxid: 0, authIds: [])
            ) { outcome in
                switch outcome {
                case .applied(_, let result) where result.error == .ok: completion(id)
                case .applied, .failed: completion(nil)
                }
            }
        }
    }

    /// Revalidates a reconnecting session: its timeout if it is alive, nil if it expired. The
    /// session now belongs to this server; the leader learns it (REVALIDATE), so a write
    /// still arriving through the server it left gets SessionMoved.
    public func revalidate(_ id: SessionID, completion: @escaping @Sendable (Int32?) -> Void) {
        loop.execute {
            guard self.role != .looking, let s = self.sessions.session(id), !s.isClosing else {
                completion(nil)
                return
            }
            _ = self.sessions.touch(id, now: self.monotonicMillis())
            switch self.role {
            case .leading:
                self.owners[id] = self.myID
            case .following(let leader, _), .observing(let leader, _):
                self.touched.insert(id)
                var data = ByteBuffer()
                data.writeJuteLong(id.rawValue)
                data.writeJuteInt(s.timeout)
                self.network?.send(.packet(QuorumPacket(type: .revalidate, zxid: .zero, data: data)), to: leader)
            case .looking:
                break
            }
            completion(s.timeout)
        }
    }

    /// Records that a session's client was heard from (called in batches by the connections).
    public func touch(_ ids: [SessionID]) {
        loop.execute {
            let now = self.monotonicMillis()
            for id in ids {
                _ = self.sessions.touch(id, now: now)
                if case .leading = self.role {} else { self.touched.insert(id) }
            }
        }
    }

    private func expireSessions() {
        loop.preconditionInEventLoop()
        let wallOffset = wallClock() - monotonicMillis()
        let snapshot = sessions.sessions.values.map { (session: $0.id, expiresAtMillis: $0.expiresAt + wallOffset) }
        published.withLock {
            $0.sessions = snapshot
            $0.inFlight = core.outstandingProposals
        }
        // Only the leader expires sessions; learners keep theirs alive through PINGs.
        guard case .leading = role, lastCommitted >= leaderBase else { return }
        for id in sessions.expire(now: monotonicMillis()) {
            leaderPropose(.closeSession, context: RequestContext(session: id, cxid: 0, authIds: []), origin: owners[id] ?? myID, completion: nil)
        }
    }

    /// Closes a session at its client's request; `completion` once applied.
    public func closeSession(_ id: SessionID, completion: @escaping @Sendable (WriteOutcome) -> Void) {
        loop.execute {
            self.propose(.closeSession, context: RequestContext(session: id, cxid: 0, authIds: []), completion: completion)
        }
    }

    private func publish() {
        let role = self.role
        let learners = core.learnerStatus
        let round = core.electionRound
        published.withLock {
            $0.role = role
            $0.learners = learners
            $0.electionRound = round
        }
    }

    /// The zxid of the newest applied txn (replies report it in their ReplyHeader), published
    /// after each store commit so the event loops need no LMDB transaction to learn it.
    public var committedZxid: Zxid { Zxid(publishedCommitted.load(ordering: .acquiring)) }

    /// Whether this server serves clients now (it leads, follows or observes an established
    /// leader); a server looking for a leader refuses them, as ZooKeeper's does.
    public var isServing: Bool { publishedServing.load(ordering: .acquiring) }

    /// Sessions with their expiry (wall-clock ms), proposals in flight, role and learners, as of
    /// the last tick: what the four-letter words report without waiting for the replica thread.
    var lastPublished: Published { published.withLock { $0 } }
}

/// The committed tree for prep, read through one store view.
struct ViewTree: CommittedTree {
    let view: StoreView
    func record(_ path: String) -> NodeRecord? {
        // No node can have an invalid path (the store would normalise "//a" to "/a").
        guard ZNodePath.isValid(path) else { return nil }
        do {
            guard let r = try view.aclAndChildCreates(at: path) else { return nil }
            return NodeRecord(stat: r.stat, childCreates: r.childCreates, acl: r.acl)
        } catch {
            preconditionFailure("store read failed during prep: \(error)")
        }
    }
    func ephemerals(of session: SessionID) -> [String] {
        do { return try view.ephemerals(of: session) } catch { preconditionFailure("store read failed during prep: \(error)") }
    }
}
