import KeeperModel

/// One znode as the `nodes` database stores it: a fixed 88-byte little-endian header, then
/// the data. The header keeps ZooKeeper's *stored* stat (StatPersisted): `cversion` counts
/// child creates only and `ephemeralOwner` keeps the container/TTL encodings; `clientStat`
/// translates both as ZooKeeper's `DataNode.copyStat` does.
///
/// Layout (offsets in bytes): czxid 0, mzxid 8, ctime 16, mtime 24, pzxid 32,
/// ephemeralOwner 40, aclID 48, aclHash 56 (all Int64/UInt64), version 64, cversion 68,
/// aversion 72, numChildren 76 (Int32), the node's digest term 80 (UInt64), data from 88.
/// numChildren is never negative, so its sign bit on disk marks null data (ZooKeeper keeps a
/// null buffer apart from an empty one).
///
/// The stored term is what the tree digest holds for this node: a write that replaces or
/// deletes the node takes the old term from the header instead of reading and hashing the
/// old data again. Format 1 records (`legacyHeaderSize`, no term) are read by read-only opens
/// and by the upgrade to format 2.
struct NodeRecord: Hashable {
    static let headerSize = 88
    static let legacyHeaderSize = 80

    var czxid: Int64
    var mzxid: Int64
    var ctime: Int64
    var mtime: Int64
    var pzxid: Int64
    /// As stored: a session id, 0, `EphemeralOwner.container` or a TTL encoding.
    var ephemeralOwner: Int64
    /// The key of the node's ACL list in the `acls` database.
    var aclID: UInt64
    /// SipHash of the ACL list's encoding (what the digest covers, independent of aclID).
    var aclHash: UInt64
    var version: Int32
    /// Child creates only (ZooKeeper's stored cversion; the sequential suffix counter).
    var cversion: Int32
    var aversion: Int32
    var numChildren: Int32
    var data: [UInt8]
    /// Null data (always with empty `data`): getData answers a null buffer.
    var dataIsNull = false
    /// Set when only the header was decoded (Stat-only reads): the stored data's length.
    var headerOnlyDataLength: Int32? = nil
    /// The digest term the record was stored with (nil for a format 1 record or one built in
    /// memory). It describes the record as decoded: changing a field does not update it.
    var storedTerm: UInt64? = nil

    /// The Stat clients see (DataNode.copyStat): cversion = creates × 2 − children (creates
    /// plus deletes), and ephemeralOwner 0 unless the node belongs to a session.
    var clientStat: Stat {
        Stat(
            czxid: czxid, mzxid: mzxid, ctime: ctime, mtime: mtime, version: version,
            cversion: cversion &* 2 &- numChildren, aversion: aversion,
            ephemeralOwner: EphemeralOwner.isSession(ephemeralOwner) ? ephemeralOwner : 0,
            dataLength: headerOnlyDataLength ?? Int32(data.count), numChildren: numChildren, pzxid: pzxid)
    }

    var kind: NodeKind {
        if ephemeralOwner == 0 { return .persistent }
        if ephemeralOwner == EphemeralOwner.container { return .container }
        if let ttl = EphemeralOwner.ttlValue(of: ephemeralOwner) { return .ttl(milliseconds: ttl) }
        return .ephemeral(SessionID(ephemeralOwner))
    }

    var encodedCount: Int { NodeRecord.headerSize + data.count }

