/// A ZooKeeper transaction id: the epoch in the high 32 bits, a counter in the low 32 bits.
///
/// Every state change (including error txns and session creation) consumes one zxid; the
/// total order of zxids is the order of the replicated history (ZAB paper, section III).
public struct Zxid: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: Int64

    @inlinable public init(rawValue: Int64) { self.rawValue = rawValue }
    @inlinable public init(_ rawValue: Int64) { self.rawValue = rawValue }

    /// Builds a zxid from an epoch and a counter.
    @inlinable public init(epoch: UInt32, counter: UInt32) {
        self.rawValue = Int64(bitPattern: UInt64(epoch) << 32 | UInt64(counter))
    }

    /// The zxid before anything was written.
    public static let zero = Zxid(0)

    @inlinable public var epoch: UInt32 { UInt32(truncatingIfNeeded: UInt64(bitPattern: rawValue) >> 32) }
    @inlinable public var counter: UInt32 { UInt32(truncatingIfNeeded: UInt64(bitPattern: rawValue)) }

    /// The next zxid in the same epoch, or nil when the counter is exhausted (a new epoch is
    /// then forced, as ZooKeeper does when the low 32 bits roll over).
    @inlinable public var next: Zxid? {
        counter == UInt32.max ? nil : Zxid(epoch: epoch, counter: counter + 1)
    }

    @inlinable public static func < (lhs: Zxid, rhs: Zxid) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Hex as ZooKeeper prints it (`0x100000003`).
    public var description: String { "0x" + String(UInt64(bitPattern: rawValue), radix: 16) }
}

/// A client session id. ZooKeeper's `sessionId`, also the `ephemeralOwner` of ephemeral znodes.
public struct SessionID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: Int64
    @inlinable public init(rawValue: Int64) { self.rawValue = rawValue }
    @inlinable public init(_ rawValue: Int64) { self.rawValue = rawValue }
    /// No session (ZooKeeper's 0), the owner of non-ephemeral nodes.
    public static let none = SessionID(0)
    @inlinable public static func < (lhs: SessionID, rhs: SessionID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "0x" + String(UInt64(bitPattern: rawValue), radix: 16) }
}
