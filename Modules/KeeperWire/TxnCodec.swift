import KeeperModel
import NIOCore

// Txn records (zookeeper.jute, module `org.apache.zookeeper.txn`) for the log and replication:
// the bytes are ZooKeeper's own, so a ZooKeeper log or a PROPOSAL from a ZooKeeper leader
// decodes here, and what SwiftKeeper writes decodes in ZooKeeper's LogFormatter.

extension TxnHeader: JuteRecord {
    /// `TxnHeader{long clientId; int cxid; long zxid; long time; int type}`. A type outside
    /// OpCode is a typed error: the record after the header could not be read.
    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        let clientID = SessionID(try reader.readLong("TxnHeader", "clientId"))
        let cxid = try reader.readInt("TxnHeader", "cxid")
        let zxid = Zxid(try reader.readLong("TxnHeader", "zxid"))
        let time = try reader.readLong("TxnHeader", "time")
        let typeAt = reader.offset
        let rawType = try reader.readInt("TxnHeader", "type")
        guard let type = OpCode(rawValue: rawType) else {
            throw JuteDecodingError("TxnHeader", "type", offset: typeAt, .unknownType(rawType))
        }
        self.init(clientID: clientID, cxid: cxid, zxid: zxid, time: time, type: type)
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteLong(clientID.rawValue)
        buffer.writeJuteInt(cxid)
        buffer.writeJuteLong(zxid.rawValue)
        buffer.writeJuteLong(time)
        buffer.writeJuteInt(type.rawValue)
    }
}

/// `TxnDigest{int version; long treeDigest}`: ZooKeeper 3.6+ appends it to a txn (after the
/// record) when `digest.enabled`, so followers can check their tree against the leader's.
public struct TxnDigest: JuteRecord {
    public var version: Int32
    public var treeDigest: Int64

    public init(version: Int32, treeDigest: Int64) {
        self.version = version
        self.treeDigest = treeDigest
    }

    public static let encodedSize = 12

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        version = try reader.readInt("TxnDigest", "version")
        treeDigest = try reader.readLong("TxnDigest", "treeDigest")
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteInt(version)
        buffer.writeJuteLong(treeDigest)
    }
}

/// Encodes and decodes KeeperModel's txns as ZooKeeper's exact bytes: a TxnHeader, the record
/// its type selects, and optionally a TxnDigest (what ZooKeeper's `Util.marshallTxnEntry`
/// writes and `SerializeUtils.deserializeTxn` reads).
///
/// | Txn | type | record |
/// |---|---|---|
/// | create, create2 | 1, 15 | CreateTxn{path, data, acl, ephemeral, parentCVersion} |
/// | createContainer | 19 | CreateContainerTxn{path, data, acl, parentCVersion} |
/// | createTTL | 21 | CreateTTLTxn{path, data, acl, parentCVersion, ttl} |
/// | delete, deleteContainer | 2, 20 | DeleteTxn{path} |
/// | setData | 5 | SetDataTxn{path, data, version} |
/// | setACL | 7 | SetACLTxn{path, acl, version} |
/// | check | 13 | CheckVersionTxn{path, version} |
/// | multi | 14 | MultiTxn{vector<Txn{int type; buffer data}>} |
/// | createSession | -10 | CreateSessionTxn{timeOut} |
/// | closeSession | -11 | CloseSessionTxn{paths2Delete}, or nothing (before 3.6) |
/// | error | -1 | ErrorTxn{err} |
public enum TxnCodec {
    /// Writes header, record and (when given) digest.
    public static func write(_ entry: TxnEntry, digest: TxnDigest? = nil, to buffer: inout ByteBuffer) {
        precondition(entry.header.type == entry.txn.opCode, "TxnHeader.type must be the txn's opcode")
        entry.header.write(to: &buffer)
        write(entry.txn, to: &buffer)
        digest?.write(to: &buffer)
    }

    /// About how many bytes `write(_:digest:to:)` writes for `txn` (at least that many for
    /// the data and paths it carries): a buffer this large never grows while it is written.
    public static func sizeHint(_ txn: Txn) -> Int {
        let fixed = 128
        switch txn {
        case .create(let t), .create2(let t), .createContainer(let t), .createTTL(let t):
            return fixed + t.path.utf8.count + t.data.count + 32 * t.acl.count
        case .setData(let t): return fixed + t.path.utf8.count + t.data.count
        case .multi(let txns): return txns.reduce(fixed) { $0 + 8 + sizeHint($1) }
        default: return 512
        }
    }

