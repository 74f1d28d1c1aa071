/// Create modes (CreateMode) with their wire flags.
public enum CreateMode: Int32, Sendable, CaseIterable {
    case persistent = 0
    case ephemeral = 1
    case persistentSequential = 2
    case ephemeralSequential = 3
    case container = 4
    case persistentWithTTL = 5
    case persistentSequentialWithTTL = 6

    public var isEphemeral: Bool { self == .ephemeral || self == .ephemeralSequential }
    public var isSequential: Bool {
        self == .persistentSequential || self == .ephemeralSequential || self == .persistentSequentialWithTTL
    }
    public var isContainer: Bool { self == .container }
    public var isTTL: Bool { self == .persistentWithTTL || self == .persistentSequentialWithTTL }
}

/// The special `ephemeralOwner` encodings of ZooKeeper's EphemeralType: a container has only
/// the high bit set; a TTL node has the high byte 0xff and the TTL in the low 40 bits.
public enum EphemeralOwner {
    /// `EphemeralType.CONTAINER_EPHEMERAL_OWNER` (Long.MIN_VALUE).
    public static let container: Int64 = Int64.min
    static let extendedMask: UInt64 = 0xff00_0000_0000_0000
    static let reservedMask: UInt64 = 0x00ff_ff00_0000_0000
    /// The largest TTL ZooKeeper accepts: the low 40 bits (about 34 years of milliseconds).
    public static let maxTTL: Int64 = Int64(bitPattern: ~(extendedMask | reservedMask))

    /// The ephemeralOwner ZooKeeper stores for a TTL node, or nil when the TTL is out of range
    /// (ZooKeeper answers BadArguments: a TTL must be > 0 and <= maxTTL).
    public static func ttl(_ milliseconds: Int64) -> Int64? {
        guard milliseconds > 0, milliseconds <= maxTTL else { return nil }
        return Int64(bitPattern: extendedMask | UInt64(milliseconds))
    }

    /// The TTL encoded in an ephemeralOwner, or nil when the owner is not a TTL encoding.
    public static func ttlValue(of owner: Int64) -> Int64? {
        let bits = UInt64(bitPattern: owner)
        guard bits & extendedMask == extendedMask else { return nil }
        return Int64(bitPattern: bits & ~(extendedMask | reservedMask))
    }

    /// Whether `owner` is a real session (a plain ephemeral node).
    public static func isSession(_ owner: Int64) -> Bool {
        owner != 0 && owner != container && ttlValue(of: owner) == nil
    }
}
