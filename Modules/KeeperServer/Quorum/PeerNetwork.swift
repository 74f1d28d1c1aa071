import KeeperModel
import KeeperWire
import KeeperZAB
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Which of a server's connections with a peer an event came from: the learner connection it
/// opened to its leader (outbound) or one a learner opened to it (inbound), and which one of
/// those (connections are never reused: each has a new generation).
struct PeerLinkID: Hashable, Sendable {
    enum Direction: Hashable, Sendable {
        case inbound
        case outbound
    }
    var direction: Direction
    var generation: UInt64
}

/// What the network hands the replica, in order for each connection.
enum PeerEvent: Sendable {
    case notification(from: ServerID, ElectionNotification)
    case packet(from: ServerID, link: PeerLinkID, QuorumPacket)
    case closed(peer: ServerID, link: PeerLinkID)
    /// A peer opened an election connection to us: it has just started (or reconnected) and
    /// may not have heard our vote yet.
    case electionPeerConnected(ServerID)
}

/// The ensemble's connections (ZooKeeper Administrator's Guide, "Cluster Options": each
/// `server.N=host:quorumPort:electionPort` line): every server listens on its election port
/// and on its quorum port; election notifications go over a connection this server opens to
/// each peer's election port (lossy by design: the core re-sends its vote), and a learner opens
/// one connection to its leader's quorum port, which carries discovery, synchronization and
/// broadcast in order (TCP gives ZAB its FIFO channel).
///
/// Peers are identified by the id they announce (the election connection's initial message,
/// LearnerInfo on FOLLOWERINFO/OBSERVERINFO), never by address, so a proxy or NAT in between
/// is fine. Ids not in the configuration are refused.
final class PeerNetwork: Sendable {
    let myID: ServerID
    let peers: [ServerID: PeerAddress]
    let group: any EventLoopGroup
    let maxPacket: Int
    let logger: Logger
    let onEvent: @Sendable (PeerEvent) -> Void
    private let generations = Atomic<UInt64>(0)
    private let listeners = Mutex<[any Channel]>([])
    private let inbound = Mutex<[ServerID: PeerLink]>([:])
    private let outbound = Mutex<(peer: ServerID, link: PeerLink)?>(nil)
    private let election: [ServerID: ElectionLink]

    init(
        myID: ServerID, peers: [ServerID: PeerAddress], group: any EventLoopGroup, maxPacket: Int, logger: Logger,
        onEvent: @escaping @Sendable (PeerEvent) -> Void
    ) {
        self.myID = myID
        self.peers = peers
        self.group = group
        self.maxPacket = maxPacket
        self.logger = logger
        self.onEvent = onEvent
        var links: [ServerID: ElectionLink] = [:]
        for (id, address) in peers where id != myID {
            links[id] = ElectionLink(peer: id, address: address, myID: myID, group: group, logger: logger)
        }
        election = links
    }

