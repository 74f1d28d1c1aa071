import KeeperModel
import KeeperStore
import KeeperWire
import Logging
import NIOCore
import Synchronization

/// The durable log as the replica uses it: append a txn's bytes, learn when they are durable,
/// replay after a zxid. KeeperLog implements it in production; the same replica code runs
/// over it in tests.
public protocol ReplicaLog: AnyObject, Sendable {
    /// Appends one record; durability is reported through the handler given to `start`.
    func append(zxid: Zxid, payload: [UInt8]) throws
    /// Starts the log; `onDurable(z)` is called (on any thread) whenever everything up to `z`
    /// is on disk, in increasing order; `onFailure` when a write or sync failed (the records
    /// not yet durable will not be).
    func start(onDurable: @escaping @Sendable (Zxid) -> Void, onFailure: @escaping @Sendable (any Error) -> Void) throws
    /// The newest zxid in the log (durable after open), or zero.
    var lastZxid: Zxid { get }
    /// The zxid just before the oldest record the log still holds (zero when nothing was
    /// purged): a store behind it cannot be brought up to date from this log.
    var oldestZxid: Zxid { get }
    /// Every record after `zxid`, in order, for recovery.
    func forEach(after zxid: Zxid, _ body: (Zxid, [UInt8]) throws -> Void) throws
    func close() throws
}

/// What a write's submitter learns: the txn as applied (its zxid and result), or that the
/// server could not take it (the log failed, or the server is shutting down).
public enum WriteOutcome: Sendable {
    case applied(TxnEntry, TxnResult)
    case failed(KeeperErrorCode)
}

/// The replica: the one thread that owns the write path (ARCHITECTURE.md, "One write path").
/// prep -> txn -> log append (group commit) -> durable -> store apply (batched) -> watches ->
/// completions. Standalone is an ensemble of one: a txn commits when its own log has it.
///
/// Every mutable field is confined to `loop`; public entry points hop onto it.
public final class Replica: @unchecked Sendable {
    // @unchecked Sendable: all mutable state below is only touched on `loop` (every method that
    // reads or writes it starts with `loop.preconditionInEventLoop()` or runs inside
    // `loop.execute`), so no two threads ever access it at once.
    public let loop: any EventLoop
    let store: KeeperStore
    let log: any ReplicaLog
    let watches: WatchManager
    /// Posts watch events to connections' mailboxes; runs inside the watch lock.
    let deliver: @Sendable ([WatchDelivery]) -> Void
    let wallClock: @Sendable () -> Int64
    let monotonicMillis: @Sendable () -> Int64
    let maxBuffer: Int
    let logger = Logger(label: "swiftkeeper.replica")

    private var prep: Prep
    private(set) var sessions: SessionTracker
    private var lastProposed: Zxid
    private var lastCommitted: Zxid
    private var pending: [Proposal] = []
    private var pendingHead = 0
    private var barriers: [(after: Zxid, done: @Sendable () -> Void)] = []
    private var failed: KeeperErrorCode?
    private let checkpointInterval: Int
    private var sinceCheckpoint = 0
    private let publishedCommitted = Atomic<Int64>(0)
    private let published = Mutex<(sessions: [(session: SessionID, expiresAtMillis: Int64)], inFlight: Int)>(([], 0))
    /// Sessions whose closeSession committed: the server closes their connections.
    let onSessionClosed: @Sendable (SessionID) -> Void

    struct Proposal {
        var entry: TxnEntry
        var completion: (@Sendable (WriteOutcome) -> Void)?
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

    /// Opens the replica over an opened store and log: replays the log after the store's last
    /// applied zxid (the store is a materialized view of the log), then revives the sessions
    /// the store records, each with a full timeout from now.
    public init(
        loop: any EventLoop, store: KeeperStore, log: any ReplicaLog, watches: WatchManager, options: Options,
        wallClock: @escaping @Sendable () -> Int64, monotonicMillis: @escaping @Sendable () -> Int64,
        deliver: @escaping @Sendable ([WatchDelivery]) -> Void,
        onSessionClosed: @escaping @Sendable (SessionID) -> Void
    ) throws {
        self.loop = loop
        self.store = store
        self.log = log
        self.watches = watches
        self.deliver = deliver
        self.wallClock = wallClock
        self.monotonicMillis = monotonicMillis
        self.onSessionClosed = onSessionClosed
        self.maxBuffer = options.maxBuffer
        self.checkpointInterval = options.checkpointInterval
        self.prep = Prep(options: options.prep)
        self.sessions = SessionTracker(tickTime: options.tickTime, serverID: options.serverID, wallClockMillis: wallClock())

        var applied = try store.read { try $0.lastAppliedZxid() }
        guard applied >= log.oldestZxid else {
            throw ServerStartError(
                message: "the store is at zxid \(applied) but the log starts after \(log.oldestZxid): "
                    + "the records in between were purged; restore this data directory from a backup or a peer")
        }
        var replay: [TxnEntry] = []
        try log.forEach(after: applied) { zxid, payload in
            var buffer = ByteBuffer()
            buffer.writeBytes(payload)
            let (entry, _) = try TxnCodec.decode(buffer, maxLength: Int.max / 2)
            precondition(entry.zxid == zxid, "log record \(zxid) holds txn \(entry.zxid)")
            replay.append(entry)
            if replay.count >= 1024 {
                _ = try store.write { batch in try replay.map { try batch.apply($0) } }
                replay.removeAll(keepingCapacity: true)
            }
        }
        if !replay.isEmpty { _ = try store.write { batch in try replay.map { try batch.apply($0) } } }
        applied = try store.read { try $0.lastAppliedZxid() }
        self.lastCommitted = applied
        self.lastProposed = max(applied, log.lastZxid)
        publishedCommitted.store(applied.rawValue, ordering: .releasing)
        let now = monotonicMillis()
        for s in try store.read({ try $0.sessions() }) {
            sessions.add(s.sessionID, timeout: s.timeout, now: now)
        }
    }

