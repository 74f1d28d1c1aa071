import KeeperModel
import NIOCore

/// One op of a multi (opcode 14: writes) or multiRead (opcode 22: reads), as
/// `MultiHeader{type, false, -1}` followed by the op's own request record.
public enum MultiOp: Hashable, Sendable {
    case create(CreateRequest)
    case create2(CreateRequest)
    case createContainer(CreateRequest)
    case createTTL(CreateTTLRequest)
    case delete(DeleteRequest)
    case setData(SetDataRequest)
    case check(CheckVersionRequest)
    /// multiRead only.
    case getChildren(GetChildrenRequest)
    /// multiRead only.
    case getData(GetDataRequest)

    public var opCode: OpCode {
        switch self {
        case .create: .create
        case .create2: .create2
        case .createContainer: .createContainer
        case .createTTL: .createTTL
        case .delete: .delete
        case .setData: .setData
        case .check: .check
        case .getChildren: .getChildren
        case .getData: .getData
        }
    }

    /// Whether the op reads (multiRead) rather than writes (multi).
    public var isRead: Bool {
        switch self {
        case .getChildren, .getData: true
        case .create, .create2, .createContainer, .createTTL, .delete, .setData, .check: false
        }
    }

    public func write(to buffer: inout ByteBuffer) {
        MultiHeader(type: opCode.rawValue, done: false, err: -1).write(to: &buffer)
        switch self {
        case .create(let r), .create2(let r), .createContainer(let r): r.write(to: &buffer)
        case .createTTL(let r): r.write(to: &buffer)
        case .delete(let r), .check(let r): r.write(to: &buffer)
        case .setData(let r): r.write(to: &buffer)
        case .getChildren(let r), .getData(let r): r.write(to: &buffer)
        }
    }
}

/// `MultiOperationRecord`: the ops of a multi or multiRead, ended by `MultiHeader{-1, true, -1}`.
///
/// A multi (14) may hold only write ops and a multiRead (22) only read ops (ZooKeeper refuses
/// to mix them); any other op type is a typed error `invalidMultiOp`.
public struct MultiRequest: Hashable, Sendable {
    public var ops: [MultiOp]
    public init(ops: [MultiOp]) { self.ops = ops }

    /// Decodes the ops of a multi (`read == false`) or a multiRead (`read == true`).
    public init(jute reader: inout JuteReader, read: Bool) throws(JuteDecodingError) {
        var ops: [MultiOp] = []
        while true {
            let at = reader.offset
            let header = try MultiHeader(jute: &reader)
            if header.done { break }
            let op: MultiOp
            switch (OpCode(rawValue: header.type), read) {
            case (.create?, false): op = .create(try CreateRequest(jute: &reader))
            case (.create2?, false): op = .create2(try CreateRequest(jute: &reader))
            case (.createContainer?, false): op = .createContainer(try CreateRequest(jute: &reader))
            case (.createTTL?, false): op = .createTTL(try CreateTTLRequest(jute: &reader))
            case (.delete?, false): op = .delete(try DeleteRequest(jute: &reader))
            case (.setData?, false): op = .setData(try SetDataRequest(jute: &reader))
            case (.check?, false): op = .check(try CheckVersionRequest(jute: &reader))
            case (.getChildren?, true): op = .getChildren(try GetChildrenRequest(jute: &reader))
            case (.getData?, true): op = .getData(try GetDataRequest(jute: &reader))
            default:
                throw JuteDecodingError(
                    read ? "MultiReadRequest" : "MultiRequest", "type", offset: at, .invalidMultiOp(header.type))
            }
            ops.append(op)
        }
        self.ops = ops
    }

    public func write(to buffer: inout ByteBuffer) {
        for op in ops { op.write(to: &buffer) }
        MultiHeader.end.write(to: &buffer)
    }
}

