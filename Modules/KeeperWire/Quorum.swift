import KeeperModel
import NIOCore

/// QuorumPacket types (`Leader.java`): the messages of ZAB's discovery, synchronization and
/// broadcast phases between a leader and its learners. A type outside 1...19 is a typed error.
public enum QuorumPacketType: Int32, Hashable, Sendable, CaseIterable {
    /// A learner forwards a client write to the leader (data: `ForwardedRequest`).
    case request = 1
    /// The leader proposes a txn (data: TxnHeader + record + digest, see `TxnCodec`).
    case proposal = 2
    case ack = 3
    case commit = 4
    case ping = 5
    case revalidate = 6
    case sync = 7
    /// To observers: a committed txn with its data.
    case inform = 8
    case commitAndActivate = 9
    case newLeader = 10
    /// data: `LearnerInfo`.
    case followerInfo = 11
    case upToDate = 12
    case diff = 13
    case trunc = 14
    case snap = 15
    /// data: `LearnerInfo`.
    case observerInfo = 16
    /// data: the leader's protocol version (int).
    case leaderInfo = 17
    /// data: the learner's current epoch (int).
    case ackEpoch = 18
    case informAndActivate = 19
}

/// `QuorumPacket{int type; long zxid; buffer data; vector<Id> authinfo}`. On a leader-learner
/// connection packets follow each other with no length prefix (ZooKeeper writes them with
/// `BinaryOutputArchive.writeRecord`): read them with `QuorumPacketDecoder`.
public struct QuorumPacket: JuteRecord {
    public var type: QuorumPacketType
    public var zxid: Zxid
    /// The payload, a slice of the frame; nil is a null buffer (COMMIT, PING without data).
    public var data: ByteBuffer?
    /// The client's auth ids on a REQUEST; nil is a null vector.
    public var authInfo: [Id]?

    public init(type: QuorumPacketType, zxid: Zxid, data: ByteBuffer? = nil, authInfo: [Id]? = nil) {
        self.type = type
        self.zxid = zxid
        self.data = data
        self.authInfo = authInfo
    }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        let typeAt = reader.offset
        let raw = try reader.readInt("QuorumPacket", "type")
        guard let type = QuorumPacketType(rawValue: raw) else {
            throw JuteDecodingError("QuorumPacket", "type", offset: typeAt, .unknownType(raw))
        }
        self.type = type
        zxid = Zxid(try reader.readLong("QuorumPacket", "zxid"))
        data = try reader.readBuffer("QuorumPacket", "data")
        authInfo = try reader.readVector("QuorumPacket", "authinfo", minimumElementSize: 8) {
            (r: inout JuteReader) throws(JuteDecodingError) in try Id(jute: &r)
        }
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteInt(type.rawValue)
        buffer.writeJuteLong(zxid.rawValue)
        buffer.writeJuteBuffer(data)
        buffer.writeJuteVector(authInfo) { $1.write(to: &$0) }
    }
}

/// Splits a leader-learner byte stream into QuorumPackets. Packets carry no length prefix, so
/// a packet is decoded as soon as all its fields are there; a packet cut short by the stream is
/// "need more bytes", never an error, while every length is still checked against
/// `jute.maxbuffer` first, so an absurd length fails at once instead of being waited for.
public struct QuorumPacketDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = QuorumPacket

    public let maxLength: Int

    public init(maxLength: Int = Limits.default.maxBuffer) {
        precondition(maxLength >= 0, "jute.maxbuffer must not be negative")
        self.maxLength = maxLength
    }

    /// The next whole packet at the front of `buffer` (consumed), or nil (nothing consumed).
    public func next(from buffer: inout ByteBuffer) throws(JuteDecodingError) -> QuorumPacket? {
        var reader = JuteReader(buffer, maxLength: maxLength)
        do {
            let packet = try QuorumPacket(jute: &reader)
            buffer = reader.buffer
            return packet
        } catch {
            if case .truncated = error.reason { return nil }
            throw error
        }
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let packet = try next(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(packet))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

/// `LearnerInfo{long serverid; int protocolVersion; long configVersion}`: the data of
/// FOLLOWERINFO / OBSERVERINFO.
public struct LearnerInfo: JuteRecord {
    public var serverID: Int64
    /// 0x10000 since ZooKeeper 3.4.
    public var protocolVersion: Int32
    public var configVersion: Int64

    public init(serverID: Int64, protocolVersion: Int32 = 0x10000, configVersion: Int64) {
        self.serverID = serverID
        self.protocolVersion = protocolVersion
        self.configVersion = configVersion
    }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        serverID = try reader.readLong("LearnerInfo", "serverid")
        protocolVersion = try reader.readInt("LearnerInfo", "protocolVersion")
        configVersion = try reader.readLong("LearnerInfo", "configVersion")
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteLong(serverID)
        buffer.writeJuteInt(protocolVersion)
        buffer.writeJuteLong(configVersion)
    }
}

/// The data of a REQUEST packet (`Learner.request`): the client's session, cxid and opcode,
/// then the request record's bytes, unframed.
public struct ForwardedRequest: Hashable, Sendable {
    public var sessionID: SessionID
    public var cxid: Int32
    /// The raw opcode (decode the body with `Request.decode(type:from:)`).
    public var type: Int32
    /// The request record, a slice of the packet data.
    public var body: ByteBuffer

    public init(sessionID: SessionID, cxid: Int32, type: Int32, body: ByteBuffer) {
        self.sessionID = sessionID
        self.cxid = cxid
        self.type = type
        self.body = body
    }

