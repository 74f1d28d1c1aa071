import KeeperModel
import KeeperWire
import NIOCore

/// One job for one session: send the requests of `source`, keeping up to `outstanding` in
/// flight, until the source runs dry, `maxRequests` were sent or the clock reaches `stopAt`;
/// then wait for every reply. Replies that arrive within [measureFrom, measureUntil) are counted
/// and their latency recorded.
struct Job: Sendable {
    var source: RequestSource
    var outstanding: Int
    var measureFrom: NIODeadline
    var measureUntil: NIODeadline
    var stopAt: NIODeadline
    var maxRequests: Int
    /// The longest wait for the next reply while requests are in flight.
    var replyTimeout: TimeAmount
    /// What the job is, for messages ("preparing keys").
    var phase: String
    /// Error replies: count them (the measured workload) or fail the job at the first one
    /// (preparing, cleaning up) except for the one code that is expected.
    var errorPolicy: ErrorPolicy
    /// Whether an interrupt (Ctrl-C) ends the job early: preparing and measuring yes, cleaning
    /// up no (the interrupt is what the cleanup is for).
    var interruptible: Bool
    /// Open loop: requests are due on a schedule instead of when replies free the window.
    var openLoop: OpenLoop? = nil

    struct OpenLoop: Sendable {
        /// Nanoseconds between this session's requests (fractional: the schedule does not drift).
        var interval: Double
        /// When the first request is due (uptime nanoseconds).
        var firstDue: UInt64
    }

    enum ErrorPolicy: Sendable {
        case count
        case fail(except: KeeperErrorCode?)
    }
}

/// What one session's job did.
struct JobOutcome: Sendable {
    /// Latencies of the replies received in the measured window: all, reads, writes.
    var latency = LatencyHistogram()
    var readLatency = LatencyHistogram()
    var writeLatency = LatencyHistogram()
    /// Replies received in the measured window.
    var measured = 0
    /// Requests sent and replies received over the whole job.
    var sent = 0
    var completed = 0
    /// Error replies by result code (over the whole job).
    var errorCounts: [Int32: Int] = [:]
}

