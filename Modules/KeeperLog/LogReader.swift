import KeeperModel

/// Streams records from a zxid on, one segment window at a time, for follower catch-up (ZAB's
/// DIFF), backups and `keeperctl`. Every record is verified before it is returned; damage
/// inside the durable range is reported, never skipped.
///
/// Not thread-safe: one reader per consumer. A segment purged before the reader reaches it
/// fails with ENOENT.
public final class LogReader {
    private let fileSystem: any LogFileSystem
    private let segments: [LogSegment]
    private let from: Zxid
    private var index: Int
    private var window: FileWindow?
    private var offset: Int64 = 0
    private var previous: Zxid = .zero

    init(fileSystem: any LogFileSystem, segments: [LogSegment], from: Zxid) {
        self.fileSystem = fileSystem
        self.segments = segments
        self.from = from
        // Segment i holds only zxids below segment i+1's base: start at the last base <= from.
        index = max(0, (segments.lastIndex { $0.baseZxid <= from }) ?? 0)
    }

    deinit {
        if let window {
            do { try window.file.close() } catch {
                // Nothing to report to: the reader is gone. A read-only descriptor loses no data.
            }
        }
    }

    /// The next record at or after the starting zxid, or nil at the end of the durable log.
    public func next() throws -> LogRecord? {
        while index < segments.count {
            let segment = segments[index]
            if window == nil {
                let file = try fileSystem.open(segment.path, mode: .readOnly)
                let opened = FileWindow(file: file, fileSize: segment.byteCount)
                _ = try SegmentScanner.header(opened, path: segment.path)
                window = opened
                offset = Int64(LogFormat.segmentHeaderSize)
                previous = segment.previousZxid
            }
            guard offset < segment.byteCount, let window else {
                try window?.file.close()
                window = nil
                index += 1
                continue
            }
            switch try SegmentScanner.check(window, at: offset, after: previous) {
            case .valid(let record):
                offset += Int64(record.extent)
                previous = record.zxid
                if record.zxid < from { continue }
                let payload = try window.bytes(at: record.offset + Int64(LogFormat.recordHeaderSize), count: record.payloadLength)!
                return LogRecord(zxid: record.zxid, payload: Array(payload))
            case .zero:
                throw KeeperLogError.corruption(LogCorruption(file: segment.path, offset: offset,
                    expected: "a durable record (the segment's records end at \(segment.byteCount))", found: "zeros"))
            case .invalid(let zxid, let expected, let found):
                throw KeeperLogError.corruption(LogCorruption(file: segment.path, offset: offset, zxid: zxid,
                                                              expected: expected, found: found))
            }
        }
        return nil
    }
}
