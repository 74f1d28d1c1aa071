import KeeperModel
import NIOCore

/// The xids ZooKeeper reserves (ClientCnxn): replies carrying them are not answers to a
/// numbered request.
public enum SpecialXid {
    /// A watch notification: ReplyHeader then WatcherEvent.
    public static let notification: Int32 = -1
    /// A ping and its reply.
    public static let ping: Int32 = -2
    /// An AuthPacket (addAuth) and its reply.
    public static let auth: Int32 = -4
    /// A SetWatches/SetWatches2 sent on reconnect and its reply.
    public static let setWatches: Int32 = -8
}

/// `RequestHeader{int xid; int type}`, in front of every request after the handshake.
///
/// `type` stays a raw value here so that an unknown opcode can still be answered with its xid;
/// `Request.decode(header:from:)` turns it into a typed request or a typed error.
public struct RequestHeader: JuteRecord {
    public var xid: Int32
    public var type: Int32

    public init(xid: Int32, type: Int32) {
        self.xid = xid
        self.type = type
    }

    public init(xid: Int32, type: OpCode) {
        self.init(xid: xid, type: type.rawValue)
    }

    /// The opcode, when it is one ZooKeeper defines.
    public var opCode: OpCode? { OpCode(rawValue: type) }

    @inlinable
    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        guard let (xid, type) = reader.buffer.readMultipleIntegers(endianness: .big, as: (Int32, Int32).self) else {
            self.xid = try reader.readInt("RequestHeader", "xid")
            self.type = try reader.readInt("RequestHeader", "type")
            return
        }
        self.xid = xid
        self.type = type
    }

    @inlinable
    public func write(to buffer: inout ByteBuffer) {
        let (xid, type) = (self.xid, self.type)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 8) { raw in
            raw.storeBytes(of: xid.bigEndian, toByteOffset: 0, as: Int32.self)
            raw.storeBytes(of: type.bigEndian, toByteOffset: 4, as: Int32.self)
            return 8
        }
    }
}

/// `ReplyHeader{int xid; long zxid; int err}`, in front of every reply after the handshake.
///
/// `err` stays raw so that a reply from a newer server still decodes; `code` maps it.
public struct ReplyHeader: JuteRecord {
    public var xid: Int32
    /// The server's last zxid when it answered.
    public var zxid: Zxid
    public var err: Int32

    public init(xid: Int32, zxid: Zxid, err: KeeperErrorCode = .ok) {
        self.xid = xid
        self.zxid = zxid
        self.err = err.rawValue
    }

    public init(xid: Int32, zxid: Zxid, rawErr: Int32) {
        self.xid = xid
        self.zxid = zxid
        self.err = rawErr
    }

    /// The result code, when it is one ZooKeeper defines.
    public var code: KeeperErrorCode? { KeeperErrorCode(rawValue: err) }

    /// The encoded size of a ReplyHeader: 16 bytes.
    public static let encodedSize = 16

    @inlinable
    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        guard let (xid, zxid, err) = reader.buffer.readMultipleIntegers(endianness: .big, as: (Int32, Int64, Int32).self) else {
            // Field by field, for an error that names the missing one.
            self.xid = try reader.readInt("ReplyHeader", "xid")
            self.zxid = Zxid(try reader.readLong("ReplyHeader", "zxid"))
            self.err = try reader.readInt("ReplyHeader", "err")
            return
        }
        self.xid = xid
        self.zxid = Zxid(zxid)
        self.err = err
    }

    /// Written in one access to the buffer's storage (see `Stat.write(to:)`).
    @inlinable
    public func write(to buffer: inout ByteBuffer) {
        let (xid, zxid, err) = (self.xid, self.zxid.rawValue, self.err)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: ReplyHeader.encodedSize) { raw in
            raw.storeBytes(of: xid.bigEndian, toByteOffset: 0, as: Int32.self)
            raw.storeBytes(of: zxid.bigEndian, toByteOffset: 4, as: Int64.self)
            raw.storeBytes(of: err.bigEndian, toByteOffset: 12, as: Int32.self)
            return ReplyHeader.encodedSize
        }
    }
}

/// `MultiHeader{int type; boolean done; int err}`: in front of every op of a multi request
/// (err -1) and of every result of its reply; `{-1, true, -1}` ends the list.
public struct MultiHeader: JuteRecord {
    public var type: Int32
    public var done: Bool
    public var err: Int32

    public init(type: Int32, done: Bool, err: Int32) {
        self.type = type
        self.done = done
        self.err = err
    }

    /// The end marker `{-1, true, -1}`.
    public static let end = MultiHeader(type: -1, done: true, err: -1)

    @inlinable
    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        type = try reader.readInt("MultiHeader", "type")
        done = try reader.readBool("MultiHeader", "done")
        err = try reader.readInt("MultiHeader", "err")
    }

    @inlinable
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteInt(type)
        buffer.writeJuteBool(done)
        buffer.writeJuteInt(err)
    }
}

/// `AuthPacket{int type; ustring scheme; buffer auth}`: addAuth (opcode 100, xid -4).
public struct AuthPacket: JuteRecord {
    /// Always 0 in every client.
    public var type: Int32
    public var scheme: String
    /// The credentials (for `digest`: `user:password`); nil when the client sent a null buffer.
    public var auth: [UInt8]?

    public init(type: Int32 = 0, scheme: String, auth: [UInt8]?) {
        self.type = type
        self.scheme = scheme
        self.auth = auth
    }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        type = try reader.readInt("AuthPacket", "type")
        scheme = try reader.readNonNullString("AuthPacket", "scheme")
        auth = try reader.readBytes("AuthPacket", "auth")
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteInt(type)
        buffer.writeJuteString(scheme)
        buffer.writeJuteBuffer(auth)
    }
}

extension WatchEvent: JuteRecord {
    /// `WatcherEvent{int type; int state; ustring path}`, sent after a ReplyHeader with xid -1.
    /// An event type or state outside KeeperModel's enums is a typed error (`unknownEnumValue`):
    /// a client acting on an event it cannot name would be acting on a guess.
    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        let typeAt = reader.offset
        let rawType = try reader.readInt("WatcherEvent", "type")
        guard let type = EventType(rawValue: rawType) else {
            throw JuteDecodingError("WatcherEvent", "type", offset: typeAt, .unknownEnumValue(rawType))
        }
        let stateAt = reader.offset
        let rawState = try reader.readInt("WatcherEvent", "state")
        guard let state = KeeperState(rawValue: rawState) else {
            throw JuteDecodingError("WatcherEvent", "state", offset: stateAt, .unknownEnumValue(rawState))
        }
        // Servers always send a path; a null one (only ever seen in client-local state events)
        // is read as "" because WatchEvent.path is not optional.
        let path = try reader.readString("WatcherEvent", "path")
        self.init(type: type, state: state, path: path ?? "")
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteInt(type.rawValue)
        buffer.writeJuteInt(state.rawValue)
        buffer.writeJuteString(path)
    }
}