    public init(decoding data: ByteBuffer) throws(JuteDecodingError) {
        var reader = JuteReader(data)
        sessionID = SessionID(try reader.readLong("ForwardedRequest", "sessionId"))
        cxid = try reader.readInt("ForwardedRequest", "cxid")
        type = try reader.readInt("ForwardedRequest", "type")
        body = reader.buffer
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteLong(sessionID.rawValue)
        buffer.writeJuteInt(cxid)
        buffer.writeJuteInt(type)
        buffer.writeImmutableBuffer(body)
    }
}

/// A FastLeaderElection notification (`FastLeaderElection.buildMsg`), the payload of one
/// election-connection message (4-byte length, then these bytes, at most `maxMessageSize`:
/// split them with `JuteFrameDecoder(maxFrameLength: ElectionNotification.maxMessageSize)`).
///
/// Layout: `int state; long leader; long zxid; long electionEpoch; long peerEpoch; int version;
/// int configLength; byte[configLength] config` (version 2, ZooKeeper 3.5+). ZooKeeper still reads
/// two older layouts, by total length: 28 bytes (no peerEpoch, which is then the epoch of
/// `zxid`, and no version) and 40 bytes (a version int that is ignored: no config).
public struct ElectionNotification: Hashable, Sendable {
    /// QuorumPeer.ServerState.
    public enum ServerState: Int32, Hashable, Sendable, CaseIterable {
        case looking = 0
        case following = 1
        case leading = 2
        case observing = 3
    }

    /// `QuorumCnxManager.PACKETMAXSIZE`: the largest election message ZooKeeper accepts.
    public static let maxMessageSize = 512 * 1024
    /// The smallest message ZooKeeper accepts.
    public static let minimumSize = 28
    /// The layout without config (ZooKeeper 3.4).
    public static let sizeWithoutConfig = 40

    public var state: ServerState
    /// The proposed leader's server id.
    public var leader: Int64
    /// The proposed leader's last zxid.
    public var zxid: Zxid
    public var electionEpoch: Int64
    public var peerEpoch: Int64
    /// 2 when `config` is present; in a 40-byte message the value sent (ZooKeeper ignores it).
    public var version: Int32
    /// The sender's quorum configuration (the `server.N=...` lines and `version=`), as bytes;
    /// nil for the 40-byte layout.
    public var config: [UInt8]?

    public init(
        state: ServerState, leader: Int64, zxid: Zxid, electionEpoch: Int64, peerEpoch: Int64,
        version: Int32 = 2, config: [UInt8]?
    ) {
        self.state = state
        self.leader = leader
        self.zxid = zxid
        self.electionEpoch = electionEpoch
        self.peerEpoch = peerEpoch
        self.version = version
        self.config = config
    }

    /// Decodes one message payload (its whole length matters, as in ZooKeeper).
    public init(decoding message: ByteBuffer) throws(JuteDecodingError) {
        var reader = JuteReader(message, maxLength: message.readableBytes)
        let total = reader.remaining
        if total < Self.minimumSize { throw reader.truncated("Notification", "state", needed: Self.minimumSize) }
        let stateAt = reader.offset
        let rawState = try reader.readInt("Notification", "state")
        guard let state = ServerState(rawValue: rawState) else {
            throw JuteDecodingError("Notification", "state", offset: stateAt, .unknownEnumValue(rawState))
        }
        self.state = state
        leader = try reader.readLong("Notification", "leader")
        zxid = Zxid(try reader.readLong("Notification", "zxid"))
        electionEpoch = try reader.readLong("Notification", "electionEpoch")
        if total == Self.minimumSize {
            peerEpoch = Int64(zxid.epoch)
            version = 0
            config = nil
            return
        }
        peerEpoch = try reader.readLong("Notification", "peerEpoch")
        version = try reader.readInt("Notification", "version")
        if total == Self.sizeWithoutConfig || version <= 1 {
            config = nil
        } else {
            // readBytes bounds the length by the message (maxLength is the message size).
            guard let config = try reader.readBytes("Notification", "config") else {
                throw JuteDecodingError("Notification", "configLength", offset: 40, .negativeLength(-1))
            }
            self.config = config
        }
    }

    /// Writes the payload: version-2 layout with config, or the 40-byte layout without.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteInt(state.rawValue)
        buffer.writeJuteLong(leader)
        buffer.writeJuteLong(zxid.rawValue)
        buffer.writeJuteLong(electionEpoch)
        buffer.writeJuteLong(peerEpoch)
        buffer.writeJuteInt(version)
        if let config {
            precondition(version > 1, "a notification carries config only from version 2 on")
            buffer.writeJuteBuffer(config)
        }
    }
}

/// The first message on an election connection (`QuorumCnxManager.InitialMessage`): protocol
/// version (-65536 for one address, -65535 for `host:port|host:port` lists), the sender's
/// server id, then its election address(es) as a length-prefixed UTF-8 string.
public struct ElectionConnectionHeader: Hashable, Sendable {
    public static let protocolVersion1: Int64 = -65536
    public static let protocolVersion2: Int64 = -65535

    public var protocolVersion: Int64
    public var serverID: Int64
    public var addresses: String

    public init(protocolVersion: Int64 = protocolVersion2, serverID: Int64, addresses: String) {
        self.protocolVersion = protocolVersion
        self.serverID = serverID
        self.addresses = addresses
    }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        let at = reader.offset
        protocolVersion = try reader.readLong("InitialMessage", "protocolVersion")
        guard protocolVersion == Self.protocolVersion1 || protocolVersion == Self.protocolVersion2 else {
            throw JuteDecodingError("InitialMessage", "protocolVersion", offset: at, .invalidValue(protocolVersion))
        }
        serverID = try reader.readLong("InitialMessage", "sid")
        addresses = try reader.readNonNullString("InitialMessage", "addresses")
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteLong(protocolVersion)
        buffer.writeJuteLong(serverID)
        buffer.writeJuteString(addresses)
    }
}
