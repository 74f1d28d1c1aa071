import KeeperModel
import NIOCore

// The request records of zookeeper.jute's module `org.apache.zookeeper.proto`. Records with the
// same layout share one Swift type; ZooKeeper's names remain as typealiases.
//
// Enumerated fields a client chooses (create flags, watcher types, addWatch modes) stay raw
// Int32 values with a typed accessor: ZooKeeper answers a bad value with a result code
// (BadArguments, ...) rather than by dropping the connection, so the codec must not refuse them.
// Znode data is a ByteBuffer slice of the frame (no copy); nil is a null buffer, which
// ZooKeeper distinguishes from an empty one.

/// A record of one non-null path: GetACLRequest, SyncRequest, SyncResponse,
/// GetAllChildrenNumberRequest, GetEphemeralsRequest (`prefixPath`), CreateResponse.
public struct PathRecord: JuteRecord {
    public var path: String
    public init(path: String) { self.path = path }

    @inlinable
    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        path = try reader.readNonNullString("PathRecord", "path")
    }

    @inlinable
    public func write(to buffer: inout ByteBuffer) { buffer.writeJuteString(path) }
}

public typealias GetACLRequest = PathRecord
public typealias SyncRequest = PathRecord
public typealias SyncResponse = PathRecord
public typealias GetAllChildrenNumberRequest = PathRecord
public typealias GetEphemeralsRequest = PathRecord
public typealias CreateResponse = PathRecord

/// `{ustring path; boolean watch}`: GetDataRequest, ExistsRequest, GetChildrenRequest,
/// GetChildren2Request.
public struct PathWatchRequest: JuteRecord {
    public var path: String
    /// Whether to leave a one-shot watch on the node.
    public var watch: Bool

    public init(path: String, watch: Bool) {
        self.path = path
        self.watch = watch
    }

    @inlinable
    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        path = try reader.readNonNullString("PathWatchRequest", "path")
        watch = try reader.readBool("PathWatchRequest", "watch")
    }

    @inlinable
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteString(path)
        buffer.writeJuteBool(watch)
    }
}

public typealias GetDataRequest = PathWatchRequest
public typealias ExistsRequest = PathWatchRequest
public typealias GetChildrenRequest = PathWatchRequest
public typealias GetChildren2Request = PathWatchRequest

/// `CreateRequest{ustring path; buffer data; vector<ACL> acl; int flags}`: create (1),
/// create2 (15), createContainer (19).
public struct CreateRequest: JuteRecord {
    public var path: String
    public var data: ByteBuffer?
    public var acl: [ACL]
    /// The raw CreateMode flag.
    public var flags: Int32

    public init(path: String, data: ByteBuffer?, acl: [ACL], flags: Int32) {
        self.path = path
        self.data = data
        self.acl = acl
        self.flags = flags
    }

    public init(path: String, data: ByteBuffer?, acl: [ACL], mode: CreateMode) {
        self.init(path: path, data: data, acl: acl, flags: mode.rawValue)
    }

    /// The create mode, or nil for a flag ZooKeeper would answer with BadArguments.
    public var createMode: CreateMode? { CreateMode(rawValue: flags) }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        path = try reader.readNonNullString("CreateRequest", "path")
        data = try reader.readBuffer("CreateRequest", "data")
        acl = try reader.readACLs("CreateRequest", "acl")
        flags = try reader.readInt("CreateRequest", "flags")
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteString(path)
        buffer.writeJuteBuffer(data)
        buffer.writeJuteACLs(acl)
        buffer.writeJuteInt(flags)
    }
}

/// `CreateTTLRequest{ustring path; buffer data; vector<ACL> acl; int flags; long ttl}`:
/// createTTL (21), accepted only with `extendedTypesEnabled`.
public struct CreateTTLRequest: JuteRecord {
    public var path: String
    public var data: ByteBuffer?
    public var acl: [ACL]
    public var flags: Int32
    /// The TTL in milliseconds.
    public var ttl: Int64

    public init(path: String, data: ByteBuffer?, acl: [ACL], flags: Int32, ttl: Int64) {
        self.path = path
        self.data = data
        self.acl = acl
        self.flags = flags
        self.ttl = ttl
    }

