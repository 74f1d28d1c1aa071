/// Every limit of SwiftKeeper, named, in one place. Defaults follow ZooKeeper's where it has one.
public struct Limits: Hashable, Sendable {
    /// `jute.maxbuffer`: the largest frame (and so znode data) accepted, 0xfffff bytes.
    public var maxBuffer: Int = 1_048_575
    /// `preAllocSize`: log preallocation block, 64 MiB (ZooKeeper's default).
    public var logPreallocation: Int = 64 * 1024 * 1024
    /// `snapCount`: txns between store checkpoints / log rolls (ZooKeeper's default 100,000).
    public var snapCount: Int = 100_000
    /// `maxClientCnxns`: concurrent connections from one address (0 = unlimited).
    public var maxClientConnections: Int = 60
    /// `globalOutstandingLimit`: requests in flight before the server stops reading.
    public var globalOutstandingLimit: Int = 1000
    /// The longest znode path accepted, in bytes (bounded by `maxBuffer` in ZooKeeper).
    public var maxPathLength: Int = 1_048_575

    public init() {}

    /// ZooKeeper's defaults.
    public static let `default` = Limits()
}
