import KeeperModel
import NIOCore

/// The body of a reply, by record shape (several opcodes share one record).
///
/// | opcodes | case |
/// |---|---|
/// | delete, closeSession, checkWatches, removeWatches, setWatches(2), auth, ping, any error reply | `.empty` |
/// | create | `.create` (CreateResponse) |
/// | create2, createContainer, createTTL | `.create2` (Create2Response) |
/// | exists, setData, setACL, check | `.stat` |
/// | getData, reconfig | `.getData` |
/// | getACL | `.getACL` |
/// | getChildren, getEphemerals | `.strings` |
/// | getChildren2 | `.children2` |
/// | sync | `.sync` |
/// | multi, multiRead | `.multi` |
/// | sasl | `.sasl` |
/// | getAllChildrenNumber, addWatch (ZooKeeper answers `ErrorResponse{0}`) | `.int` |
/// | whoAmI | `.whoAmI` |
/// | (xid -1) watch notification | `.watchEvent` |
public enum Response: Hashable, Sendable {
    case empty
    case create(CreateResponse)
    case create2(Create2Response)
    case stat(StatResponse)
    case getData(GetDataResponse)
    case getACL(GetACLResponse)
    case strings(StringListResponse)
    case children2(GetChildren2Response)
    case sync(SyncResponse)
    case multi(MultiResponse)
    case sasl(SetSASLResponse)
    case int(IntResponse)
    case whoAmI(WhoAmIResponse)
    case watchEvent(WatchEvent)

    /// Decodes the body of a reply to a request of type `opCode` (the client remembers it by
    /// xid). A reply with a non-zero `err` and no body is `.empty`; a notification (xid -1) is
    /// decoded as a WatcherEvent whatever `opCode` is.
    public static func decode(
        for opCode: OpCode, header: ReplyHeader, from reader: inout JuteReader
    ) throws(JuteDecodingError) -> Response {
        if header.xid == SpecialXid.notification { return .watchEvent(try WatchEvent(jute: &reader)) }
        if header.err != 0 && reader.isAtEnd { return .empty }
        switch opCode {
        case .delete, .closeSession, .checkWatches, .removeWatches, .setWatches, .setWatches2, .auth, .ping,
            .createSession:
            return .empty
        case .create: return .create(try CreateResponse(jute: &reader))
        case .create2, .createContainer, .createTTL: return .create2(try Create2Response(jute: &reader))
        case .exists, .setData, .setACL, .check: return .stat(try StatResponse(jute: &reader))
        case .getData, .reconfig: return .getData(try GetDataResponse(jute: &reader))
        case .getACL: return .getACL(try GetACLResponse(jute: &reader))
        case .getChildren, .getEphemerals: return .strings(try StringListResponse(jute: &reader))
        case .getChildren2: return .children2(try GetChildren2Response(jute: &reader))
        case .sync: return .sync(try SyncResponse(jute: &reader))
        case .multi, .multiRead: return .multi(try MultiResponse(jute: &reader))
        case .sasl: return .sasl(try SetSASLResponse(jute: &reader))
        case .getAllChildrenNumber, .addWatch: return .int(try IntResponse(jute: &reader))
        case .whoAmI: return .whoAmI(try WhoAmIResponse(jute: &reader))
        case .notification: return .watchEvent(try WatchEvent(jute: &reader))
        case .deleteContainer, .error:
            throw JuteDecodingError("ReplyHeader", "type", offset: 0, .unknownType(opCode.rawValue))
        }
    }

    /// Writes the body (not the header).
    public func write(to buffer: inout ByteBuffer) {
        switch self {
        case .empty: break
        case .create(let r), .sync(let r): r.write(to: &buffer)
        case .create2(let r): r.write(to: &buffer)
        case .stat(let r): r.write(to: &buffer)
        case .getData(let r): r.write(to: &buffer)
        case .getACL(let r): r.write(to: &buffer)
        case .strings(let r): r.write(to: &buffer)
        case .children2(let r): r.write(to: &buffer)
        case .multi(let r): r.write(to: &buffer)
        case .sasl(let r): r.write(to: &buffer)
        case .int(let r): r.write(to: &buffer)
        case .whoAmI(let r): r.write(to: &buffer)
        case .watchEvent(let r): r.write(to: &buffer)
        }
    }
}

/// Reply encoders for the server: each writes one whole frame (length, ReplyHeader, body)
/// straight into the outbound buffer, with no intermediate buffer or array.
extension ByteBuffer {
    /// A reply with no body: errors, delete, ping (xid -2), auth (xid -4), setWatches (xid -8), ...
    @inlinable
    public mutating func writeReply(_ header: ReplyHeader) {
        writeJuteFrame { (b: inout ByteBuffer) in header.write(to: &b) }
    }

    /// A reply with a body.
    public mutating func writeReply(_ header: ReplyHeader, _ response: Response) {
        writeJuteFrame { (b: inout ByteBuffer) in
            header.write(to: &b)
            response.write(to: &b)
        }
    }

    /// A reply whose body is one record.
    @inlinable
    public mutating func writeReply<R: JuteRecord>(_ header: ReplyHeader, record: R) {
        writeJuteFrame { (b: inout ByteBuffer) in
            header.write(to: &b)
            record.write(to: &b)
        }
    }

    /// A getData reply with the data copied once, from wherever the store holds it (an LMDB
    /// value, an array): nil data is a null buffer.
    @inlinable
    public mutating func writeGetDataReply(xid: Int32, zxid: Zxid, data: UnsafeRawBufferPointer?, stat: Stat) {
        writeJuteFrame { (b: inout ByteBuffer) in
            ReplyHeader(xid: xid, zxid: zxid, err: .ok).write(to: &b)
            b.writeJuteBuffer(data)
            stat.write(to: &b)
        }
    }

    /// A watch notification: ReplyHeader{-1, zxid, 0} then WatcherEvent. ZooKeeper 3.8 sends
    /// zxid -1 here; 3.9 sends the zxid of the change.
    public mutating func writeNotification(_ event: WatchEvent, zxid: Zxid = Zxid(-1)) {
        writeReply(ReplyHeader(xid: SpecialXid.notification, zxid: zxid, err: .ok), record: event)
    }

    /// The handshake reply (no ReplyHeader).
    public mutating func writeConnectResponse(_ response: ConnectResponse) {
        writeJuteFrame { (b: inout ByteBuffer) in response.write(to: &b) }
    }
}