    /// Starts durability notifications and the session expiry tick.
    public func start(tickTime: Int) throws {
        try log.start(
            onDurable: { [weak self] zxid in
                guard let self else { return }
                self.loop.execute { self.commit(upTo: zxid) }
            },
            onFailure: { [weak self] error in
                guard let self else { return }
                self.loop.execute { self.fail(because: error) }
            })
        loop.scheduleRepeatedTask(initialDelay: .milliseconds(Int64(tickTime)), delay: .milliseconds(Int64(tickTime))) {
            [weak self] _ in self?.expireSessions()
        }
    }

    // MARK: Writes

    /// Submits a write; `completion` runs on the replica's loop once it is applied.
    public func submit(
        _ request: WriteRequest, context: RequestContext, completion: @escaping @Sendable (WriteOutcome) -> Void
    ) {
        loop.execute { self.propose(request, context: context, completion: completion) }
    }

    private func propose(
        _ request: WriteRequest, context: RequestContext, completion: (@Sendable (WriteOutcome) -> Void)?
    ) {
        loop.preconditionInEventLoop()
        if let failed {
            completion?(.failed(failed))
            return
        }
        guard let zxid = lastProposed.next else {
            // Counter exhausted: a new epoch is needed (replication's leader election does it).
            completion?(.failed(.systemError))
            return
        }
        let time = wallClock()
        let txn: Txn
        do {
            txn = try store.read { view in
                prep.prepare(request, context: context, zxid: zxid.rawValue, time: time, tree: ViewTree(view: view))
            }
        } catch {
            fail(because: error)
            completion?(.failed(.systemError))
            return
        }
        let entry = TxnEntry(
            header: TxnHeader(clientID: context.session, cxid: context.cxid, zxid: zxid, time: time, type: txn.opCode),
            txn: txn)
        var buffer = ByteBuffer()
        TxnCodec.write(entry, to: &buffer)
        do {
            try log.append(zxid: zxid, payload: Array(buffer.readableBytesView))
        } catch {
            fail(because: error)
            completion?(.failed(.systemError))
            return
        }
        if case .closeSession = txn { sessions.markClosing(context.session) }
        lastProposed = zxid
        pending.append(Proposal(entry: entry, completion: completion))
    }

    /// A request that must not be answered before every write submitted before it is applied
    /// (sync, and reads queued behind writes on other paths).
    public func barrier(_ done: @escaping @Sendable () -> Void) {
        loop.execute {
            if self.lastProposed == self.lastCommitted { done() } else { self.barriers.append((self.lastProposed, done)) }
        }
    }

    private func fail(because error: any Error) {
        guard failed == nil else { return }
        failed = .systemError
        // The log or store can no longer be trusted: refuse further writes, answer what is
        // pending with an error. Operators see the cause in the server log.
        logger.critical("replica stopped accepting writes", metadata: ["error": "\(error)"])
        let waiting = pending[pendingHead...]
        pending.removeAll()
        pendingHead = 0
        for p in waiting { p.completion?(.failed(.systemError)) }
    }