    public var createMode: CreateMode? { CreateMode(rawValue: flags) }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        path = try reader.readNonNullString("CreateTTLRequest", "path")
        data = try reader.readBuffer("CreateTTLRequest", "data")
        acl = try reader.readACLs("CreateTTLRequest", "acl")
        flags = try reader.readInt("CreateTTLRequest", "flags")
        ttl = try reader.readLong("CreateTTLRequest", "ttl")
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteString(path)
        buffer.writeJuteBuffer(data)
        buffer.writeJuteACLs(acl)
        buffer.writeJuteInt(flags)
        buffer.writeJuteLong(ttl)
    }
}

/// `{ustring path; int version}`: DeleteRequest, CheckVersionRequest. Version -1 matches any.
public struct PathVersionRequest: JuteRecord {
    public var path: String
    public var version: Int32

    public init(path: String, version: Int32) {
        self.path = path
        self.version = version
    }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        path = try reader.readNonNullString("PathVersionRequest", "path")
        version = try reader.readInt("PathVersionRequest", "version")
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteString(path)
        buffer.writeJuteInt(version)
    }
}

public typealias DeleteRequest = PathVersionRequest
public typealias CheckVersionRequest = PathVersionRequest

/// `SetDataRequest{ustring path; buffer data; int version}`.
public struct SetDataRequest: JuteRecord {
    public var path: String
    public var data: ByteBuffer?
    public var version: Int32

    public init(path: String, data: ByteBuffer?, version: Int32) {
        self.path = path
        self.data = data
        self.version = version
    }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        path = try reader.readNonNullString("SetDataRequest", "path")
        data = try reader.readBuffer("SetDataRequest", "data")
        version = try reader.readInt("SetDataRequest", "version")
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteString(path)
        buffer.writeJuteBuffer(data)
        buffer.writeJuteInt(version)
    }
}

/// `SetACLRequest{ustring path; vector<ACL> acl; int version}`.
public struct SetACLRequest: JuteRecord {
    public var path: String
    public var acl: [ACL]
    public var version: Int32

    public init(path: String, acl: [ACL], version: Int32) {
        self.path = path
        self.acl = acl
        self.version = version
    }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        path = try reader.readNonNullString("SetACLRequest", "path")
        acl = try reader.readACLs("SetACLRequest", "acl")
        version = try reader.readInt("SetACLRequest", "version")
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteString(path)
        buffer.writeJuteACLs(acl)
        buffer.writeJuteInt(version)
    }
}

/// `ReconfigRequest{ustring joiningServers; ustring leavingServers; ustring newMembers;
/// long curConfigId}`; the Java client sends null for an absent list.
public struct ReconfigRequest: JuteRecord {
    public var joiningServers: String?
    public var leavingServers: String?
    public var newMembers: String?
    /// The config version the change applies to, or -1 for any.
    public var curConfigID: Int64

    public init(joiningServers: String?, leavingServers: String?, newMembers: String?, curConfigID: Int64) {
        self.joiningServers = joiningServers
        self.leavingServers = leavingServers
        self.newMembers = newMembers
        self.curConfigID = curConfigID
    }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        joiningServers = try reader.readString("ReconfigRequest", "joiningServers")
        leavingServers = try reader.readString("ReconfigRequest", "leavingServers")
        newMembers = try reader.readString("ReconfigRequest", "newMembers")
        curConfigID = try reader.readLong("ReconfigRequest", "curConfigId")
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteString(joiningServers)
        buffer.writeJuteString(leavingServers)
        buffer.writeJuteString(newMembers)
        buffer.writeJuteLong(curConfigID)
    }
}

/// `{ustring path; int type}`: CheckWatchesRequest, RemoveWatchesRequest.
public struct WatchesRequest: JuteRecord {
    public var path: String
    /// The raw WatcherType.
    public var type: Int32

    public init(path: String, type: WatcherType) {
        self.path = path
        self.type = type.rawValue
    }

    public init(path: String, rawType: Int32) {
        self.path = path
        self.type = rawType
    }

    public var watcherType: WatcherType? { WatcherType(rawValue: type) }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        path = try reader.readNonNullString("WatchesRequest", "path")
        type = try reader.readInt("WatchesRequest", "type")
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteString(path)
        buffer.writeJuteInt(type)
    }
}

public typealias CheckWatchesRequest = WatchesRequest
public typealias RemoveWatchesRequest = WatchesRequest

/// `AddWatchRequest{ustring path; int mode}`.
public struct AddWatchRequest: JuteRecord {
    public var path: String
    /// The raw AddWatchMode.
    public var mode: Int32