    /// Writes a txn's record (no header). Programmer errors crash: a create whose kind does not
    /// match its opcode, a multi inside a multi.
    public static func write(_ txn: Txn, to buffer: inout ByteBuffer) {
        switch txn {
        case .create(let t), .create2(let t):
            let ephemeral: Bool
            switch t.kind {
            case .persistent: ephemeral = false
            case .ephemeral: ephemeral = true
            case .container, .ttl: preconditionFailure("a container or TTL create must be a createContainer/createTTL txn")
            }
            buffer.writeJuteString(t.path)
            buffer.writeJuteBuffer(t.dataIsNull ? nil : t.data)
            buffer.writeJuteACLs(t.acl)
            buffer.writeJuteBool(ephemeral)
            buffer.writeJuteInt(t.parentCVersion)
        case .createContainer(let t):
            precondition(t.kind == .container, "a createContainer txn must have kind .container")
            buffer.writeJuteString(t.path)
            buffer.writeJuteBuffer(t.dataIsNull ? nil : t.data)
            buffer.writeJuteACLs(t.acl)
            buffer.writeJuteInt(t.parentCVersion)
        case .createTTL(let t):
            guard case .ttl(let ttl) = t.kind else { preconditionFailure("a createTTL txn must have kind .ttl") }
            buffer.writeJuteString(t.path)
            buffer.writeJuteBuffer(t.dataIsNull ? nil : t.data)
            buffer.writeJuteACLs(t.acl)
            buffer.writeJuteInt(t.parentCVersion)
            buffer.writeJuteLong(ttl)
        case .delete(let t), .deleteContainer(let t):
            buffer.writeJuteString(t.path)
        case .setData(let t):
            buffer.writeJuteString(t.path)
            buffer.writeJuteBuffer(t.dataIsNull ? nil : t.data)
            buffer.writeJuteInt(t.version)
        case .setACL(let t):
            buffer.writeJuteString(t.path)
            buffer.writeJuteACLs(t.acl)
            buffer.writeJuteInt(t.version)
        case .check(let t):
            buffer.writeJuteString(t.path)
            buffer.writeJuteInt(t.version)
        case .multi(let txns):
            buffer.writeJuteVector(txns) { (b: inout ByteBuffer, op: Txn) in
                if case .multi = op { preconditionFailure("a multi cannot contain a multi") }
                b.writeJuteInt(op.opCode.rawValue)
                let lengthIndex = b.writerIndex
                b.writeJuteInt(0)
                write(op, to: &b)
                b.setInteger(Int32(b.writerIndex - lengthIndex - 4), at: lengthIndex, endianness: .big)
            }
        case .createSession(let t):
            buffer.writeJuteInt(t.timeOut)
        case .closeSession(let t):
            if let paths = t.paths2Delete { buffer.writeJuteStringVector(paths) }
        case .error(let code):
            buffer.writeJuteInt(code.rawValue)
        }
    }

    /// Decodes a whole txn (a log entry's payload or a PROPOSAL's data): header, record, and a
    /// digest when exactly 12 bytes follow the record. Any other leftover is `trailingBytes`.
    public static func decode(
        _ buffer: ByteBuffer, maxLength: Int = Limits.default.maxBuffer
    ) throws(JuteDecodingError) -> (entry: TxnEntry, digest: TxnDigest?) {
        var reader = JuteReader(buffer, maxLength: maxLength)
        let header = try TxnHeader(jute: &reader)
        let txn = try readTxn(type: header.type, from: &reader, typeOffset: 28)
        var digest: TxnDigest? = nil
        if reader.remaining == TxnDigest.encodedSize {
            digest = try TxnDigest(jute: &reader)
        }
        try reader.expectEnd("TxnEntry")
        return (TxnEntry(header: header, txn: txn), digest)
    }

