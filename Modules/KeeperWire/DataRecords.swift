import KeeperModel
import NIOCore

// The records of zookeeper.jute's module `org.apache.zookeeper.data`, as KeeperModel's types.

extension Id: JuteRecord {
    /// `Id{ustring scheme; ustring id}`.
    @inlinable
    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        let scheme = try reader.readNonNullString("Id", "scheme")
        let id = try reader.readNonNullString("Id", "id")
        self.init(scheme: scheme, id: id)
    }

    @inlinable
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteString(scheme)
        buffer.writeJuteString(id)
    }
}

extension ACL: JuteRecord {
    /// `ACL{int perms; Id id}`. Unknown permission bits are kept (ZooKeeper keeps them too).
    @inlinable
    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        let perms = try reader.readInt("ACL", "perms")
        let id = try Id(jute: &reader)
        self.init(perms: Permissions(rawValue: perms), id: id)
    }

    @inlinable
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteInt(perms.rawValue)
        id.write(to: &buffer)
    }
}

extension Stat: JuteRecord {
    /// The encoded size of a Stat: 68 bytes.
    public static let encodedSize = 68

    /// `Stat{czxid, mzxid, ctime, mtime, version, cversion, aversion, ephemeralOwner,
    /// dataLength, numChildren, pzxid}`.
    @inlinable
    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        guard reader.remaining >= Stat.encodedSize else {
            throw reader.truncated("Stat", "czxid", needed: Stat.encodedSize)
        }
        self.init(
            czxid: try reader.readLong("Stat", "czxid"),
            mzxid: try reader.readLong("Stat", "mzxid"),
            ctime: try reader.readLong("Stat", "ctime"),
            mtime: try reader.readLong("Stat", "mtime"),
            version: try reader.readInt("Stat", "version"),
            cversion: try reader.readInt("Stat", "cversion"),
            aversion: try reader.readInt("Stat", "aversion"),
            ephemeralOwner: try reader.readLong("Stat", "ephemeralOwner"),
            dataLength: try reader.readInt("Stat", "dataLength"),
            numChildren: try reader.readInt("Stat", "numChildren"),
            pzxid: try reader.readLong("Stat", "pzxid"))
    }

    @inlinable
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteLong(czxid)
        buffer.writeJuteLong(mzxid)
        buffer.writeJuteLong(ctime)
        buffer.writeJuteLong(mtime)
        buffer.writeJuteInt(version)
        buffer.writeJuteInt(cversion)
        buffer.writeJuteInt(aversion)
        buffer.writeJuteLong(ephemeralOwner)
        buffer.writeJuteInt(dataLength)
        buffer.writeJuteInt(numChildren)
        buffer.writeJuteLong(pzxid)
    }
}

extension JuteReader {
    /// `vector<ACL>`. A null vector is read as an empty list: ZooKeeper answers InvalidACL to
    /// both alike, so nothing is lost but the exact bytes.
    @inlinable
    public mutating func readACLs(_ record: StaticString, _ field: StaticString) throws(JuteDecodingError) -> [ACL] {
        // An ACL is at least perms (4) + two string lengths (4 + 4) = 12 bytes.
        try readVector(record, field, minimumElementSize: 12) { (r: inout JuteReader) throws(JuteDecodingError) in
            try ACL(jute: &r)
        } ?? []
    }
}

extension ByteBuffer {
    /// `vector<ACL>`.
    @inlinable
    public mutating func writeJuteACLs(_ acl: [ACL]) {
        writeJuteVector(acl) { $1.write(to: &$0) }
    }
}