    /// Encodes the record with `term`, its `digestTerm(path:)` (the caller has it: it adds
    /// the term to the tree digest).
    func encode(into out: UnsafeMutableRawBufferPointer, term: UInt64) {
        precondition(headerOnlyDataLength == nil, "encoding a node record decoded without its data")
        precondition(out.count == encodedCount, "node record buffer of the wrong size")
        out.storeBytes(of: czxid.littleEndian, toByteOffset: 0, as: Int64.self)
        out.storeBytes(of: mzxid.littleEndian, toByteOffset: 8, as: Int64.self)
        out.storeBytes(of: ctime.littleEndian, toByteOffset: 16, as: Int64.self)
        out.storeBytes(of: mtime.littleEndian, toByteOffset: 24, as: Int64.self)
        out.storeBytes(of: pzxid.littleEndian, toByteOffset: 32, as: Int64.self)
        out.storeBytes(of: ephemeralOwner.littleEndian, toByteOffset: 40, as: Int64.self)
        out.storeBytes(of: aclID.littleEndian, toByteOffset: 48, as: UInt64.self)
        out.storeBytes(of: aclHash.littleEndian, toByteOffset: 56, as: UInt64.self)
        out.storeBytes(of: version.littleEndian, toByteOffset: 64, as: Int32.self)
        out.storeBytes(of: cversion.littleEndian, toByteOffset: 68, as: Int32.self)
        out.storeBytes(of: aversion.littleEndian, toByteOffset: 72, as: Int32.self)
        precondition(numChildren >= 0 && (!dataIsNull || data.isEmpty), "node record invariants")
        let packed = dataIsNull ? numChildren | Int32.min : numChildren
        out.storeBytes(of: packed.littleEndian, toByteOffset: 76, as: Int32.self)
        out.storeBytes(of: term.littleEndian, toByteOffset: 80, as: UInt64.self)
        if !data.isEmpty {
            data.withUnsafeBytes { d in
                UnsafeMutableRawBufferPointer(rebasing: out[NodeRecord.headerSize...]).copyMemory(from: d)
            }
        }
    }

    /// Decodes a stored record; nil when it is too short to be one (a damaged store).
    /// `legacy`: a format 1 record (80-byte header, no stored term).
    init?(decoding b: UnsafeRawBufferPointer, withData: Bool = true, legacy: Bool = false) {
        let headerSize = legacy ? NodeRecord.legacyHeaderSize : NodeRecord.headerSize
        guard b.count >= headerSize else { return nil }
        func i64(_ o: Int) -> Int64 { Int64(littleEndian: b.loadUnaligned(fromByteOffset: o, as: Int64.self)) }
        func i32(_ o: Int) -> Int32 { Int32(littleEndian: b.loadUnaligned(fromByteOffset: o, as: Int32.self)) }
        czxid = i64(0)
        mzxid = i64(8)
        ctime = i64(16)
        mtime = i64(24)
        pzxid = i64(32)
        ephemeralOwner = i64(40)
        aclID = UInt64(bitPattern: i64(48))
        aclHash = UInt64(bitPattern: i64(56))
        version = i32(64)
        cversion = i32(68)
        aversion = i32(72)
        let packed = i32(76)
        numChildren = packed & Int32.max
        dataIsNull = packed < 0
        storedTerm = legacy ? nil : UInt64(bitPattern: i64(80))
        data = withData ? Array(b[headerSize...]) : []
        headerOnlyDataLength = withData ? nil : Int32(b.count - headerSize)
    }

    init(
        czxid: Int64, mzxid: Int64, ctime: Int64, mtime: Int64, pzxid: Int64, ephemeralOwner: Int64,
        aclID: UInt64, aclHash: UInt64, version: Int32, cversion: Int32, aversion: Int32, numChildren: Int32,
        data: [UInt8]
    ) {
        self.czxid = czxid
        self.mzxid = mzxid
        self.ctime = ctime
        self.mtime = mtime
        self.pzxid = pzxid
        self.ephemeralOwner = ephemeralOwner
        self.aclID = aclID
        self.aclHash = aclHash
        self.version = version
        self.cversion = cversion
        self.aversion = aversion
        self.numChildren = numChildren
        self.data = data
    }

    /// The term the tree digest holds for this record as decoded: the stored one, else
    /// computed (a format 1 record).
    func currentTerm(path: String) -> UInt64 { storedTerm ?? digestTerm(path: path) }

    /// This node's term of the tree digest: SipHash-2-4 over the path, the stored stat
    /// (every field but aclID), the ACL list's hash and the data. See `TreeDigest`.
    func digestTerm(path: String) -> UInt64 {
        precondition(headerOnlyDataLength == nil, "digest of a node record decoded without its data")
        var h = SipHash24()
        var p = path
        p.withUTF8 { h.update(UnsafeRawBufferPointer($0)) }
        h.update(UInt64(0xffff_ffff_ffff_ffff))
        h.update(czxid)
        h.update(mzxid)
        h.update(ctime)
        h.update(mtime)
        h.update(pzxid)
        h.update(ephemeralOwner)
        h.update(aclHash)
        h.update(version)
        h.update(cversion)
        h.update(aversion)
        h.update(numChildren)
        h.update(Int32(data.count))
        h.update(data)
        if dataIsNull { h.update(UInt64(0x6e75_6c6c)) }
        return h.finalize()
    }
}

