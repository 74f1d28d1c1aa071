import KeeperModel
import NIOCore

/// A client request, one case per opcode, each with its record (zookeeper.jute). The server
/// decodes a frame's RequestHeader, then `Request.decode(type:from:)` picks the record by
/// `RequestHeader.type`.
public enum Request: Hashable, Sendable {
    case create(CreateRequest)  // 1
    case delete(DeleteRequest)  // 2
    case exists(ExistsRequest)  // 3
    case getData(GetDataRequest)  // 4
    case setData(SetDataRequest)  // 5
    case getACL(GetACLRequest)  // 6
    case setACL(SetACLRequest)  // 7
    case getChildren(GetChildrenRequest)  // 8
    case sync(SyncRequest)  // 9
    /// No record; sent with xid -2.
    case ping  // 11
    case getChildren2(GetChildren2Request)  // 12
    case check(CheckVersionRequest)  // 13
    case multi(MultiRequest)  // 14
    case create2(CreateRequest)  // 15
    case reconfig(ReconfigRequest)  // 16
    case checkWatches(CheckWatchesRequest)  // 17
    case removeWatches(RemoveWatchesRequest)  // 18
    case createContainer(CreateRequest)  // 19
    case createTTL(CreateTTLRequest)  // 21
    case multiRead(MultiRequest)  // 22
    /// Sent with xid -4.
    case auth(AuthPacket)  // 100
    /// SetWatches, sent with xid -8.
    case setWatches(SetWatches)  // 101
    case sasl(GetSASLRequest)  // 102
    case getEphemerals(GetEphemeralsRequest)  // 103
    case getAllChildrenNumber(GetAllChildrenNumberRequest)  // 104
    /// SetWatches2, sent with xid -8.
    case setWatches2(SetWatches)  // 105
    case addWatch(AddWatchRequest)  // 106
    /// No record.
    case whoAmI  // 107
    /// No record.
    case closeSession  // -11
    /// Internal (a learner forwarding a new session to the leader).
    case createSession(CreateSessionRequest)  // -10

    public var opCode: OpCode {
        switch self {
        case .create: .create
        case .delete: .delete
        case .exists: .exists
        case .getData: .getData
        case .setData: .setData
        case .getACL: .getACL
        case .setACL: .setACL
        case .getChildren: .getChildren
        case .sync: .sync
        case .ping: .ping
        case .getChildren2: .getChildren2
        case .check: .check
        case .multi: .multi
        case .create2: .create2
        case .reconfig: .reconfig
        case .checkWatches: .checkWatches
        case .removeWatches: .removeWatches
        case .createContainer: .createContainer
        case .createTTL: .createTTL
        case .multiRead: .multiRead
        case .auth: .auth
        case .setWatches: .setWatches
        case .sasl: .sasl
        case .getEphemerals: .getEphemerals
        case .getAllChildrenNumber: .getAllChildrenNumber
        case .setWatches2: .setWatches2
        case .addWatch: .addWatch
        case .whoAmI: .whoAmI
        case .closeSession: .closeSession
        case .createSession: .createSession
        }
    }