    /// Decodes the record of a txn of type `type`.
    public static func readTxn(type: OpCode, from reader: inout JuteReader, typeOffset: Int) throws(JuteDecodingError) -> Txn {
        switch type {
        case .create, .create2:
            let path = try reader.readNonNullString("CreateTxn", "path")
            let rawData = try reader.readBytes("CreateTxn", "data")
            let data = rawData ?? []
            let acl = try reader.readACLs("CreateTxn", "acl")
            let ephemeral = try reader.readBool("CreateTxn", "ephemeral")
            let parentCVersion = try reader.readInt("CreateTxn", "parentCVersion")
            let t = CreateTxn(path: path, data: data, dataIsNull: rawData == nil, acl: acl, kind: ephemeral ? .ephemeral : .persistent, parentCVersion: parentCVersion)
            return type == .create ? .create(t) : .create2(t)
        case .createContainer:
            let path = try reader.readNonNullString("CreateContainerTxn", "path")
            let rawData = try reader.readBytes("CreateContainerTxn", "data")
            let data = rawData ?? []
            let acl = try reader.readACLs("CreateContainerTxn", "acl")
            let parentCVersion = try reader.readInt("CreateContainerTxn", "parentCVersion")
            return .createContainer(CreateTxn(path: path, data: data, dataIsNull: rawData == nil, acl: acl, kind: .container, parentCVersion: parentCVersion))
        case .createTTL:
            let path = try reader.readNonNullString("CreateTTLTxn", "path")
            let rawData = try reader.readBytes("CreateTTLTxn", "data")
            let data = rawData ?? []
            let acl = try reader.readACLs("CreateTTLTxn", "acl")
            let parentCVersion = try reader.readInt("CreateTTLTxn", "parentCVersion")
            let ttl = try reader.readLong("CreateTTLTxn", "ttl")
            return .createTTL(CreateTxn(path: path, data: data, dataIsNull: rawData == nil, acl: acl, kind: .ttl(ttl), parentCVersion: parentCVersion))
        case .delete:
            return .delete(DeleteTxn(path: try reader.readNonNullString("DeleteTxn", "path")))
        case .deleteContainer:
            return .deleteContainer(DeleteTxn(path: try reader.readNonNullString("DeleteTxn", "path")))
        case .setData:
            let path = try reader.readNonNullString("SetDataTxn", "path")
            let rawData = try reader.readBytes("SetDataTxn", "data")
            let data = rawData ?? []
            let version = try reader.readInt("SetDataTxn", "version")
            return .setData(SetDataTxn(path: path, data: data, dataIsNull: rawData == nil, version: version))
        case .setACL:
            let path = try reader.readNonNullString("SetACLTxn", "path")
            let acl = try reader.readACLs("SetACLTxn", "acl")
            let version = try reader.readInt("SetACLTxn", "version")
            return .setACL(SetACLTxn(path: path, acl: acl, version: version))
        case .check:
            let path = try reader.readNonNullString("CheckVersionTxn", "path")
            let version = try reader.readInt("CheckVersionTxn", "version")
            return .check(CheckVersionTxn(path: path, version: version))
        case .multi:
            // Each op is Txn{int type; buffer data} (type 4 + length 4 at least).
            let ops = try reader.readVector("MultiTxn", "txns", minimumElementSize: 8) {
                (r: inout JuteReader) throws(JuteDecodingError) -> Txn in
                let opTypeAt = r.offset
                let rawType = try r.readInt("Txn", "type")
                guard let opType = OpCode(rawValue: rawType) else {
                    throw JuteDecodingError("Txn", "type", offset: opTypeAt, .unknownType(rawType))
                }
                if opType == .multi || opType == .createSession || opType == .closeSession {
                    throw JuteDecodingError("Txn", "type", offset: opTypeAt, .invalidMultiOp(rawType))
                }
                let dataAt = r.offset + 4
                guard let data = try r.readBuffer("Txn", "data") else {
                    throw JuteDecodingError("Txn", "data", offset: dataAt - 4, .unexpectedNull)
                }
                var inner = JuteReader(data, maxLength: r.maxLength, baseOffset: dataAt)
                let op = try readTxn(type: opType, from: &inner, typeOffset: opTypeAt)
                try inner.expectEnd("Txn")
                return op
            } ?? []
            return .multi(ops)
        case .createSession:
            return .createSession(CreateSessionTxn(timeOut: try reader.readInt("CreateSessionTxn", "timeOut")))
        case .closeSession:
            // Before 3.6 a closeSession txn had no record; after it, a digest may follow. Read a
            // record only when it accounts for what is there.
            if reader.isAtEnd { return .closeSession(CloseSessionTxn(paths2Delete: nil)) }
            var probe = reader
            var probed: [String]?? = nil
            do {
                probed = try probe.readStringVector("CloseSessionTxn", "paths2Delete")
            } catch {
                // Not a record: fall through to the digest-only (pre-3.6 record) reading below,
                // or report the record's own error there.
            }
            if let paths = probed, probe.remaining == 0 || probe.remaining == TxnDigest.encodedSize {
                reader = probe
                return .closeSession(CloseSessionTxn(paths2Delete: paths))
            }
            if reader.remaining == TxnDigest.encodedSize { return .closeSession(CloseSessionTxn(paths2Delete: nil)) }
            // Neither reading fits: report the record's own error.
            return .closeSession(CloseSessionTxn(paths2Delete: try reader.readStringVector("CloseSessionTxn", "paths2Delete")))
        case .error:
            let at = reader.offset
            let raw = try reader.readInt("ErrorTxn", "err")
            guard let code = KeeperErrorCode(rawValue: raw) else {
                throw JuteDecodingError("ErrorTxn", "err", offset: at, .unknownEnumValue(raw))
            }
            return .error(code)
        case .notification, .exists, .getData, .getACL, .getChildren, .sync, .ping, .getChildren2, .reconfig,
            .checkWatches, .removeWatches, .multiRead, .auth, .setWatches, .sasl, .getEphemerals,
            .getAllChildrenNumber, .setWatches2, .addWatch, .whoAmI:
            // reconfig txns (a SetDataTxn on /zookeeper/config) have no case in KeeperModel.Txn.
            throw JuteDecodingError("TxnHeader", "type", offset: typeOffset, .unknownType(type.rawValue))
        }
    }
}
