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
    ///
    /// Read and written in one access to the buffer's storage (not field by field): every
    /// reply of a read carries a Stat, and each separate ByteBuffer access costs a dynamic
    /// exclusivity check.
    @inlinable
    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        guard reader.remaining >= Stat.encodedSize else {
            throw reader.truncated("Stat", "czxid", needed: Stat.encodedSize)
        }
        self = reader.buffer.withUnsafeReadableBytes { raw in
            func long(_ at: Int) -> Int64 { Int64(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: Int64.self)) }
            func int(_ at: Int) -> Int32 { Int32(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: Int32.self)) }
            return Stat(
                czxid: long(0), mzxid: long(8), ctime: long(16), mtime: long(24), version: int(32),
                cversion: int(36), aversion: int(40), ephemeralOwner: long(44), dataLength: int(52),
                numChildren: int(56), pzxid: long(60))
        }
        reader.buffer.moveReaderIndex(forwardBy: Stat.encodedSize)
    }

    @inlinable
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Stat.encodedSize) { raw in
            func long(_ value: Int64, _ at: Int) { raw.storeBytes(of: value.bigEndian, toByteOffset: at, as: Int64.self) }
            func int(_ value: Int32, _ at: Int) { raw.storeBytes(of: value.bigEndian, toByteOffset: at, as: Int32.self) }
            long(czxid, 0)
            long(mzxid, 8)
            long(ctime, 16)
            long(mtime, 24)
            int(version, 32)
            int(cversion, 36)
            int(aversion, 40)
            long(ephemeralOwner, 44)
            int(dataLength, 52)
            int(numChildren, 56)
            long(pzxid, 60)
            return Stat.encodedSize
        }
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