    /// Decodes the record that follows a RequestHeader of this `type`.
    ///
    /// An opcode outside the list above (including deleteContainer 20, which only the server's
    /// container manager issues, and notification 0 / error -1, which are not requests) is a
    /// typed error `unknownType` at `typeOffset`; the caller still has the header's xid to
    /// answer with. Bytes after the record are left in `reader`: ZooKeeper ignores them too.
    public static func decode(
        type: Int32, from reader: inout JuteReader, typeOffset: Int = 4
    ) throws(JuteDecodingError) -> Request {
        guard let op = OpCode(rawValue: type) else {
            throw JuteDecodingError("RequestHeader", "type", offset: typeOffset, .unknownType(type))
        }
        switch op {
        case .create: return .create(try CreateRequest(jute: &reader))
        case .delete: return .delete(try DeleteRequest(jute: &reader))
        case .exists: return .exists(try ExistsRequest(jute: &reader))
        case .getData: return .getData(try GetDataRequest(jute: &reader))
        case .setData: return .setData(try SetDataRequest(jute: &reader))
        case .getACL: return .getACL(try GetACLRequest(jute: &reader))
        case .setACL: return .setACL(try SetACLRequest(jute: &reader))
        case .getChildren: return .getChildren(try GetChildrenRequest(jute: &reader))
        case .sync: return .sync(try SyncRequest(jute: &reader))
        case .ping: return .ping
        case .getChildren2: return .getChildren2(try GetChildren2Request(jute: &reader))
        case .check: return .check(try CheckVersionRequest(jute: &reader))
        case .multi: return .multi(try MultiRequest(jute: &reader, read: false))
        case .create2: return .create2(try CreateRequest(jute: &reader))
        case .reconfig: return .reconfig(try ReconfigRequest(jute: &reader))
        case .checkWatches: return .checkWatches(try CheckWatchesRequest(jute: &reader))
        case .removeWatches: return .removeWatches(try RemoveWatchesRequest(jute: &reader))
        case .createContainer: return .createContainer(try CreateRequest(jute: &reader))
        case .createTTL: return .createTTL(try CreateTTLRequest(jute: &reader))
        case .multiRead: return .multiRead(try MultiRequest(jute: &reader, read: true))
        case .auth: return .auth(try AuthPacket(jute: &reader))
        case .setWatches: return .setWatches(try SetWatches(jute: &reader, version2: false))
        case .sasl: return .sasl(try GetSASLRequest(jute: &reader))
        case .getEphemerals: return .getEphemerals(try GetEphemeralsRequest(jute: &reader))
        case .getAllChildrenNumber: return .getAllChildrenNumber(try GetAllChildrenNumberRequest(jute: &reader))
        case .setWatches2: return .setWatches2(try SetWatches(jute: &reader, version2: true))
        case .addWatch: return .addWatch(try AddWatchRequest(jute: &reader))
        case .whoAmI: return .whoAmI
        case .closeSession: return .closeSession
        case .createSession: return .createSession(try CreateSessionRequest(jute: &reader))
        case .notification, .deleteContainer, .error:
            throw JuteDecodingError("RequestHeader", "type", offset: typeOffset, .unknownType(type))
        }
    }

    /// Decodes a whole request frame payload (RequestHeader + record).
    public static func decode(
        frame: ByteBuffer, maxLength: Int = Limits.default.maxBuffer
    ) throws(JuteDecodingError) -> (header: RequestHeader, request: Request) {
        var reader = JuteReader(frame, maxLength: maxLength)
        let header = try RequestHeader(jute: &reader)
        let request = try decode(type: header.type, from: &reader)
        return (header, request)
    }

    /// Writes the request's record (not its header).
    public func write(to buffer: inout ByteBuffer) {
        switch self {
        case .create(let r), .create2(let r), .createContainer(let r): r.write(to: &buffer)
        case .delete(let r), .check(let r): r.write(to: &buffer)
        case .exists(let r), .getData(let r), .getChildren(let r), .getChildren2(let r): r.write(to: &buffer)
        case .setData(let r): r.write(to: &buffer)
        case .getACL(let r), .sync(let r), .getEphemerals(let r), .getAllChildrenNumber(let r): r.write(to: &buffer)
        case .setACL(let r): r.write(to: &buffer)
        case .ping, .whoAmI, .closeSession: break
        case .multi(let r), .multiRead(let r): r.write(to: &buffer)
        case .reconfig(let r): r.write(to: &buffer)
        case .checkWatches(let r), .removeWatches(let r): r.write(to: &buffer)
        case .createTTL(let r): r.write(to: &buffer)
        case .auth(let r): r.write(to: &buffer)
        case .setWatches(let r): r.write(to: &buffer, version2: false)
        case .setWatches2(let r): r.write(to: &buffer, version2: true)
        case .sasl(let r): r.write(to: &buffer)
        case .addWatch(let r): r.write(to: &buffer)
        case .createSession(let r): r.write(to: &buffer)
        }
    }

    /// Writes a whole request frame: length, RequestHeader{xid, opCode}, record.
    public func writeFrame(xid: Int32, to buffer: inout ByteBuffer) {
        buffer.writeJuteFrame { (b: inout ByteBuffer) in
            RequestHeader(xid: xid, type: opCode).write(to: &b)
            write(to: &b)
        }
    }
}
