import KeeperModel
import KeeperWire
import NIOCore

/// A client write a follower or observer forwards to the leader (the data of a REQUEST
/// QuorumPacket): who sent it, from which server, and the write as prep sees it. The leader
/// preps it against its own committed tree plus everything in flight, exactly as it preps its
/// own clients' writes, so there is one write path for every server of the ensemble.
///
/// The encoding is SwiftKeeper's own (the write as `WriteRequest`, not ZooKeeper's client
/// record); peers of an ensemble run the same SwiftKeeper, mixed ensembles with Apache
/// ZooKeeper are not supported.
struct ForwardedWrite: Hashable, Sendable {
    /// The server whose client sent it: the session's owner as that server believes it.
    var origin: UInt64
    var context: RequestContext
    var request: WriteRequest

    /// Encoding format: bumped when a field changes, refused when unknown.
    static let version: Int32 = 1

    func encode() -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeJuteInt(Self.version)
        buffer.writeJuteLong(Int64(bitPattern: origin))
        buffer.writeJuteLong(context.session.rawValue)
        buffer.writeJuteInt(context.cxid)
        buffer.writeJuteVector(context.authIds) { $1.write(to: &$0) }
        Self.write(request, to: &buffer)
        return Array(buffer.readableBytesView)
    }

    init(origin: UInt64, context: RequestContext, request: WriteRequest) {
        self.origin = origin
        self.context = context
        self.request = request
    }

    init(decoding bytes: [UInt8], maxLength: Int) throws {
        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        var reader = JuteReader(buffer, maxLength: maxLength)
        let at = reader.offset
        let version = try reader.readInt("ForwardedWrite", "version")
        guard version == Self.version else {
            throw PeerProtocolError("forwarded write: bad version \(version) at offset \(at)")
        }
        origin = UInt64(bitPattern: try reader.readLong("ForwardedWrite", "origin"))
        let session = SessionID(try reader.readLong("ForwardedWrite", "session"))
        let cxid = try reader.readInt("ForwardedWrite", "cxid")
        let ids = try reader.readVector("ForwardedWrite", "authIds", minimumElementSize: 8) {
            (r: inout JuteReader) throws(JuteDecodingError) in try Id(jute: &r)
        } ?? []
        context = RequestContext(session: session, cxid: cxid, authIds: ids)
        request = try Self.read(&reader, depth: 0)
    }

    // Tags of the WriteRequest cases on the wire.
    private enum Tag: Int32 {
        case create = 1, delete, setData, setACL, check, multi, createSession, closeSession, malformed
    }

    private static func write(_ request: WriteRequest, to buffer: inout ByteBuffer) {
        switch request {
        case .create(let op, let path, let data, let acl, let flags, let ttl):
            buffer.writeJuteInt(Tag.create.rawValue)
            buffer.writeJuteInt(op.rawValue)
            buffer.writeJuteString(path)
            buffer.writeJuteBuffer(data)
            buffer.writeJuteVector(acl) { $1.write(to: &$0) }
            buffer.writeJuteInt(flags)
            buffer.writeJuteLong(ttl)
        case .delete(let op, let path, let version):
            buffer.writeJuteInt(Tag.delete.rawValue)
            buffer.writeJuteInt(op.rawValue)
            buffer.writeJuteString(path)
            buffer.writeJuteInt(version)
        case .setData(let path, let data, let version):
            buffer.writeJuteInt(Tag.setData.rawValue)
            buffer.writeJuteString(path)
            buffer.writeJuteBuffer(data)
            buffer.writeJuteInt(version)
        case .setACL(let path, let acl, let version):
            buffer.writeJuteInt(Tag.setACL.rawValue)
            buffer.writeJuteString(path)
            buffer.writeJuteVector(acl) { $1.write(to: &$0) }
            buffer.writeJuteInt(version)
        case .check(let path, let version):
            buffer.writeJuteInt(Tag.check.rawValue)
            buffer.writeJuteString(path)
            buffer.writeJuteInt(version)
        case .multi(let ops):
            buffer.writeJuteInt(Tag.multi.rawValue)
            buffer.writeJuteInt(Int32(ops.count))
            for op in ops { write(op, to: &buffer) }
        case .createSession(let timeout):
            buffer.writeJuteInt(Tag.createSession.rawValue)
            buffer.writeJuteInt(timeout)
        case .closeSession:
            buffer.writeJuteInt(Tag.closeSession.rawValue)
        case .malformed(let op, let code):
            buffer.writeJuteInt(Tag.malformed.rawValue)
            buffer.writeJuteInt(op.rawValue)
            buffer.writeJuteInt(code.rawValue)
        }
    }

    private static func opCode(_ reader: inout JuteReader) throws -> OpCode {
        let at = reader.offset
        let raw = try reader.readInt("ForwardedWrite", "opCode")
        guard let op = OpCode(rawValue: raw) else { throw PeerProtocolError("forwarded write: bad opCode \(raw) at offset \(at)") }
        return op
    }

    private static func acl(_ reader: inout JuteReader) throws -> [ACL] {
        try reader.readVector("ForwardedWrite", "acl", minimumElementSize: 12) {
            (r: inout JuteReader) throws(JuteDecodingError) in try ACL(jute: &r)
        } ?? []
    }

    private static func read(_ reader: inout JuteReader, depth: Int) throws -> WriteRequest {
        let at = reader.offset
        let raw = try reader.readInt("ForwardedWrite", "tag")
        guard let tag = Tag(rawValue: raw) else { throw PeerProtocolError("forwarded write: bad tag \(raw) at offset \(at)") }
        switch tag {
        case .create:
            let op = try opCode(&reader)
            let path = try reader.readNonNullString("ForwardedWrite", "path")
            let data = try reader.readBytes("ForwardedWrite", "data")
            let acl = try acl(&reader)
            return .create(
                opCode: op, path: path, data: data, acl: acl, flags: try reader.readInt("ForwardedWrite", "flags"),
                ttl: try reader.readLong("ForwardedWrite", "ttl"))
        case .delete:
            let op = try opCode(&reader)
            let path = try reader.readNonNullString("ForwardedWrite", "path")
            return .delete(opCode: op, path: path, version: try reader.readInt("ForwardedWrite", "version"))
        case .setData:
            let path = try reader.readNonNullString("ForwardedWrite", "path")
            let data = try reader.readBytes("ForwardedWrite", "data")
            return .setData(path: path, data: data, version: try reader.readInt("ForwardedWrite", "version"))
        case .setACL:
            let path = try reader.readNonNullString("ForwardedWrite", "path")
            let acl = try acl(&reader)
            return .setACL(path: path, acl: acl, version: try reader.readInt("ForwardedWrite", "version"))
        case .check:
            let path = try reader.readNonNullString("ForwardedWrite", "path")
            return .check(path: path, version: try reader.readInt("ForwardedWrite", "version"))
        case .multi:
            let countAt = reader.offset
            let count = try reader.readInt("ForwardedWrite", "ops")
            // A multi holds no multi (prep refuses nesting), and every op takes at least 8 bytes.
            guard depth == 0, count >= 0, Int(count) <= reader.buffer.readableBytes / 8 else {
                throw PeerProtocolError("forwarded write: bad ops \(count) at offset \(countAt)")
            }
            var ops: [WriteRequest] = []
            ops.reserveCapacity(Int(count))
            for _ in 0..<count { ops.append(try read(&reader, depth: depth + 1)) }
            return .multi(ops)
        case .createSession:
            return .createSession(timeout: try reader.readInt("ForwardedWrite", "timeout"))
        case .closeSession:
            return .closeSession
        case .malformed:
            let op = try opCode(&reader)
            let codeAt = reader.offset
            let raw = try reader.readInt("ForwardedWrite", "code")
            guard let code = KeeperErrorCode(rawValue: raw) else {
                throw PeerProtocolError("forwarded write: bad code \(raw) at offset \(codeAt)")
            }
            return .malformed(op, code)
        }
    }
}

/// A peer sent bytes that break SwiftKeeper's peer protocol: the connection is closed and the
/// message says what was wrong and where.
struct PeerProtocolError: Error, CustomStringConvertible, Sendable {
    var description: String
    init(_ description: String) { self.description = description }
}