    private func commit(upTo durable: Zxid) {
        loop.preconditionInEventLoop()
        guard failed == nil else { return }
        var end = pendingHead
        while end < pending.count && pending[end].entry.zxid <= durable { end += 1 }
        guard end > pendingHead else { return }
        let batch = pending[pendingHead..<end]
        let results: [TxnResult]
        do {
            (results, _) = try watches.commitAndTrigger({
                let results = try store.write { writer in try batch.map { try writer.apply($0.entry) } }
                var changes: [(change: TreeChange, zxid: Int64)] = []
                for r in results { Self.collect(r, into: &changes) }
                return (results, changes)
            }, post: deliver)
        } catch {
            fail(because: error)
            return
        }
        pendingHead = end
        if pendingHead == pending.count {
            pending.removeAll(keepingCapacity: true)
            pendingHead = 0
        }
        lastCommitted = results.last?.zxid ?? lastCommitted
        publishedCommitted.store(lastCommitted.rawValue, ordering: .releasing)
        prep.applied(upTo: lastCommitted.rawValue)
        sinceCheckpoint += results.count
        if sinceCheckpoint >= checkpointInterval {
            // The store commits without syncing (the log is the source of truth); a checkpoint
            // bounds what an OS crash can take from it.
            sinceCheckpoint = 0
            do { try store.sync() } catch {
                fail(because: error)
                return
            }
        }
        let now = monotonicMillis()
        for (proposal, result) in zip(batch, results) {
            switch proposal.entry.txn {
            case .createSession(let t):
                sessions.add(proposal.entry.header.clientID, timeout: t.timeOut, now: now)
            case .closeSession:
                sessions.remove(proposal.entry.header.clientID)
                onSessionClosed(proposal.entry.header.clientID)
            default:
                break
            }
            proposal.completion?(.applied(proposal.entry, result))
        }
        while let first = barriers.first, first.after <= lastCommitted {
            barriers.removeFirst()
            first.done()
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

    /// Creates a session: a createSession txn through the write path (it consumes a zxid and
    /// survives restarts), answered once applied.
    public func createSession(timeout: Int32, completion: @escaping @Sendable (SessionID?) -> Void) {
        loop.execute {
            let id = self.sessions.allocateID()
            self.propose(
                .createSession(timeout: timeout), context: RequestContext(session: id, cxid: 0, authIds: [])
            ) { outcome in
                switch outcome {
                case .applied: completion(id)
                case .failed: completion(nil)
                }
            }
        }
    }

    /// Revalidates a reconnecting session: its timeout if it is alive, nil if it expired.
    public func revalidate(_ id: SessionID, completion: @escaping @Sendable (Int32?) -> Void) {
        loop.execute {
            guard let s = self.sessions.session(id), !s.isClosing else {
                completion(nil)
                return
            }
            self.sessions.touch(id, now: self.monotonicMillis())
            completion(s.timeout)
        }
    }

    /// Records that a session's client was heard from (called in batches by the connections).
    public func touch(_ ids: [SessionID]) {
        loop.execute {
            let now = self.monotonicMillis()
            for id in ids { self.sessions.touch(id, now: now) }
        }
    }

    private func expireSessions() {
        loop.preconditionInEventLoop()
        let wallOffset = wallClock() - monotonicMillis()
        let snapshot = sessions.sessions.values.map { (session: $0.id, expiresAtMillis: $0.expiresAt + wallOffset) }
        published.withLock { $0 = (snapshot, pending.count - pendingHead) }
        for id in sessions.expire(now: monotonicMillis()) {
            propose(.closeSession, context: RequestContext(session: id, cxid: 0, authIds: []), completion: nil)
        }
    }

    /// Closes a session at its client's request; `completion` once applied.
    public func closeSession(_ id: SessionID, completion: @escaping @Sendable (WriteOutcome) -> Void) {
        loop.execute {
            self.propose(.closeSession, context: RequestContext(session: id, cxid: 0, authIds: []), completion: completion)
        }
    }

    /// The zxid of the newest applied txn (replies report it in their ReplyHeader), published
    /// after each store commit so the event loops need no LMDB transaction to learn it.
    public var committedZxid: Zxid { Zxid(publishedCommitted.load(ordering: .acquiring)) }

    /// Sessions with their expiry (wall-clock ms) and the proposals in flight, as of the last tick:
    /// what the four-letter words report without waiting for the replica thread.
    public var lastPublished: (sessions: [(session: SessionID, expiresAtMillis: Int64)], inFlight: Int) {
        published.withLock { $0 }
    }
}

/// The committed tree for prep, read through one store view.
struct ViewTree: CommittedTree {
    let view: StoreView
    func record(_ path: String) -> NodeRecord? {
        // No node can have an invalid path (the store would normalise "//a" to "/a").
        guard ZNodePath.isValid(path) else { return nil }
        do {
            guard let acl = try view.acl(at: path), let creates = try view.childCreateCount(of: path) else { return nil }
            return NodeRecord(stat: acl.stat, childCreates: creates, acl: acl.acl)
        } catch {
            preconditionFailure("store read failed during prep: \(error)")
        }
    }
    func ephemerals(of session: SessionID) -> [String] {
        do { return try view.ephemerals(of: session) } catch { preconditionFailure("store read failed during prep: \(error)") }
    }
}