/// The client side of one ZooKeeper session on one connection: the handshake, then pipelined
/// requests. It runs entirely on its channel's event loop (reach it through `Session`), keeps
/// the send time of every request in flight in a ring indexed by xid, and relies on the
/// protocol's guarantee that a session's replies come back in request order (ZooKeeper
/// Programmer's Guide, "Ordering"): a reply out of order is a protocol violation.
final class SessionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let server: HostPort
    let index: Int
    /// The session timeout asked for in the ConnectRequest, in milliseconds.
    let requestedTimeout: Int32
    /// Slots of the ring of send times: the most requests a job may keep in flight.
    let capacity: Int

    private var context: ChannelHandlerContext?
    private var handshake: EventLoopPromise<ConnectResponse>?
    private var handshakeFuture: EventLoopFuture<ConnectResponse>?
    private var isConnected = false
    private var isGone = false

    /// The xid of the next request, and of the oldest request still unanswered.
    private var nextXid: Int32 = 1
    private var oldestXid: Int32 = 1
    private var inFlight = 0
    private var sendTimes: [UInt64]
    private var opCodes: [OpCode]
    /// Frames written since the last flush: replies of one read trigger many requests, sent
    /// with one write.
    private var pending: ByteBuffer

    private var running: RunningJob?
    /// Set by `interrupt()`: every interruptible job, running or future, sends nothing more.
    private var interrupted = false
    private var closing: (xid: Int32, promise: EventLoopPromise<Void>)?

    /// The state of the job in progress (a class, so that it is mutated in place).
    private final class RunningJob {
        var job: Job
        let promise: EventLoopPromise<JobOutcome>
        let firstXid: Int32
        let measureFrom: UInt64
        let measureUntil: UInt64
        var stopAt: UInt64
        var outcome = JobOutcome()
        var lastProgress: UInt64
        /// The length every create/setData writes and every getData must read back.
        let valueSize: Int
        var watchdog: Scheduled<Void>?
        /// Open loop: requests scheduled so far, and the timer that sends the next ones.
        var scheduled = 0
        var ticker: Scheduled<Void>?

        init(job: Job, promise: EventLoopPromise<JobOutcome>, firstXid: Int32, now: UInt64) {
            self.job = job
            self.promise = promise
            self.firstXid = firstXid
            measureFrom = job.measureFrom.uptimeNanoseconds
            measureUntil = job.measureUntil.uptimeNanoseconds
            stopAt = job.stopAt.uptimeNanoseconds
            lastProgress = now
            valueSize = job.source.value.readableBytes
        }

        var canSend: Bool {
            job.source.hasNext && outcome.sent < job.maxRequests
        }
    }

    init(server: HostPort, index: Int, requestedTimeout: Int32, capacity: Int) {
        precondition(capacity >= 1, "a session keeps at least one request in flight")
        self.server = server
        self.index = index
        self.requestedTimeout = requestedTimeout
        self.capacity = capacity
        sendTimes = [UInt64](repeating: 0, count: capacity)
        opCodes = [OpCode](repeating: .setData, count: capacity)
        pending = ByteBuffer()
    }

    // MARK: Called through Session, on the event loop.

    /// Completes when the server has answered the ConnectRequest with a session.
    /// (The future outlives the promise, which is dropped once completed.)
    var handshakeResult: EventLoopFuture<ConnectResponse> {
        guard let handshakeFuture else {
            preconditionFailure("the handshake future exists from handlerAdded on")
        }
        return handshakeFuture
    }

    /// Starts `job`; the future completes when every request it sent has been answered.
    func start(_ job: Job, on loop: any EventLoop) -> EventLoopFuture<JobOutcome> {
        precondition(running == nil && closing == nil, "one job at a time per session")
        precondition(job.outstanding >= 1 && job.outstanding <= capacity, "outstanding within 1...capacity")
        guard let context, isConnected, !isGone else {
            return loop.makeFailedFuture(
                BenchError.connectionClosed(server, session: index, inFlight: 0, phase: job.phase))
        }
        let now = NIODeadline.now().uptimeNanoseconds
        let state = RunningJob(job: job, promise: loop.makePromise(), firstXid: nextXid, now: now)
        if interrupted && job.interruptible { state.stopAt = 0 }
        running = state
        armWatchdog(state, context: context)
        if job.openLoop != nil {
            sendDue(state, now: now)
            armTicker(state, context: context, now: now)
        } else {
            send(state, now: now)
        }
        flush(context)
        finishIfDone(state)
        return state.promise.futureResult
    }

    /// Stops sending the requests of interruptible jobs (now and later); the running one ends
    /// as soon as its requests in flight are answered.
    func interrupt() {
        interrupted = true
        guard let state = running, state.job.interruptible else { return }
        state.stopAt = 0
        finishIfDone(state)
    }

    /// Gives up on a server that has not answered the ConnectRequest within `timeout`.
    func handshakeTimedOut(after timeout: TimeAmount) {
        guard handshake != nil else { return }
        fail(.noReply(server, session: index, inFlight: 1, seconds: timeout.nanoseconds / 1_000_000_000,
                      phase: "the handshake (ConnectRequest)"))
        context?.close(promise: nil)
    }

    /// Sends closeSession and completes when the server answered it or closed the connection.
    func close(on loop: any EventLoop) -> EventLoopFuture<Void> {
        precondition(running == nil && closing == nil, "close a session once, with no job running")
        guard let context, isConnected, !isGone else { return loop.makeSucceededVoidFuture() }
        let xid = nextXid
        nextXid += 1
        let promise = loop.makePromise(of: Void.self)
        closing = (xid, promise)
        Request.closeSession.writeFrame(xid: xid, to: &pending)
        flush(context)
        return promise.futureResult
    }

    /// How many requests of the running (or last) job were sent: the create workload's
    /// cleanup deletes every name it may have created, even after a failed run.
    private(set) var lastJobSent = 0

    // MARK: ChannelInboundHandler

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let handshake = context.eventLoop.makePromise(of: ConnectResponse.self)
        self.handshake = handshake
        handshakeFuture = handshake.futureResult
        pending = context.channel.allocator.buffer(capacity: 64 * 1024)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        connectionEnded(phase: isConnected ? "the run" : "the handshake")
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        // A new session: protocol 0, no zxid seen, no session id, a zeroed password, and the
        // readOnly byte (false) that every current client sends.
        let request = ConnectRequest(
            lastZxidSeen: Zxid(0), timeOut: requestedTimeout, sessionID: .none,
            passwd: [UInt8](repeating: 0, count: 16), readOnly: false)
        pending.writeJuteFrame { (b: inout ByteBuffer) in request.write(to: &b) }
        flush(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connectionEnded(phase: running?.job.phase ?? (isConnected ? "an idle moment" : "the handshake"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(.protocolViolation(server, session: index, "\(error)"))
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard isConnected else { return handshakeReply(frame, context: context) }
        let now = NIODeadline.now().uptimeNanoseconds
        var reader = JuteReader(frame)
        let header: ReplyHeader
        do {
            header = try ReplyHeader(jute: &reader)
        } catch {
            return protocolFailure("an undecodable ReplyHeader: \(error)", context: context)
        }
        switch header.xid {
        case SpecialXid.notification, SpecialXid.ping, SpecialXid.auth, SpecialXid.setWatches:
            // No watch, ping, auth or setWatches is ever sent; a server that sends one anyway
            // does not disturb the numbered replies.
            return
        default:
            break
        }
        if let closing, header.xid == closing.xid {
            self.closing = nil
            closing.promise.succeed()
            context.close(promise: nil)
            return
        }
        guard inFlight > 0, header.xid == oldestXid else {
            return protocolFailure(
                "a reply with xid \(header.xid) when \(inFlight > 0 ? "xid \(oldestXid)" : "no reply") was due",
                context: context)
        }
        inFlight -= 1
        oldestXid += 1
        // After a job failed, its remaining replies still arrive; they are dropped.
        guard let state = running else { return }
        let slot = Int(header.xid) % capacity
        let latency = now &- sendTimes[slot]
        state.lastProgress = now
        state.outcome.completed += 1
        if now >= state.measureFrom && now < state.measureUntil {
            state.outcome.measured += 1
            state.outcome.latency.record(latency)
            if opCodes[slot] == .getData {
                state.outcome.readLatency.record(latency)
            } else {
                state.outcome.writeLatency.record(latency)
            }
        }
        if header.err == 0 {
            if let problem = Self.check(reply: &reader, header: header, of: opCodes[slot], valueSize: state.valueSize) {
                return protocolFailure(problem, context: context)
            }
        } else {
            switch state.job.errorPolicy {
            case .count:
                state.outcome.errorCounts[header.err, default: 0] += 1
            case .fail(let expected):
                if header.err == expected?.rawValue {
                    state.outcome.errorCounts[header.err, default: 0] += 1
                } else {
                    let path = state.job.source.path(ofRequest: Int(header.xid - state.firstXid))
                    return fail(.errorReply(server, session: index, phase: state.job.phase, path: path, code: header.err))
                }
            }
        }
        if state.job.openLoop != nil {
            sendDue(state, now: now)
        } else {
            send(state, now: now)
        }
        finishIfDone(state)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush(context)
        context.fireChannelReadComplete()
    }

    // MARK: Internals

    private func handshakeReply(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        let response: ConnectResponse
        do {
            var reader = JuteReader(frame)
            response = try ConnectResponse(jute: &reader)
        } catch {
            return protocolFailure("an undecodable ConnectResponse: \(error)", context: context)
        }
        guard response.timeOut > 0, response.sessionID != .none else {
            handshake?.fail(BenchError.sessionRefused(server, session: index))
            handshake = nil
            context.close(promise: nil)
            return
        }
        isConnected = true
        handshake?.succeed(response)
        handshake = nil
    }

    /// Sends requests until the window of `outstanding` is full or the job may send no more.
    private func send(_ state: RunningJob, now: UInt64) {
        guard now < state.stopAt else { return }
        while inFlight < state.job.outstanding && state.canSend { sendNext(state, timedFrom: now) }
    }

    /// Writes the job's next request into `pending`, its latency to run from `start`.
    private func sendNext(_ state: RunningJob, timedFrom start: UInt64) {
        precondition(nextXid < Int32.max, "xids exhausted: bounded by --max-requests")
        let xid = nextXid
        nextXid += 1
        let opCode = state.job.source.writeNext(xid: xid, into: &pending)
        let slot = Int(xid) % capacity
        sendTimes[slot] = start
        opCodes[slot] = opCode
        inFlight += 1
        state.outcome.sent += 1
        lastJobSent = state.outcome.sent
    }

    /// Open loop: sends every request already due, oldest first, as far as the cap allows;
    /// each is timed from its due moment, so a request held back by a full window counts the
    /// wait in its latency (no coordinated omission).
    private func sendDue(_ state: RunningJob, now: UInt64) {
        guard let open = state.job.openLoop else { return }
        while inFlight < state.job.outstanding && state.canSend {
            let due = open.firstDue &+ UInt64(Double(state.scheduled) * open.interval)
            guard due <= now && due < state.stopAt else { return }
            sendNext(state, timedFrom: due)
            state.scheduled += 1
        }
    }

    /// Open loop: wakes when the next request is due (at most every `minimumTick`), sends what
    /// is due, and ends the job once the schedule has passed `stopAt`.
    private func armTicker(_ state: RunningJob, context: ChannelHandlerContext, now: UInt64) {
        guard let open = state.job.openLoop else { return }
        let due = open.firstDue &+ UInt64(Double(state.scheduled) * open.interval)
        let at = max(due, now &+ BenchLimits.minimumTick)
        let loop = context.eventLoop.assumeIsolated()
        state.ticker = loop.scheduleTask(deadline: .uptimeNanoseconds(min(at, state.stopAt))) { [self] in
            guard running === state, let context = self.context else { return }
            let now = NIODeadline.now().uptimeNanoseconds
            sendDue(state, now: now)
            flush(context)
            finishIfDone(state)
            if running === state && now < state.stopAt && state.canSend { armTicker(state, context: context, now: now) }
        }
    }

    /// Decodes the body of a successful reply and checks it against the request, so that
    /// figures are never counted for a server that answers OK without doing the work: a
    /// setData's Stat and a getData's data must carry the value's length; a create's reply must
    /// decode. Returns what is
    /// wrong, or nil.
    private static func check(reply reader: inout JuteReader, header: ReplyHeader, of opCode: OpCode, valueSize: Int) -> String? {
        let response: Response
        do {
            response = try Response.decode(for: opCode, header: header, from: &reader)
        } catch {
            return "an undecodable \(opCode) reply (xid \(header.xid)): \(error)"
        }
        switch (opCode, response) {
        case (.setData, .stat(let reply)):
            guard reply.stat.dataLength == valueSize else {
                return "a setData reply whose Stat has dataLength \(reply.stat.dataLength), not \(valueSize)"
            }
        case (.getData, .getData(let reply)):
            guard reply.data?.readableBytes ?? -1 == valueSize, reply.stat.dataLength == valueSize else {
                return "a getData reply with \(reply.data?.readableBytes ?? -1) bytes of data "
                    + "(Stat dataLength \(reply.stat.dataLength)), not \(valueSize)"
            }
        case (.create, .create), (.delete, .empty), (.sync, .sync):
            break
        default:
            return "a \(opCode) reply decoded as \(response)"
        }
        return nil
    }

    private func flush(_ context: ChannelHandlerContext) {
        guard pending.readableBytes > 0 else { return }
        let frames = pending
        pending = context.channel.allocator.buffer(capacity: 64 * 1024)
        context.writeAndFlush(wrapOutboundOut(frames), promise: nil)
    }

    private func finishIfDone(_ state: RunningJob) {
        guard inFlight == 0, running === state else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        guard !state.canSend || now >= state.stopAt else { return }
        running = nil
        state.watchdog?.cancel()
        state.ticker?.cancel()
        state.promise.succeed(state.outcome)
    }

    /// Checks, once a second, that a reply came within `replyTimeout` while requests are in
    /// flight, so a server that stops answering ends the run instead of hanging it.
    private func armWatchdog(_ state: RunningJob, context: ChannelHandlerContext) {
        let loop = context.eventLoop.assumeIsolated()
        let timeout = UInt64(state.job.replyTimeout.nanoseconds)
        state.watchdog = loop.scheduleTask(in: .seconds(1)) { [self] in
            guard running === state else { return }
            let now = NIODeadline.now().uptimeNanoseconds
            if inFlight > 0 && now &- state.lastProgress > timeout {
                fail(.noReply(server, session: index, inFlight: inFlight,
                              seconds: state.job.replyTimeout.nanoseconds / 1_000_000_000, phase: state.job.phase))
                self.context?.close(promise: nil)
                return
            }
            // The window may have been full until stopAt passed with nothing left to answer.
            finishIfDone(state)
            if running === state, let context = self.context { armWatchdog(state, context: context) }
        }
    }

    private func protocolFailure(_ what: String, context: ChannelHandlerContext) {
        fail(.protocolViolation(server, session: index, what))
        context.close(promise: nil)
    }

    /// Fails whatever is waiting: the handshake, the running job, or nothing.
    private func fail(_ error: BenchError) {
        if let handshake {
            self.handshake = nil
            handshake.fail(error)
        }
        if let state = running {
            running = nil
            state.watchdog?.cancel()
            state.ticker?.cancel()
            state.promise.fail(error)
        }
    }

    private func connectionEnded(phase: String) {
        isGone = true
        if let closing {
            // ZooKeeper closes the connection right after answering closeSession; a close
            // before the answer ends the session just as well.
            self.closing = nil
            closing.promise.succeed()
        }
        if handshake != nil {
            fail(.connectionClosed(server, session: index, inFlight: 0, phase: "the handshake"))
        }
        fail(.connectionClosed(server, session: index, inFlight: inFlight, phase: phase))
    }
}
