import KeeperModel
import KeeperStore
import KeeperWire
import NIOCore

/// One client connection: the handshake, then requests answered strictly in order.
///
/// Reads run on this event loop from an LMDB read transaction as soon as no earlier request of
/// the connection is still waiting (a read never overtakes the session's own earlier write);
/// writes go to the replica and are answered when applied. Watch events are drained from the
/// connection's mailbox before every reply, so a client sees an event before any reply that
/// reflects the change.
final class ClientHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ClientFrame
    typealias OutboundOut = ByteBuffer

    enum Phase {
        case handshake
        case connecting
        case open(SessionID, timeout: Int32)
        case closing
        /// Over maxClientCnxns: nothing is answered.
        case refused
    }

    enum Work {
        /// Answered; the bytes are ready.
        case ready(ByteBuffer)
        /// Waiting for the replica.
        case waiting
        /// A read to run when it reaches the head of the queue.
        case read(Request)
    }

    struct Item {
        var xid: Int32
        var work: Work
        var closeAfter = false
        var countsAsOutstanding = false
    }

    let server: ServerContext
    let id: WatcherID
    var phase = Phase.handshake
    var entry: ConnectionEntry?
    var authIds: [Id] = []
    var queue: [Item] = []
    var head = 0
    var mayHaveWatches = false
    var lastTouch: Int64 = 0
    var readPaused = false
    var context: ChannelHandlerContext?
    var remoteHost = "unknown"
    /// Writes applied by the replica, not yet answered (filled on the replica's thread).
    let completedWrites = CompletedWrites()
    /// Hops to this connection's loop and answers the completed writes; set in channelActive.
    var answerCompletedWrites: @Sendable () -> Void = {}
    var allocator = ByteBufferAllocator()
    /// Between channelRead and channelReadComplete: replies are flushed once, at the end.
    var inReadBurst = false
    var flushDeferred = false

    init(server: ServerContext) {
        self.server = server
        self.id = server.registry.nextID()
    }

    // MARK: Channel events

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        let remote = context.channel.remoteAddress
        remoteHost = remote?.ipAddress ?? "unknown"
        authIds = [Id(scheme: "ip", id: remoteHost)]
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let channel = context.channel
        allocator = channel.allocator
        answerCompletedWrites = { loopBound.eventLoop.execute { loopBound.value.answerCompleted() } }
        let e = ConnectionEntry(
            id: id, remote: "\(remoteHost):\(remote?.port ?? 0)", remoteHost: remoteHost, eventLoop: context.eventLoop,
            established: server.wallClock(),
            wake: { loopBound.eventLoop.execute { loopBound.value.pump() } },
            close: {
                // A session that ended elsewhere (expired, moved, closed by another connection)
                // closes this connection; one closing at its own request answers first.
                loopBound.eventLoop.execute {
                    if case .closing = loopBound.value.phase { return }
                    channel.close(promise: nil)
                }
            })
        guard server.registry.add(e, limit: server.config.maxClientCnxns) else {
            server.stats.connectionRefused()
            server.logger.info("too many connections from \(remoteHost) (maxClientCnxns=\(server.config.maxClientCnxns))")
            // Closed once what the client already sent is read (closing with unread bytes
            // would reset the connection instead of ending it), or shortly if it sends nothing.
            phase = .refused
            context.eventLoop.scheduleTask(in: .milliseconds(100)) { context.close(promise: nil) }
            return
        }
        entry = e
        context.fireChannelActive()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Every frame of this read has been answered as far as it can be: one flush (one
        // writev) for all of their replies instead of one per frame.
        inReadBurst = false
        if flushDeferred {
            flushDeferred = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        inReadBurst = false
        flushDeferred = false
        if case .refused = phase {
            self.context = nil
            return
        }
        server.registry.remove(id)
        server.watches.removeAll(of: id)
        let unanswered = queue[head...].filter(\.countsAsOutstanding).count
        if unanswered > 0 { server.outstanding.subtract(unanswered, ordering: .relaxed) }
        phase = .closing
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let decoding = error as? JuteDecodingError {
            if case .lengthAboveLimit = decoding.reason { server.stats.largeRequestRejected() }
            // A client mistake, not a server error: ZooKeeper logs it at info and closes.
            server.logger.info("closing connection from \(remoteHost): \(decoding)")
        } else {
            server.logger.debug("closing connection from \(remoteHost): \(error)")
        }
        phase = .closing
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .refused = phase {
            context.close(promise: nil)
            return
        }
        inReadBurst = true
        switch unwrapInboundIn(data) {
        case .fourLetterWord(let word, _):
            answer(fourLetterWord: word.description, context: context)
        case .frame(let frame):
            entry?.received.add(1, ordering: .relaxed)
            server.stats.received()
            switch phase {
            case .handshake: handshake(frame, context: context)
            case .connecting: protocolError("request before the handshake completed", context: context)
            case .open(let session, let timeout): request(frame, session: session, timeout: timeout, context: context)
            case .closing, .refused: break
            }
        }
    }

    func protocolError(_ what: String, context: ChannelHandlerContext) {
        server.logger.info("closing connection from \(remoteHost): \(what)")
        phase = .closing
        context.close(promise: nil)
    }

    // MARK: Four-letter words

    func answer(fourLetterWord word: String, context: ChannelHandlerContext) {
        phase = .closing
        let whitelist = server.config.fourLetterWords
        if whitelist.contains(word) {
            if word == "srst" { server.stats.reset() }
            if word == "crst" { for e in server.registry.all() { e.resetStats() } }
        }
        // A server looking for a leader answers like ZooKeeper's (ZK_NOT_SERVING); ruok, conf,
        // envi and isro still answer.
        let notServing = !server.replica.isServing && whitelist.contains(word) && !["ruok", "conf", "envi", "isro"].contains(word)
        let text = notServing
            ? "This ZooKeeper instance is not currently serving requests\n" : server.report().answer(word, whitelist: whitelist)
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in context.close(promise: nil) }
    }

    // MARK: Handshake

    func handshake(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        let request: ConnectRequest
        do {
            var reader = JuteReader(frame, maxLength: server.config.juteMaxBuffer)
            request = try ConnectRequest(jute: &reader)
        } catch {
            protocolError("bad ConnectRequest: \(error)", context: context)
            return
        }
        phase = .connecting
        guard server.replica.isServing else {
            // No quorum behind this server now: the client tries another one (ZooKeeper closes
            // the connection the same way while its server is not running).
            server.logger.debug("refused a client while not serving: \(remoteHost)")
            phase = .closing
            context.close(promise: nil)
            return
        }
        let committed = server.replica.committedZxid
        if request.lastZxidSeen > committed {
            // The client has seen a newer state than this server has (ZooKeeper refuses it so
            // the client tries another server rather than going back in time).
            protocolError(
                "client has seen zxid \(request.lastZxidSeen), this server is at \(committed)", context: context)
            return
        }
        let timeout = SessionTracker.negotiate(
            request.timeOut, min: server.config.effectiveMinSessionTimeout, max: server.config.effectiveMaxSessionTimeout)
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let readOnly = request.readOnly.map { _ in false }
        if request.sessionID == SessionID(0) {
            server.replica.createSession(timeout: timeout) { session in
                loopBound.eventLoop.execute {
                    let handler = loopBound.value
                    guard let session else {
                        handler.refuse(request)
                        return
                    }
                    handler.opened(session, timeout: timeout, readOnly: readOnly)
                }
            }
        } else {
            guard request.passwd == ServerContext.password(for: request.sessionID) else {
                refuse(request)
                return
            }
            server.replica.revalidate(request.sessionID) { stored in
                loopBound.eventLoop.execute {
                    let handler = loopBound.value
                    guard let stored else {
                        handler.refuse(request)
                        return
                    }
                    handler.opened(request.sessionID, timeout: stored, readOnly: readOnly)
                }
            }
        }
    }

    /// Answers a session that cannot be revived: timeOut 0, session 0, zeroed password; the
    /// client reports Expired.
    func refuse(_ request: ConnectRequest) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: 48)
        buffer.writeConnectResponse(ConnectResponse.expired(answering: request))
        phase = .closing
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in context.close(promise: nil) }
    }

    func opened(_ session: SessionID, timeout: Int32, readOnly: Bool?) {
        guard let context, case .connecting = phase else { return }
        if let previous = server.registry.bind(session, to: id) { previous.close() }
        phase = .open(session, timeout: timeout)
        lastTouch = server.monotonicMillis()
        var buffer = context.channel.allocator.buffer(capacity: 48)
        buffer.writeConnectResponse(
            ConnectResponse(
                timeOut: timeout, sessionID: session, passwd: ServerContext.password(for: session), readOnly: readOnly))
        entry?.sent.add(1, ordering: .relaxed)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    // MARK: Requests

    func request(_ frame: ByteBuffer, session: SessionID, timeout: Int32, context: ChannelHandlerContext) {
        let now = server.monotonicMillis()
        if now - lastTouch >= Int64(server.config.tickTime) / 2 {
            lastTouch = now
            server.replica.touch([session])
        }
        var reader = JuteReader(frame, maxLength: server.config.juteMaxBuffer)
        let header: RequestHeader
        do { header = try RequestHeader(jute: &reader) } catch {
            protocolError("bad RequestHeader: \(error)", context: context)
            return
        }
        let request: Request
        do {
            request = try Request.decode(type: header.type, from: &reader)
        } catch {
            server.logger.debug("undecodable request from \(remoteHost): \(error)")
            var unknown = false
            if case .unknownType = error.reason { unknown = true }
            if header.type == OpCode.deleteContainer.rawValue {
                // Only the server's container reaper may delete containers: ZooKeeper's prep
                // refuses a client's request with BadArguments (an error txn).
                submit(
                    .malformed(.deleteContainer, .badArguments), xid: header.xid,
                    ctx: RequestContext(session: session, cxid: header.xid, authIds: authIds))
                pump()
                return
            }
            guard let op = OpCode(rawValue: header.type), !unknown else {
                // ZooKeeper 3.8 answers an unknown type with Unimplemented (zxid -1) and closes.
                var buffer = ByteBuffer()
                buffer.writeReply(ReplyHeader(xid: header.xid, zxid: Zxid(-1), err: .unimplemented))
                queue.append(Item(xid: header.xid, work: .ready(buffer), closeAfter: true))
                phase = .closing
                pump()
                return
            }
            // A record that does not decode: MarshallingError, and the connection stays. A write
            // still becomes an error txn, consuming a zxid, as in ZooKeeper.
            let nullPath = error.reason == .unexpectedNull && error.field == "path"
            if op.isWrite && op != .reconfig && op != .createSession && op != .closeSession {
                // setData validates its (null) path before anything else: BadArguments.
                let code: KeeperErrorCode = nullPath && op == .setData ? .badArguments : .marshallingError
                submit(.malformed(op, code), xid: header.xid, ctx: RequestContext(session: session, cxid: header.xid, authIds: authIds))
            } else if nullPath && op == .addWatch {
                // ZooKeeper accepts addWatch on a null path (it watches nothing reachable).
                enqueueReady(header.xid, error: .ok)
            } else {
                enqueueReady(header.xid, error: .marshallingError)
            }
            pump()
            return
        }
        dispatch(request, xid: header.xid, session: session, context: context)
        pump()
    }

    func enqueueReady(_ xid: Int32, error: KeeperErrorCode, zxid: Zxid? = nil) {
        var buffer = ByteBuffer()
        buffer.writeReply(ReplyHeader(xid: xid, zxid: zxid ?? currentZxid(), err: error))
        queue.append(Item(xid: xid, work: .ready(buffer)))
    }

    func currentZxid() -> Zxid { server.replica.committedZxid }

    func dispatch(_ request: Request, xid: Int32, session: SessionID, context: ChannelHandlerContext) {
        let ctx = RequestContext(session: session, cxid: xid, authIds: authIds)
        func data(_ b: ByteBuffer?) -> [UInt8]? { b.map { Array($0.readableBytesView) } }
        func create(_ op: OpCode, _ r: CreateRequest) -> WriteRequest {
            .create(opCode: op, path: r.path, data: data(r.data), acl: r.acl, flags: r.flags, ttl: -1)
        }
        switch request {
        case .create(let r): submit(create(.create, r), xid: xid, ctx: ctx)
        case .create2(let r): submit(create(.create2, r), xid: xid, ctx: ctx)
        case .createContainer(let r): submit(create(.createContainer, r), xid: xid, ctx: ctx)
        case .createTTL(let r):
            submit(
                .create(opCode: .createTTL, path: r.path, data: data(r.data), acl: r.acl, flags: r.flags, ttl: r.ttl),
                xid: xid, ctx: ctx)
        case .delete(let r): submit(.delete(opCode: .delete, path: r.path, version: r.version), xid: xid, ctx: ctx)
        case .setData(let r): submit(.setData(path: r.path, data: data(r.data), version: r.version), xid: xid, ctx: ctx)
        case .setACL(let r): submit(.setACL(path: r.path, acl: r.acl, version: r.version), xid: xid, ctx: ctx)
        case .check(let r): submit(.check(path: r.path, version: r.version), xid: xid, ctx: ctx)
        case .multi(let m):
            var ops: [WriteRequest] = []
            for op in m.ops {
                switch op {
                case .create(let r): ops.append(create(.create, r))
                case .create2(let r): ops.append(create(.create2, r))
                case .createContainer(let r): ops.append(create(.createContainer, r))
                case .createTTL(let r):
                    ops.append(.create(opCode: .createTTL, path: r.path, data: data(r.data), acl: r.acl, flags: r.flags, ttl: r.ttl))
                case .delete(let r): ops.append(.delete(opCode: .delete, path: r.path, version: r.version))
                case .setData(let r): ops.append(.setData(path: r.path, data: data(r.data), version: r.version))
                case .check(let r): ops.append(.check(path: r.path, version: r.version))
                case .getChildren, .getData:
                    preconditionFailure("MultiRequest decodes only write ops for opcode multi")
                }
            }
            submit(.multi(ops), xid: xid, ctx: ctx)
        case .closeSession:
            let index = queue.count
            queue.append(Item(xid: xid, work: .waiting, closeAfter: true))
            phase = .closing
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            server.replica.closeSession(session) { outcome in
                loopBound.eventLoop.execute {
                    let handler = loopBound.value
                    var buffer = ByteBuffer()
                    switch outcome {
                    case .applied(let entry, _): buffer.writeReply(ReplyHeader(xid: xid, zxid: entry.zxid, err: .ok))
                    case .failed(let code): buffer.writeReply(ReplyHeader(xid: xid, zxid: handler.currentZxid(), err: code))
                    }
                    handler.complete(index, with: buffer)
                }
            }
        case .sync(let r):
            let index = queue.count
            queue.append(Item(xid: xid, work: .waiting))
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let path = r.path
            server.replica.barrier {
                loopBound.eventLoop.execute {
                    let handler = loopBound.value
                    var buffer = ByteBuffer()
                    buffer.writeReply(ReplyHeader(xid: xid, zxid: handler.currentZxid(), err: .ok), record: SyncResponse(path: path))
                    handler.complete(index, with: buffer)
                }
            }
        case .auth(let packet):
            guard let ids = Authentication.authenticate(
                scheme: packet.scheme, auth: packet.auth ?? [], superDigest: server.config.superDigest,
                remoteAddress: remoteHost)
            else {
                server.stats.authFailure()
                server.logger.info("authentication failed for scheme \(packet.scheme) from \(remoteHost)")
                var buffer = ByteBuffer()
                buffer.writeReply(ReplyHeader(xid: xid, zxid: Zxid(0), err: .authFailed))
                queue.append(Item(xid: xid, work: .ready(buffer), closeAfter: true))
                phase = .closing
                return
            }
            for id in ids where !authIds.contains(id) { authIds.append(id) }
            var buffer = ByteBuffer()
            buffer.writeReply(ReplyHeader(xid: xid, zxid: Zxid(0), err: .ok))
            queue.append(Item(xid: xid, work: .ready(buffer)))
        case .reconfig:
            enqueueReady(xid, error: .reconfigDisabled)
        case .sasl:
            // SASL is not supported: answered, never a dropped connection.
            enqueueReady(xid, error: .unimplemented)
        case .createSession:
            enqueueReady(xid, error: .unimplemented)
        case .ping, .exists, .getData, .getACL, .getChildren, .getChildren2, .checkWatches, .removeWatches, .multiRead,
            .setWatches, .setWatches2, .getEphemerals, .getAllChildrenNumber, .addWatch, .whoAmI:
            queue.append(Item(xid: xid, work: .read(request)))
        }
    }

    func submit(_ write: WriteRequest, xid: Int32, ctx: RequestContext) {
        guard let context else { return }
        let index = queue.count
        queue.append(Item(xid: xid, work: .waiting, countsAsOutstanding: true))
        let total = server.outstanding.add(1, ordering: .relaxed).newValue
        if total >= server.config.globalOutstandingLimit && !readPaused {
            readPaused = true
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        }
        let started = server.monotonicMillis()
        let completed = completedWrites
        let answer = answerCompletedWrites
        server.replica.submit(write, context: ctx) { outcome in
            // On the replica's thread: only the first write of a batch hops to the loop.
            if completed.append(CompletedWrites.Item(index: index, xid: xid, outcome: outcome, started: started)) {
                answer()
            }
        }
    }

    /// Answers every write the replica has completed since the last call: one task, one pump
    /// and one flush for a whole applied batch.
    func answerCompleted() {
        let items = completedWrites.drain()
        guard !items.isEmpty else { return }
        let now = server.monotonicMillis()
        let zxid = currentZxid()
        for item in items {
            let elapsed = now - item.started
            server.stats.latency(elapsed)
            server.metrics.writeLatency.recordMilliseconds(elapsed)
            let reply = Replies.write(xid: item.xid, outcome: item.outcome, fallbackZxid: zxid, allocator: allocator)
            store(item.index, reply)
        }
        pump()
    }

    func complete(_ index: Int, with buffer: ByteBuffer) {
        store(index, buffer)
        pump()
    }

    /// Marks the request at `index` answered with `buffer`, without writing anything yet.
    private func store(_ index: Int, _ buffer: ByteBuffer) {
        guard index >= head, index < queue.count else { return }
        if queue[index].countsAsOutstanding {
            queue[index].countsAsOutstanding = false
            server.outstanding.subtract(1, ordering: .relaxed)
        }
        queue[index].work = .ready(buffer)
    }

    /// Writes every answered request at the head of the queue, running reads that reached it.
    func pump() {
        guard let context else { return }
        var wrote = false
        flushEvents(context, wrote: &wrote)
        while head < queue.count {
            let item = queue[head]
            var reply: ByteBuffer
            switch item.work {
            case .waiting:
                break
            case .ready(let b):
                reply = b
                writeReply(reply, item: item, context: context, wrote: &wrote)
                continue
            case .read(let request):
                let started = ContinuousClock.now
                reply = runRead(request, xid: item.xid)
                server.metrics.readLatency.recordNanoseconds(Int64((ContinuousClock.now - started) / .nanoseconds(1)))
                if mayHaveWatches {
                    server.watches.barrier()
                    flushEvents(context, wrote: &wrote)
                }
                writeReply(reply, item: item, context: context, wrote: &wrote)
                continue
            }
            break
        }
        if head == queue.count && head > 0 {
            queue.removeAll(keepingCapacity: true)
            head = 0
        }
        entry?.queued.store(queue.count - head, ordering: .relaxed)
        if readPaused && (head == queue.count || server.outstanding.load(ordering: .relaxed) < server.config.globalOutstandingLimit) {
            readPaused = false
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
            context.read()
        }
        if wrote {
            if inReadBurst {
                flushDeferred = true
            } else {
                context.flush()
            }
        }
    }

    private func writeReply(_ reply: ByteBuffer, item: Item, context: ChannelHandlerContext, wrote: inout Bool) {
        head += 1
        entry?.sent.add(1, ordering: .relaxed)
        server.stats.sent()
        if item.closeAfter {
            context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in context.close(promise: nil) }
            phase = .closing
        } else {
            context.write(wrapOutboundOut(reply), promise: nil)
        }
        wrote = true
    }

    private func flushEvents(_ context: ChannelHandlerContext, wrote: inout Bool) {
        guard let entry else { return }
        for d in entry.mailbox.drain() {
            var buffer = context.channel.allocator.buffer(capacity: 64 + d.event.path.utf8.count)
            buffer.writeNotification(d.event, zxid: Zxid(d.zxid))
            context.write(wrapOutboundOut(buffer), promise: nil)
            wrote = true
        }
    }

    func runRead(_ request: Request, xid: Int32) -> ByteBuffer {
        do {
            return try Reads.run(
                request, xid: xid, watcher: id, authIds: authIds, session: currentSession, server: server,
                registered: { self.mayHaveWatches = true })
        } catch {
            server.logger.error("read failed: \(error)")
            var buffer = ByteBuffer()
            buffer.writeReply(ReplyHeader(xid: xid, zxid: Zxid(0), err: .systemError))
            return buffer
        }
    }

    var currentSession: SessionID {
        if case .open(let s, _) = phase { return s }
        return SessionID(0)
    }
}
