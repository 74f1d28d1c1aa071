import KeeperModel
import KeeperWire
import NIOCore
import NIOPosix

/// A connected ZooKeeper session, one TCP connection: the handle async code uses to run jobs
/// on it. Everything it does hops onto the connection's event loop, where `SessionHandler` lives.
struct Session: Sendable {
    let index: Int
    let server: HostPort
    let channel: any Channel
    let sessionID: SessionID
    /// The session timeout the server granted, in milliseconds.
    let negotiatedTimeout: Int32
    private let handler: NIOLoopBound<SessionHandler>

    /// Connects to `address` and opens a new session there.
    static func open(
        index: Int, server: HostPort, address: SocketAddress, group: any EventLoopGroup,
        capacity: Int, requestedTimeout: Int32, connectTimeout: TimeAmount
    ) async throws -> Session {
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(ByteToMessageHandler(JuteFrameDecoder()))
                    try pipeline.addHandler(
                        SessionHandler(server: server, index: index, requestedTimeout: requestedTimeout, capacity: capacity))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(to: address).get()
        } catch {
            throw BenchError.connectFailed(server, session: index, underlying: "\(error)")
        }
        let loop = channel.eventLoop
        let handler = try await loop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: SessionHandler.self), eventLoop: loop)
        }.get()
        // A server that accepts the connection but never answers the ConnectRequest is cut
        // off after the connect timeout.
        let guardTask = loop.scheduleTask(in: connectTimeout) { handler.value.handshakeTimedOut(after: connectTimeout) }
        defer { guardTask.cancel() }
        let response = try await loop.flatSubmit { handler.value.handshakeResult }.get()
        return Session(
            index: index, server: server, channel: channel, sessionID: response.sessionID,
            negotiatedTimeout: response.timeOut, handler: handler)
    }

    /// Runs `job` and returns what it did once every request it sent has been answered.
    func run(_ job: Job) async throws -> JobOutcome {
        let loop = channel.eventLoop
        let handler = self.handler
        return try await loop.flatSubmit { handler.value.start(job, on: loop) }.get()
    }

    /// Ends the running job early (see `SessionHandler.interrupt()`); does not wait.
    func interrupt() {
        let handler = self.handler
        channel.eventLoop.execute { handler.value.interrupt() }
    }

    /// How many requests the last job sent (also after it failed).
    func lastJobSent() async throws -> Int {
        let handler = self.handler
        return try await channel.eventLoop.submit { handler.value.lastJobSent }.get()
    }

    /// Ends the session (closeSession, so the server drops it at once instead of after its
    /// timeout) and the connection. Waits at most `timeout` for the server's answer.
    func close(timeout: TimeAmount) async throws {
        let loop = channel.eventLoop
        let handler = self.handler
        let channel = self.channel
        let guardTask = loop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        defer { guardTask.cancel() }
        try await loop.flatSubmit { handler.value.close(on: loop) }.get()
        channel.close(promise: nil)
        try await channel.closeFuture.get()
    }
}
