import KeeperModel

/// How a `KeeperLog` lays out and writes its segments.
public struct LogConfiguration: Sendable {
    /// The log directory (ZooKeeper's `dataLogDir`): ideally a device of its own, apart from
    /// the store's `dataDir`, so log syncs do not queue behind store writes.
    public var directory: String
    /// The database this log belongs to, written in every segment header; opening a directory
    /// that holds another database's segments fails instead of mixing histories.
    public var databaseID: UInt64
    /// Segments grow in blocks of this many zero-filled bytes (ZooKeeper's `preAllocSize`,
    /// 64 MiB), so appends overwrite allocated space and fdatasync has no metadata to write.
    public var preallocationSize: Int
    /// A segment rolls (at a batch boundary) once it holds this many records (`snapCount`).
    public var segmentMaxRecords: Int
    /// ... or this many bytes.
    public var segmentMaxBytes: Int64
    /// The most records one write and sync carries (bounds a batch's memory and latency).
    public var maxBatchRecords: Int
    /// How long the writer waits for more records after the first of a batch arrives. Zero
    /// (the default) adds no delay: a batch is whatever arrived while the previous sync ran.
    public var maxBatchDelay: Duration
    /// Appends block once this many payload bytes wait to be written (back-pressure).
    public var maxPendingBytes: Int
    /// The largest payload `append` accepts.
    public var maxPayloadBytes: Int
    /// The disk: `PosixLogFileSystem` in production, `SimulatedLogFileSystem` in tests.
    public var fileSystem: any LogFileSystem

    public init(
        directory: String,
        databaseID: UInt64 = 0,
        preallocationSize: Int = Limits.default.logPreallocation,
        segmentMaxRecords: Int = Limits.default.snapCount,
        segmentMaxBytes: Int64 = 1 << 30,
        maxBatchRecords: Int = 4096,
        maxBatchDelay: Duration = .zero,
        maxPendingBytes: Int = 64 << 20,
        maxPayloadBytes: Int = 16 << 20,
        fileSystem: any LogFileSystem = PosixLogFileSystem()
    ) {
        precondition(preallocationSize >= 4096, "preallocationSize must be at least 4096 bytes")
        precondition(segmentMaxRecords > 0 && segmentMaxBytes > Int64(LogFormat.segmentHeaderSize))
        precondition(maxBatchRecords > 0 && maxPendingBytes > 0)
        precondition(maxPayloadBytes > 0 && maxPayloadBytes <= LogFormat.maxPayloadLength,
                     "maxPayloadBytes must be in 1...\(LogFormat.maxPayloadLength)")
        self.directory = directory
        self.databaseID = databaseID
        self.preallocationSize = preallocationSize
        self.segmentMaxRecords = segmentMaxRecords
        self.segmentMaxBytes = segmentMaxBytes
        self.maxBatchRecords = maxBatchRecords
        self.maxBatchDelay = maxBatchDelay
        self.maxPendingBytes = maxPendingBytes
        self.maxPayloadBytes = maxPayloadBytes
        self.fileSystem = fileSystem
    }
}

/// One segment file and the zxids it holds.
public struct LogSegment: Hashable, Sendable {
    /// The file name, `log.<16 hex digits of baseZxid>`.
    public var name: String
    public var path: String
    /// The first zxid the segment may hold (its first record's, when it was created).
    public var baseZxid: Zxid
    /// The last zxid of the log before this segment.
    public var previousZxid: Zxid
    public var firstZxid: Zxid?
    public var lastZxid: Zxid?
    public var recordCount: Int
    /// Bytes holding the header and durable records (the file may be longer: preallocation).
    public var byteCount: Int64
    /// The segment appends go to.
    public var isActive: Bool
}

/// What the writer tells the log's owner, on the writer's thread.
public enum LogEvent: Sendable {
    /// Every record up to and including this zxid is durable.
    case durable(Zxid)
    /// A write or sync failed: the records in `zxids` were not written and will not be. The log
    /// is stalled (appends throw) until `resume()`; `error.isNoSpace` says if the disk is full.
    case failed(zxids: ClosedRange<Zxid>, error: KeeperLogError)
}

/// A record read back from the log.
public struct LogRecord: Hashable, Sendable {
    public var zxid: Zxid
    public var payload: [UInt8]
}

/// What recovery found when the log opened.
public struct LogRecoveryReport: Hashable, Sendable {
    /// Every segment, oldest first, as scanned.
    public var segments: [SegmentScan]
    /// Records in the log.
    public var recordCount: Int
    /// The last zxid in the log (`.zero` when empty).
    public var lastZxid: Zxid
    /// The torn tail cut off the last segment, if any: a batch whose sync never completed.
    public var tornTail: SegmentEnding?
    /// Unfinished segment creations (`*.tmp`) that were removed.
    public var removedTemporaryFiles: [String]
}