/// One result of a multi or multiRead reply: `MultiHeader{type, false, err}` then its record.
public enum MultiResult: Hashable, Sendable {
    /// create (1): `CreateResponse{path}`.
    case create(path: String)
    /// create2, createContainer, createTTL (written as type 15): `Create2Response{path, stat}`.
    case create2(path: String, stat: Stat)
    /// delete (2): no record.
    case delete
    /// setData (5): `SetDataResponse{stat}`.
    case setData(Stat)
    /// check (13): no record.
    case check
    /// getChildren (8, multiRead): `GetChildrenResponse{children}`.
    case getChildren([String])
    /// getData (4, multiRead): `GetDataResponse{data, stat}`.
    case getData(data: ByteBuffer?, stat: Stat)
    /// A failed (or rolled-back) op: header `{-1, false, err}` then `ErrorResponse{err}`.
    /// ZooKeeper reports 0 for the ops before the failing one, the failing op's code, and
    /// RuntimeInconsistency (-2) for the ops after it.
    case error(Int32)

    public static func error(_ code: KeeperErrorCode) -> MultiResult { .error(code.rawValue) }

    public func write(to buffer: inout ByteBuffer) {
        switch self {
        case .create(let path):
            MultiHeader(type: OpCode.create.rawValue, done: false, err: 0).write(to: &buffer)
            buffer.writeJuteString(path)
        case .create2(let path, let stat):
            MultiHeader(type: OpCode.create2.rawValue, done: false, err: 0).write(to: &buffer)
            buffer.writeJuteString(path)
            stat.write(to: &buffer)
        case .delete:
            MultiHeader(type: OpCode.delete.rawValue, done: false, err: 0).write(to: &buffer)
        case .setData(let stat):
            MultiHeader(type: OpCode.setData.rawValue, done: false, err: 0).write(to: &buffer)
            stat.write(to: &buffer)
        case .check:
            MultiHeader(type: OpCode.check.rawValue, done: false, err: 0).write(to: &buffer)
        case .getChildren(let children):
            MultiHeader(type: OpCode.getChildren.rawValue, done: false, err: 0).write(to: &buffer)
            buffer.writeJuteStringVector(children)
        case .getData(let data, let stat):
            MultiHeader(type: OpCode.getData.rawValue, done: false, err: 0).write(to: &buffer)
            buffer.writeJuteBuffer(data)
            stat.write(to: &buffer)
        case .error(let err):
            MultiHeader(type: OpCode.error.rawValue, done: false, err: err).write(to: &buffer)
            buffer.writeJuteInt(err)
        }
    }

    public init(jute reader: inout JuteReader, header: MultiHeader, headerOffset: Int) throws(JuteDecodingError) {
        switch OpCode(rawValue: header.type) {
        case .create?: self = .create(path: try reader.readNonNullString("CreateResponse", "path"))
        case .create2?:
            let r = try Create2Response(jute: &reader)
            self = .create2(path: r.path, stat: r.stat)
        case .delete?: self = .delete
        case .setData?: self = .setData(try Stat(jute: &reader))
        case .check?: self = .check
        case .getChildren?: self = .getChildren(try StringListResponse(jute: &reader).strings)
        case .getData?:
            let r = try GetDataResponse(jute: &reader)
            self = .getData(data: r.data, stat: r.stat)
        case .error?: self = .error(try reader.readInt("ErrorResponse", "err"))
        default:
            throw JuteDecodingError("MultiResponse", "type", offset: headerOffset, .invalidMultiOp(header.type))
        }
    }
}

/// `MultiResponse`: the results of a multi or multiRead, ended by `MultiHeader{-1, true, -1}`.
public struct MultiResponse: Hashable, Sendable {
    public var results: [MultiResult]
    public init(results: [MultiResult]) { self.results = results }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        var results: [MultiResult] = []
        while true {
            let at = reader.offset
            let header = try MultiHeader(jute: &reader)
            if header.done { break }
            results.append(try MultiResult(jute: &reader, header: header, headerOffset: at))
        }
        self.results = results
    }

    public func write(to buffer: inout ByteBuffer) {
        for result in results { result.write(to: &buffer) }
        MultiHeader.end.write(to: &buffer)
    }
}
