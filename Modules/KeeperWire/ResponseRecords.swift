import KeeperModel
import NIOCore

// The response records of zookeeper.jute's module `org.apache.zookeeper.proto`.

/// `{Stat stat}`: ExistsResponse, SetDataResponse, SetACLResponse.
public struct StatResponse: JuteRecord {
    public var stat: Stat
    public init(stat: Stat) { self.stat = stat }
    public init(jute reader: inout JuteReader) throws(JuteDecodingError) { stat = try Stat(jute: &reader) }
    public func write(to buffer: inout ByteBuffer) { stat.write(to: &buffer) }
}

public typealias ExistsResponse = StatResponse
public typealias SetDataResponse = StatResponse
public typealias SetACLResponse = StatResponse

/// `GetDataResponse{buffer data; Stat stat}`; also the reply to reconfig (the new config).
/// `data` is a slice of the frame; nil is a null buffer (a znode created with null data).
public struct GetDataResponse: JuteRecord {
    public var data: ByteBuffer?
    public var stat: Stat

    public init(data: ByteBuffer?, stat: Stat) {
        self.data = data
        self.stat = stat
    }

    @inlinable
    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        data = try reader.readBuffer("GetDataResponse", "data")
        stat = try Stat(jute: &reader)
    }

    @inlinable
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteBuffer(data)
        stat.write(to: &buffer)
    }
}

/// `GetACLResponse{vector<ACL> acl; Stat stat}`.
public struct GetACLResponse: JuteRecord {
    public var acl: [ACL]
    public var stat: Stat

    public init(acl: [ACL], stat: Stat) {
        self.acl = acl
        self.stat = stat
    }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        acl = try reader.readACLs("GetACLResponse", "acl")
        stat = try Stat(jute: &reader)
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteACLs(acl)
        stat.write(to: &buffer)
    }
}

/// `{vector<ustring> children}`: GetChildrenResponse, GetEphemeralsResponse (`ephemerals`).
/// A null list is read as empty.
public struct StringListResponse: JuteRecord {
    public var strings: [String]
    public init(_ strings: [String]) { self.strings = strings }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        strings = try reader.readStringVector("StringListResponse", "children") ?? []
    }

    public func write(to buffer: inout ByteBuffer) { buffer.writeJuteStringVector(strings) }
}

public typealias GetChildrenResponse = StringListResponse
public typealias GetEphemeralsResponse = StringListResponse

/// `GetChildren2Response{vector<ustring> children; Stat stat}`.
public struct GetChildren2Response: JuteRecord {
    public var children: [String]
    public var stat: Stat

    public init(children: [String], stat: Stat) {
        self.children = children
        self.stat = stat
    }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        children = try reader.readStringVector("GetChildren2Response", "children") ?? []
        stat = try Stat(jute: &reader)
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteStringVector(children)
        stat.write(to: &buffer)
    }
}

/// `Create2Response{ustring path; Stat stat}`: the reply to create2, createContainer, createTTL.
public struct Create2Response: JuteRecord {
    /// The created path (with its sequence suffix for sequential nodes).
    public var path: String
    public var stat: Stat

    public init(path: String, stat: Stat) {
        self.path = path
        self.stat = stat
    }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        path = try reader.readNonNullString("Create2Response", "path")
        stat = try Stat(jute: &reader)
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteString(path)
        stat.write(to: &buffer)
    }
}

/// `{int value}`: GetAllChildrenNumberResponse (`totalNumber`), ErrorResponse (`err`).
public struct IntResponse: JuteRecord {
    public var value: Int32
    public init(_ value: Int32) { self.value = value }
    public init(jute reader: inout JuteReader) throws(JuteDecodingError) { value = try reader.readInt("IntResponse", "value") }
    public func write(to buffer: inout ByteBuffer) { buffer.writeJuteInt(value) }
}

public typealias GetAllChildrenNumberResponse = IntResponse
public typealias ErrorResponse = IntResponse

/// `ClientInfo{ustring authScheme; ustring user}`: one identity in a whoAmI reply.
public struct ClientInfo: JuteRecord {
    public var authScheme: String
    public var user: String

    public init(authScheme: String, user: String) {
        self.authScheme = authScheme
        self.user = user
    }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        authScheme = try reader.readNonNullString("ClientInfo", "authScheme")
        user = try reader.readNonNullString("ClientInfo", "user")
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteString(authScheme)
        buffer.writeJuteString(user)
    }
}

/// `WhoAmIResponse{vector<ClientInfo> clientInfo}`.
public struct WhoAmIResponse: JuteRecord {
    public var clientInfo: [ClientInfo]
    public init(clientInfo: [ClientInfo]) { self.clientInfo = clientInfo }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        clientInfo = try reader.readVector("WhoAmIResponse", "clientInfo", minimumElementSize: 8) {
            (r: inout JuteReader) throws(JuteDecodingError) in try ClientInfo(jute: &r)
        } ?? []
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteVector(clientInfo) { $1.write(to: &$0) }
    }
}