    /// Binds this server's quorum and election ports (its own `server.N` line).
    func start(quorumHost: String, quorumPort: Int, electionHost: String, electionPort: Int) throws {
        let known = Set(peers.keys)
        let maxPacket = self.maxPacket
        let electionChannel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [onEvent, logger, myID] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ElectionFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(
                        ElectionInboundHandler(myID: myID, known: known, logger: logger, onEvent: onEvent))
                }
            }
            .bind(host: electionHost, port: electionPort).wait()
        let quorumChannel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let link = PeerLink(network: self, direction: .inbound, generation: self.nextGeneration())
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(QuorumPacketDecoder(maxLength: maxPacket)))
                    try channel.pipeline.syncOperations.addHandler(PeerLinkHandler(link: link))
                    link.attach(channel)
                }
            }
            .bind(host: quorumHost, port: quorumPort).wait()
        listeners.withLock { $0 = [electionChannel, quorumChannel] }
    }

    func nextGeneration() -> UInt64 { generations.add(1, ordering: .relaxed).newValue }

    /// Sends an election notification (dropped when the peer cannot be reached now).
    func sendNotification(_ notification: ElectionNotification, to peer: ServerID) {
        election[peer]?.send(notification)
    }

    /// Opens a new learner connection to `leader`'s quorum port and queues `first` on it; any
    /// previous learner connection is closed. Returns the new connection's id.
    @discardableResult
    func connectToLeader(_ leader: ServerID, first: QuorumPacket) -> PeerLinkID? {
        guard let address = peers[leader] else { return nil }
        let link = PeerLink(network: self, direction: .outbound, generation: nextGeneration())
        link.peer = leader
        let previous = outbound.withLock { current -> PeerLink? in
            let old = current?.link
            current = (leader, link)
            return old
        }
        previous?.close()
        link.enqueue(.packet(first))
        let maxPacket = self.maxPacket
        ClientBootstrap(group: group)
            .connectTimeout(.seconds(2))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(QuorumPacketDecoder(maxLength: maxPacket)))
                    try channel.pipeline.syncOperations.addHandler(PeerLinkHandler(link: link))
                }
            }
            .connect(host: address.host, port: address.quorumPort)
            .whenComplete { result in
                switch result {
                case .success(let channel): link.attach(channel)
                case .failure(let error):
                    self.logger.debug("cannot reach the leader", metadata: ["leader": "\(leader)", "error": "\(error)"])
                    link.closed()
                }
            }
        return link.id
    }

    /// Queues a packet on the current connection with `peer` (the learner connection when
    /// `peer` is our leader, else the peer's connection to us). Dropped when there is none:
    /// the core's timeouts notice.
    func send(_ item: PeerLink.Item, to peer: ServerID) {
        if let link = outbound.withLock({ $0?.peer == peer ? $0?.link : nil }) {
            link.enqueue(item)
        } else if let link = inbound.withLock({ $0[peer] }) {
            link.enqueue(item)
        } else if case .snapshot(let source) = item {
            source.release()
        }
    }

    /// Closes every connection with `peer` (the core's `.disconnect`).
    func disconnect(_ peer: ServerID) {
        inbound.withLock { $0.removeValue(forKey: peer) }?.close()
        outbound.withLock { current -> PeerLink? in
            guard let c = current, c.peer == peer else { return nil }
            current = nil
            return c.link
        }?.close()
    }

    /// An inbound connection announced its peer: it replaces any older one from that peer.
    func register(_ link: PeerLink, as peer: ServerID) -> Bool {
        guard peers[peer] != nil, peer != myID else { return false }
        let old = inbound.withLock { table -> PeerLink? in
            let old = table[peer]
            table[peer] = link
            return old
        }
        old?.close()
        return true
    }

    func unregister(_ link: PeerLink) {
        guard let peer = link.peer else { return }
        inbound.withLock { table in
            if table[peer] === link { table.removeValue(forKey: peer) }
        }
        outbound.withLock { current in
            if current?.link === link { current = nil }
        }
    }

    func shutdown() {
        for channel in listeners.withLock({ $0 }) { channel.close(promise: nil) }
        for link in inbound.withLock({ Array($0.values) }) { link.close() }
        outbound.withLock { $0?.link }?.close()
        for link in election.values { link.close() }
    }
}

/// One leader-learner connection: an ordered queue of packets (and snapshot streams) written
/// as fast as the socket takes them, so a SNAP of any size never sits in memory.
final class PeerLink: @unchecked Sendable {
    // @unchecked Sendable: `peer` is written once before the link is shared (outbound) or on
    // the channel's event loop before any event is delivered (inbound), then only read; every
    // other mutable field lives in `state` (a Mutex), and `pump` runs only on the channel's loop.
    enum Item: Sendable {
        case packet(QuorumPacket)
        /// A packet already in its wire form, written as it is: a PROPOSAL encoded once for
        /// every follower shares one buffer instead of being copied twice per follower.
        case encoded(ByteBuffer)
        case snapshot(SnapshotFileSource)
    }
    struct State {
        var channel: (any Channel)?
        var queue: [Item] = []
        var head = 0
        var closed = false
        /// A pump is queued on the channel's loop: more items ride on it (one hop and one
        /// flush for a burst of PROPOSALs and COMMITs, not one per packet).
        var pumpScheduled = false
    }

    unowned let network: PeerNetwork
    let id: PeerLinkID
    var peer: ServerID?
    private let state = Mutex(State())
    private let closedReported = Atomic<Bool>(false)

    init(network: PeerNetwork, direction: PeerLinkID.Direction, generation: UInt64) {
        self.network = network
        self.id = PeerLinkID(direction: direction, generation: generation)
    }

    func attach(_ channel: any Channel) {
        let wasClosed = state.withLock { s -> Bool in
            if !s.closed { s.channel = channel }
            return s.closed
        }
        if wasClosed {
            channel.close(promise: nil)
            return
        }
        channel.eventLoop.execute { self.pump() }
    }

    func enqueue(_ item: Item) {
        let channel = state.withLock { s -> (any Channel)? in
            guard !s.closed else {
                if case .snapshot(let source) = item { source.release() }
                return nil
            }
            s.queue.append(item)
            guard !s.pumpScheduled, let channel = s.channel else { return nil }
            s.pumpScheduled = true
            return channel
        }
        channel?.eventLoop.execute { self.pump() }
    }