    public init(path: String, mode: AddWatchMode) {
        self.path = path
        self.mode = mode.rawValue
    }

    public init(path: String, rawMode: Int32) {
        self.path = path
        self.mode = rawMode
    }

    public var addWatchMode: AddWatchMode? { AddWatchMode(rawValue: mode) }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        path = try reader.readNonNullString("AddWatchRequest", "path")
        mode = try reader.readInt("AddWatchRequest", "mode")
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteString(path)
        buffer.writeJuteInt(mode)
    }
}

/// `{buffer token}`: GetSASLRequest (sasl, 102) and SetSASLResponse.
public struct SASLToken: JuteRecord {
    public var token: [UInt8]?
    public init(token: [UInt8]?) { self.token = token }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        token = try reader.readBytes("SASLToken", "token")
    }

    public func write(to buffer: inout ByteBuffer) { buffer.writeJuteBuffer(token) }
}

public typealias GetSASLRequest = SASLToken
public typealias SetSASLResponse = SASLToken

/// `SetWatches{long relativeZxid; vector<ustring> dataWatches, existWatches, childWatches}`
/// (opcode 101) and `SetWatches2` (105), which adds `persistentWatches` and
/// `persistentRecursiveWatches`: the watches a client re-registers after reconnecting (xid -8;
/// clients split large sets into frames of about 128 KB). A null list is read as empty.
public struct SetWatches: Hashable, Sendable {
    /// The last zxid the client saw: watches whose node changed after it fire at once.
    public var relativeZxid: Zxid
    public var dataWatches: [String]
    public var existWatches: [String]
    public var childWatches: [String]
    /// SetWatches2 only (empty for SetWatches).
    public var persistentWatches: [String]
    /// SetWatches2 only (empty for SetWatches).
    public var persistentRecursiveWatches: [String]

    public init(
        relativeZxid: Zxid, dataWatches: [String], existWatches: [String], childWatches: [String],
        persistentWatches: [String] = [], persistentRecursiveWatches: [String] = []
    ) {
        self.relativeZxid = relativeZxid
        self.dataWatches = dataWatches
        self.existWatches = existWatches
        self.childWatches = childWatches
        self.persistentWatches = persistentWatches
        self.persistentRecursiveWatches = persistentRecursiveWatches
    }

    /// Decodes SetWatches, or SetWatches2 when `version2`.
    public init(jute reader: inout JuteReader, version2: Bool) throws(JuteDecodingError) {
        let record: StaticString = version2 ? "SetWatches2" : "SetWatches"
        relativeZxid = Zxid(try reader.readLong(record, "relativeZxid"))
        dataWatches = try reader.readStringVector(record, "dataWatches") ?? []
        existWatches = try reader.readStringVector(record, "existWatches") ?? []
        childWatches = try reader.readStringVector(record, "childWatches") ?? []
        if version2 {
            persistentWatches = try reader.readStringVector(record, "persistentWatches") ?? []
            persistentRecursiveWatches = try reader.readStringVector(record, "persistentRecursiveWatches") ?? []
        } else {
            persistentWatches = []
            persistentRecursiveWatches = []
        }
    }

    /// Encodes SetWatches, or SetWatches2 when `version2`. SetWatches cannot carry persistent
    /// watches: asking it to is a programmer error.
    public func write(to buffer: inout ByteBuffer, version2: Bool) {
        precondition(
            version2 || (persistentWatches.isEmpty && persistentRecursiveWatches.isEmpty),
            "persistent watches need SetWatches2")
        buffer.writeJuteLong(relativeZxid.rawValue)
        buffer.writeJuteStringVector(dataWatches)
        buffer.writeJuteStringVector(existWatches)
        buffer.writeJuteStringVector(childWatches)
        if version2 {
            buffer.writeJuteStringVector(persistentWatches)
            buffer.writeJuteStringVector(persistentRecursiveWatches)
        }
    }
}

/// The body of the internal createSession request (-10): the session timeout the leader must
/// log in a CreateSessionTxn. Clients never send it; learners forward it to the leader.
public struct CreateSessionRequest: JuteRecord {
    public var timeOut: Int32
    public init(timeOut: Int32) { self.timeOut = timeOut }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        timeOut = try reader.readInt("CreateSessionRequest", "timeOut")
    }

    public func write(to buffer: inout ByteBuffer) { buffer.writeJuteInt(timeOut) }
}