/// The key layout of the `nodes` database, chosen so that a node's children are one
/// contiguous key range: key(path) = parent path, 0x00, last name (the root: "/").
/// Paths never contain NUL, so the first 0x00 of a key ends the parent: the range
/// `parent + 0x00 ...` holds exactly the children of `parent`, sorted by name (UTF-8 order).
enum NodeKey {
    static let root: [UInt8] = [UInt8(ascii: "/")]

    static func key(_ path: String) -> [UInt8] {
        if path == "/" { return root }
        var utf8 = Array(path.utf8)
        guard let slash = utf8.lastIndex(of: UInt8(ascii: "/")) else {
            preconditionFailure("NodeKey.key of a path without '/': \(path)")
        }
        if slash == 0 {
            utf8.insert(0, at: 1)
        } else {
            utf8[slash] = 0
        }
        return utf8
    }

    /// The prefix of all keys of `parent`'s children.
    static func childPrefix(_ parent: some StringProtocol) -> [UInt8] {
        var p = Array(parent.utf8)
        p.append(0)
        return p
    }

    /// The path a key stands for.
    static func path(_ key: UnsafeRawBufferPointer) -> String {
        guard let zero = key.firstIndex(of: 0) else { return String(decoding: key, as: UTF8.self) }
        let parent = String(decoding: key[..<zero], as: UTF8.self)
        let name = String(decoding: key[(zero + 1)...], as: UTF8.self)
        return parent == "/" ? "/" + name : parent + "/" + name
    }

    /// The name part of a child key (after the 0x00).
    static func name(_ key: UnsafeRawBufferPointer) -> String {
        guard let zero = key.firstIndex(of: 0) else { return "" }
        return String(decoding: key[(zero + 1)...], as: UTF8.self)
    }
}

/// Big-endian integer keys, so that LMDB's byte order is numeric order.
enum IntKey {
    static func bytes(_ v: Int64) -> [UInt8] {
        // Flip the sign bit so negative session ids sort before positive ones.
        let u = UInt64(bitPattern: v) ^ 0x8000_0000_0000_0000
        return withUnsafeBytes(of: u.bigEndian) { Array($0) }
    }

    static func int64(_ b: UnsafeRawBufferPointer) -> Int64? {
        guard b.count == 8 else { return nil }
        let u = UInt64(bigEndian: b.loadUnaligned(as: UInt64.self))
        return Int64(bitPattern: u ^ 0x8000_0000_0000_0000)
    }

    static func bytes(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }

    static func uint64(_ b: UnsafeRawBufferPointer) -> UInt64? {
        guard b.count == 8 else { return nil }
        return UInt64(bigEndian: b.loadUnaligned(as: UInt64.self))
    }
}

/// The encoding of an ACL list in the `acls` database (and what its hash covers):
/// count UInt32, then per entry perms Int32, scheme and id as UInt32 length + UTF-8, all
/// little-endian.
enum ACLCodec {
    static func encode(_ acl: [ACL]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(4 + acl.count * 24)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        u32(UInt32(acl.count))
        for entry in acl {
            u32(UInt32(bitPattern: entry.perms.rawValue))
            u32(UInt32(entry.id.scheme.utf8.count))
            out.append(contentsOf: entry.id.scheme.utf8)
            u32(UInt32(entry.id.id.utf8.count))
            out.append(contentsOf: entry.id.id.utf8)
        }
        return out
    }

    static func decode(_ b: UnsafeRawBufferPointer) -> [ACL]? {
        var o = 0
        func u32() -> UInt32? {
            guard o + 4 <= b.count else { return nil }
            defer { o += 4 }
            return UInt32(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt32.self))
        }
        func string() -> String? {
            guard let n = u32(), o + Int(n) <= b.count else { return nil }
            defer { o += Int(n) }
            return String(decoding: b[o..<(o + Int(n))], as: UTF8.self)
        }
        guard let count = u32(), count <= b.count else { return nil }
        var acl: [ACL] = []
        acl.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let perms = u32(), let scheme = string(), let id = string() else { return nil }
            acl.append(ACL(perms: Permissions(rawValue: Int32(bitPattern: perms)), id: Id(scheme: scheme, id: id)))
        }
        return o == b.count ? acl : nil
    }
}