    /// Writes queued items while the socket accepts them; resumes on writability.
    func pump() {
        // Cleared before draining: an item queued from now on schedules another pump.
        guard let channel = state.withLock({ s -> (any Channel)? in
            s.pumpScheduled = false
            return s.channel
        }) else { return }
        channel.eventLoop.preconditionInEventLoop()
        var wrote = false
        while channel.isWritable {
            guard let item = state.withLock({ s -> Item? in s.head < s.queue.count ? s.queue[s.head] : nil }) else { break }
            let packet: QuorumPacket?
            switch item {
            case .packet(let p):
                packet = p
                pop()
            case .encoded(let bytes):
                pop()
                channel.write(NIOAny(bytes), promise: nil)
                wrote = true
                continue
            case .snapshot(let source):
                do {
                    packet = try source.nextPacket()
                } catch {
                    network.logger.error("snapshot stream failed", metadata: ["error": "\(error)"])
                    source.release()
                    close()
                    return
                }
                if packet == nil || source.finished { pop() }
            }
            guard let packet else { continue }
            var buffer = channel.allocator.buffer(capacity: 64 + (packet.data?.readableBytes ?? 0))
            packet.write(to: &buffer)
            channel.write(NIOAny(buffer), promise: nil)
            wrote = true
        }
        if wrote { channel.flush() }
    }

    private func pop() {
        state.withLock { s in
            s.head += 1
            if s.head == s.queue.count {
                s.queue.removeAll(keepingCapacity: true)
                s.head = 0
            }
        }
    }

    func close() {
        let (channel, queue) = state.withLock { s -> ((any Channel)?, [Item]) in
            s.closed = true
            let q = Array(s.queue[s.head...])
            s.queue = []
            s.head = 0
            return (s.channel, q)
        }
        for case .snapshot(let source) in queue { source.release() }
        if let channel {
            channel.close(promise: nil)
        } else {
            closed()
        }
    }

    /// The connection is gone: report it once (only when it carried a peer's traffic).
    func closed() {
        state.withLock { $0.closed = true }
        guard !closedReported.exchange(true, ordering: .relaxed) else { return }
        network.unregister(self)
        if let peer { network.onEvent(.closed(peer: peer, link: id)) }
    }
}

final class PeerLinkHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = QuorumPacket
    let link: PeerLink

    init(link: PeerLink) { self.link = link }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let packet = unwrapInboundIn(data)
        if link.peer == nil {
            // An inbound connection: the first packet must say who the learner is.
            guard packet.type == .followerInfo || packet.type == .observerInfo, var d = packet.data else {
                link.network.logger.info("peer connection did not start with FOLLOWERINFO/OBSERVERINFO; closed")
                context.close(promise: nil)
                return
            }
            var reader = JuteReader(d, maxLength: d.readableBytes)
            let info: LearnerInfo
            do { info = try LearnerInfo(jute: &reader) } catch {
                link.network.logger.info("peer connection with a bad LearnerInfo; closed", metadata: ["error": "\(error)"])
                context.close(promise: nil)
                return
            }
            guard info.serverID >= 0, link.network.register(link, as: ServerID(UInt64(info.serverID))) else {
                link.network.logger.info("peer connection from unknown server id \(info.serverID); closed")
                context.close(promise: nil)
                return
            }
            d.moveReaderIndex(to: d.writerIndex)
            link.peer = ServerID(UInt64(info.serverID))
        }
        guard let peer = link.peer else { return }
        link.network.onEvent(.packet(from: peer, link: link.id, packet))
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { link.pump() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        link.closed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        link.network.logger.info("peer connection error; closing", metadata: ["peer": "\(link.peer.map { "\($0)" } ?? "?")", "error": "\(error)"])
        context.close(promise: nil)
    }
}

// MARK: Election channel

/// Splits an election connection: the initial message, then `[int length][notification]`
/// frames (ZooKeeper's QuorumCnxManager framing), every length checked before it is trusted.
struct ElectionFrameDecoder: ByteToMessageDecoder {
    enum Frame {
        case header(ElectionConnectionHeader)
        case message(ByteBuffer)
    }
    typealias InboundOut = Frame
    /// The initial message holds an address list; ZooKeeper caps it the same way.
    static let maxHeaderBytes = 4096
    var sawHeader = false

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if !sawHeader {
            var reader = JuteReader(buffer, maxLength: Self.maxHeaderBytes)
            do {
                let header = try ElectionConnectionHeader(jute: &reader)
                buffer = reader.buffer
                sawHeader = true
                context.fireChannelRead(wrapInboundOut(.header(header)))
                return .continue
            } catch {
                if case .truncated = error.reason { return .needMoreData }
                throw error
            }
        }
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return .needMoreData }
        guard length >= 0, Int(length) <= ElectionNotification.maxMessageSize else {
            throw PeerProtocolError("election message length \(length) outside 0...\(ElectionNotification.maxMessageSize)")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let message = buffer.readSlice(length: Int(length))!
        context.fireChannelRead(wrapInboundOut(.message(message)))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

final class ElectionInboundHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked Sendable: `peer` is touched only on the channel's event loop (handler callbacks).
    typealias InboundIn = ElectionFrameDecoder.Frame
    let myID: ServerID
    let known: Set<ServerID>
    let logger: Logger
    let onEvent: @Sendable (PeerEvent) -> Void
    var peer: ServerID?

    init(myID: ServerID, known: Set<ServerID>, logger: Logger, onEvent: @escaping @Sendable (PeerEvent) -> Void) {
        self.myID = myID
        self.known = known
        self.logger = logger
        self.onEvent = onEvent
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .header(let header):
            let id = ServerID(UInt64(bitPattern: header.serverID))
            guard known.contains(id), id != myID else {
                logger.info("election connection from unknown server id \(header.serverID); closed")
                context.close(promise: nil)
                return
            }
            peer = id
            onEvent(.electionPeerConnected(id))
        case .message(let message):
            guard let peer else { return }
            do {
                onEvent(.notification(from: peer, try ElectionNotification(decoding: message)))
            } catch {
                logger.info("bad election notification; closing", metadata: ["peer": "\(peer)", "error": "\(error)"])
                context.close(promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("election connection error; closing", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}

/// This server's connection to one peer's election port, opened on demand. Notifications sent
/// while it is down are dropped but the newest, which goes out once it connects.
final class ElectionLink: Sendable {
    struct State {
        var channel: (any Channel)?
        var connecting = false
        var pending: ElectionNotification?
        var closed = false
    }
    let peer: ServerID
    let address: PeerAddress
    let myID: ServerID
    let group: any EventLoopGroup
    let logger: Logger
    private let state = Mutex(State())

    init(peer: ServerID, address: PeerAddress, myID: ServerID, group: any EventLoopGroup, logger: Logger) {
        self.peer = peer
        self.address = address
        self.myID = myID
        self.group = group
        self.logger = logger
    }

    func send(_ notification: ElectionNotification) {
        enum Next {
            case write(any Channel)
            case connect
            case nothing
        }
        let next = state.withLock { s -> Next in
            if s.closed { return .nothing }
            if let channel = s.channel, channel.isActive { return .write(channel) }
            s.channel = nil
            s.pending = notification
            if s.connecting { return .nothing }
            s.connecting = true
            return .connect
        }
        switch next {
        case .write(let channel): Self.write(notification, to: channel)
        case .nothing: break
        case .connect: connect()
        }
    }

    static func write(_ notification: ElectionNotification, to channel: any Channel) {
        var body = ByteBuffer()
        notification.write(to: &body)
        var frame = channel.allocator.buffer(capacity: 4 + body.readableBytes)
        frame.writeInteger(Int32(body.readableBytes))
        frame.writeBuffer(&body)
        channel.writeAndFlush(NIOAny(frame), promise: nil)
    }

    private func connect() {
        let header = ElectionConnectionHeader(
            protocolVersion: ElectionConnectionHeader.protocolVersion1, serverID: Int64(bitPattern: myID.rawValue),
            addresses: "\(address.host):\(address.electionPort)")
        ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(500))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                // Inbound bytes on this connection are never expected; drop them.
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(DiscardInbound()) }
            }
            .connect(host: address.host, port: address.electionPort)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    var buffer = channel.allocator.buffer(capacity: 64)
                    header.write(to: &buffer)
                    channel.write(NIOAny(buffer), promise: nil)
                    let pending = self.state.withLock { s -> ElectionNotification? in
                        s.connecting = false
                        if s.closed { return nil }
                        s.channel = channel
                        defer { s.pending = nil }
                        return s.pending
                    }
                    if let pending { Self.write(pending, to: channel) } else { channel.flush() }
                    if self.state.withLock({ $0.closed }) { channel.close(promise: nil) }
                case .failure:
                    self.state.withLock { s in
                        s.connecting = false
                        s.pending = nil
                    }
                }
            }
    }

    func close() {
        let channel = state.withLock { s -> (any Channel)? in
            s.closed = true
            return s.channel
        }
        channel?.close(promise: nil)
    }
}

final class DiscardInbound: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
