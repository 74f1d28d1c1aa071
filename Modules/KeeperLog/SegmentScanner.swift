import KeeperModel

/// A sliding read window over a file, so scans and readers stream a segment of any size
/// through a bounded buffer instead of loading it.
final class FileWindow {
    let file: any LogFile
    let fileSize: Int64
    private var buffer: UnsafeMutableRawBufferPointer
    private var start: Int64 = 0
    private var count = 0
    /// The default window: large enough that a scan makes few reads.
    static let defaultCapacity = 1 << 20
    /// How far past the window the file is prefetched, so that the disk reads ahead while the
    /// caller checks the window (a log whose pages the writer dropped is read from the disk).
    static let prefetchAhead: Int64 = 8 << 20
    private var prefetchedThrough: Int64 = 0

    init(file: any LogFile, fileSize: Int64, capacity: Int = FileWindow.defaultCapacity) {
        self.file = file
        self.fileSize = fileSize
        buffer = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// `length` bytes at `offset`, valid until the next call; nil if the file ends first.
    func bytes(at offset: Int64, count length: Int) throws(KeeperLogError) -> UnsafeRawBufferPointer? {
        precondition(offset >= 0 && length >= 0)
        guard offset + Int64(length) <= fileSize else { return nil }
        if offset < start || offset + Int64(length) > start + Int64(count) {
            if length > buffer.count {
                buffer.deallocate()
                buffer = .allocate(byteCount: max(length, buffer.count * 2), alignment: 16)
            }
            let want = Int(min(Int64(buffer.count), fileSize - offset))
            let got = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]), at: offset)
            start = offset
            count = got
            let from = max(prefetchedThrough, offset + Int64(got))
            let horizon = min(fileSize, offset + Int64(got) + Self.prefetchAhead)
            if horizon > from {
                file.prefetch(from..<horizon)
                prefetchedThrough = horizon
            }
            guard got >= length else { return nil }
        }
        let from = Int(offset - start)
        return UnsafeRawBufferPointer(rebasing: buffer[from..<(from + length)])
    }
}

/// One record as a scan sees it.
public struct LogRecordLocation: Hashable, Sendable {
    public var zxid: Zxid
    /// The record's byte offset in its segment.
    public var offset: Int64
    public var payloadLength: Int
    /// How far the segment was durable when the record was written.
    public var syncedOffset: Int64
    public var checksum: UInt32
    /// Bytes the record occupies, header and trailer included.
    public var extent: Int { LogFormat.recordExtent(payloadLength: payloadLength) }
}

/// How a segment's records end.
public enum SegmentEnding: Hashable, Sendable {
    /// Records end with zeros (preallocated space) or the end of the file.
    case clean
    /// A write that never completed: from `offset`, `bytes` bytes hold a partial batch that
    /// was never synced, so never acknowledged. Recovery cuts it off.
    case tornTail(offset: Int64, bytes: Int64, reason: String)
    /// Damage that is not a torn tail; recovery refuses to open past it.
    case corrupt(LogCorruption)
}

/// The result of scanning one segment file.
public struct SegmentScan: Hashable, Sendable {
    public var path: String
    public var name: String
    public var databaseID: UInt64
    public var baseZxid: Zxid
    public var previousZxid: Zxid
    public var recordCount: Int
    public var firstZxid: Zxid?
    public var lastZxid: Zxid?
    /// The offset just past the last sound record.
    public var endOffset: Int64
    public var fileSize: Int64
    public var ending: SegmentEnding
}

/// Reads and verifies segments. Shared by recovery, the reader and `keeperctl log`.
enum SegmentScanner {
    enum Check {
        case valid(LogRecordLocation)
        case zero
        case invalid(zxid: Zxid?, expected: String, found: String)
    }

    /// Verifies the record at `offset`. `previous` is the zxid it must exceed.
    static func check(_ window: FileWindow, at offset: Int64, after previous: Zxid) throws(KeeperLogError) -> Check {
        guard let head = try window.bytes(at: offset, count: LogFormat.recordHeaderSize) else {
            let left = window.fileSize - offset
            if try isZero(window, from: offset, to: window.fileSize) { return .zero }
            return .invalid(zxid: nil, expected: "a \(LogFormat.recordHeaderSize)-byte record header",
                            found: "\(left) bytes before the end of the file")
        }
        let magic = UInt32(littleEndian: head.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        let length = Int(UInt32(littleEndian: head.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        let zxid = Zxid(Int64(littleEndian: head.loadUnaligned(fromByteOffset: 8, as: Int64.self)))
        let synced = Int64(bitPattern: UInt64(littleEndian: head.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
        if magic == 0 && length == 0 && zxid.rawValue == 0 && synced == 0 { return .zero }
        guard magic == LogFormat.recordMagic else {
            return .invalid(zxid: nil, expected: "record magic \(hex32(LogFormat.recordMagic))", found: hex32(magic))
        }
        guard length <= LogFormat.maxPayloadLength else {
            return .invalid(zxid: zxid, expected: "a payload length of at most \(LogFormat.maxPayloadLength)",
                            found: "\(length)")
        }
        let extent = LogFormat.recordExtent(payloadLength: length)
        guard let record = try window.bytes(at: offset, count: extent) else {
            return .invalid(zxid: zxid, expected: "a \(extent)-byte record",
                            found: "\(window.fileSize - offset) bytes before the end of the file")
        }
        let trailer = extent - LogFormat.recordTrailerSize
        let stored = UInt32(littleEndian: record.loadUnaligned(fromByteOffset: trailer, as: UInt32.self))
        let marker = UInt32(littleEndian: record.loadUnaligned(fromByteOffset: trailer + 4, as: UInt32.self))
        guard marker == ~UInt32(length) else {
            return .invalid(zxid: zxid, expected: "end marker \(hex32(~UInt32(length)))", found: hex32(marker))
        }
        let payload = UnsafeRawBufferPointer(rebasing: record[LogFormat.recordHeaderSize..<(LogFormat.recordHeaderSize + length)])
        let computed = LogFormat.crc(UnsafeRawBufferPointer(rebasing: record[0..<LogFormat.recordHeaderSize]),
                                     seed: LogFormat.crc(payload))
        guard computed == stored else {
            return .invalid(zxid: zxid, expected: "checksum \(hex32(computed))", found: hex32(stored))
        }
        guard zxid > previous else {
            return .invalid(zxid: zxid, expected: "a zxid after \(previous)", found: "\(zxid)")
        }
        guard synced >= Int64(LogFormat.segmentHeaderSize) && synced <= offset else {
            return .invalid(zxid: zxid, expected: "a synced offset within [\(LogFormat.segmentHeaderSize), \(offset)]",
                            found: "\(synced)")
        }
        return .valid(LogRecordLocation(zxid: zxid, offset: offset, payloadLength: length,
                                        syncedOffset: synced, checksum: stored))
    }

    static func isZero(_ window: FileWindow, from start: Int64, to end: Int64) throws(KeeperLogError) -> Bool {
        var offset = start
        while offset < end {
            let step = Int(min(Int64(FileWindow.defaultCapacity / 2), end - offset))
            guard let bytes = try window.bytes(at: offset, count: step) else { return false }
            if bytes.contains(where: { $0 != 0 }) { return false }
            offset += Int64(step)
        }
        return true
    }

    /// Reads a segment's header. Headers are synced before the segment is named, so any damage
    /// here is corruption.
    static func header(_ window: FileWindow, path: String) throws(KeeperLogError) -> SegmentHeader {
        guard let raw = try window.bytes(at: 0, count: LogFormat.segmentHeaderSize) else {
            throw .corruption(LogCorruption(file: path, offset: 0,
                                            expected: "a \(LogFormat.segmentHeaderSize)-byte segment header",
                                            found: "a \(window.fileSize)-byte file"))
        }
        return try SegmentHeader.decode(raw, file: path)
    }

    /// Scans a whole segment, verifying every record, and classifies how it ends.
    /// `visit` sees each sound record and its payload (valid only during the call).
    static func scan(
        file: any LogFile, path: String, name: String, isLast: Bool, after previous: Zxid?,
        visit: ((LogRecordLocation, UnsafeRawBufferPointer) throws -> Void)? = nil
    ) throws -> SegmentScan {
        let window = FileWindow(file: file, fileSize: try file.size())
        let header = try header(window, path: path)
        var result = SegmentScan(
            path: path, name: name, databaseID: header.databaseID, baseZxid: header.baseZxid,
            previousZxid: header.previousZxid, recordCount: 0, firstZxid: nil, lastZxid: nil,
            endOffset: Int64(LogFormat.segmentHeaderSize), fileSize: window.fileSize, ending: .clean)
        // The first segment's predecessors may be purged: trust its header for them.
        var last = previous ?? header.previousZxid
        var offset = Int64(LogFormat.segmentHeaderSize)
        while true {
            switch try check(window, at: offset, after: last) {
            case .valid(let record):
                if result.firstZxid == nil && record.zxid < header.baseZxid {
                    result.endOffset = offset
                    result.ending = .corrupt(LogCorruption(file: path, offset: offset, zxid: record.zxid,
                        expected: "a zxid at or after the segment's base \(header.baseZxid)", found: "\(record.zxid)"))
                    return result
                }
                if let visit {
                    let payload = try window.bytes(at: offset + Int64(LogFormat.recordHeaderSize), count: record.payloadLength)!
                    try visit(record, payload)
                }
                result.recordCount += 1
                if result.firstZxid == nil { result.firstZxid = record.zxid }
                result.lastZxid = record.zxid
                last = record.zxid
                offset += Int64(record.extent)
                result.endOffset = offset
            case .zero:
                result.ending = try classifyEnd(window, path: path, at: offset, after: last, isLast: isLast,
                                                found: nil, zxid: nil, expected: nil)
                return result
            case .invalid(let zxid, let expected, let found):
                result.ending = try classifyEnd(window, path: path, at: offset, after: last, isLast: isLast,
                                                found: found, zxid: zxid, expected: expected)
                return result
            }
        }
    }

    /// Decides whether what follows the last sound record at `offset` is the clean end, a torn
    /// tail or corruption.
    ///
    /// Proof of corruption: a later record that verifies and whose `syncedOffset` is past
    /// `offset` was written after `offset` had been synced, so the bytes at `offset` were once
    /// durable and acknowledged. Without such proof, damage in the last segment is a torn tail
    /// only if it looks like an unfinished write on zero-filled space: a zero magic, a zero end
    /// marker, a record running past the end of the file, or an all-zero sector inside it.
    /// Damage with none of these marks is corruption (bit rot does not write zeros).
    static func classifyEnd(
        _ window: FileWindow, path: String, at offset: Int64, after last: Zxid, isLast: Bool,
        found: String?, zxid: Zxid?, expected: String?
    ) throws(KeeperLogError) -> SegmentEnding {
        let end = window.fileSize
        if offset >= end { return .clean }
        // Look for a later record that proves `offset` was synced. Records are 8-byte aligned.
        var candidates: [Int64] = []
        var chunkStart = offset + 8
        let chunkSize = Int64(FileWindow.defaultCapacity / 2)
        while chunkStart + Int64(LogFormat.recordHeaderSize) <= end {
            let count = Int(min(chunkSize, end - chunkStart))
            let chunk = try window.bytes(at: chunkStart, count: count)!
            var position = 0
            while position + 4 <= count {
                if UInt32(littleEndian: chunk.loadUnaligned(fromByteOffset: position, as: UInt32.self)) == LogFormat.recordMagic {
                    candidates.append(chunkStart + Int64(position))
                }
                position += 8
            }
            chunkStart += Int64(count)
        }
        for probe in candidates {
            if case .valid(let record) = try check(window, at: probe, after: last),
                record.syncedOffset > offset
            {
                return .corrupt(LogCorruption(
                    file: path, offset: offset, zxid: zxid,
                    expected: expected.map { "\($0) (the record at offset \(record.offset), zxid \(record.zxid), was written after this offset had been synced)" }
                        ?? "the record before zxid \(record.zxid) at offset \(record.offset), which was written after this offset had been synced",
                    found: found ?? "zeros"))
            }
        }
        if found == nil {
            // Zeros at `offset`: the end of the records. Anything non-zero after it is a batch
            // that was never synced (no record there proves otherwise).
            if try isZero(window, from: offset, to: end) { return .clean }
            guard isLast else {
                return .corrupt(LogCorruption(file: path, offset: offset, expected: "zeros after the last record of a sealed segment",
                                              found: "non-zero bytes"))
            }
            return .tornTail(offset: offset, bytes: end - offset, reason: "non-zero bytes after the records, none of them a synced record")
        }
        guard isLast else {
            return .corrupt(LogCorruption(file: path, offset: offset, zxid: zxid, expected: expected ?? "a record",
                                          found: found ?? "damage"))
        }
        if let reason = try tornMark(window, at: offset) {
            return .tornTail(offset: offset, bytes: end - offset, reason: reason)
        }
        return .corrupt(LogCorruption(file: path, offset: offset, zxid: zxid,
                                      expected: (expected ?? "a record") + " (and the damage bears no mark of an unfinished write)",
                                      found: found ?? "damage"))
    }

    /// True if `value` is what a write of `expected` torn after 0 to 3 of its (little-endian)
    /// bytes leaves on zero-filled space.
    static func isTornPrefix(_ value: UInt32, of expected: UInt32) -> Bool {
        for kept in 0..<4 where value == expected & ~(UInt32.max << (8 * kept)) { return true }
        return false
    }

    /// The mark of an unfinished write on the record at `offset`, or nil.
    static func tornMark(_ window: FileWindow, at offset: Int64) throws(KeeperLogError) -> String? {
        let end = window.fileSize
        guard let head = try window.bytes(at: offset, count: LogFormat.recordHeaderSize) else {
            return "a record header cut by the end of the file"
        }
        let magic = UInt32(littleEndian: head.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        let length = Int(UInt32(littleEndian: head.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        if magic == 0 { return "the record's first bytes were never written" }
        if magic != LogFormat.recordMagic {
            // A write torn inside the magic leaves a prefix of it and then zeros.
            return isTornPrefix(magic, of: LogFormat.recordMagic) ? "the record header was cut inside its magic" : nil
        }
        // A torn length field holds a prefix of a valid length, so it is never too large.
        guard length <= LogFormat.maxPayloadLength else { return nil }
        let extent = Int64(LogFormat.recordExtent(payloadLength: length))
        if offset + extent > end { return "the record runs past the end of the file" }
        let marker = try window.bytes(at: offset + extent - 4, count: 4)!
        if isTornPrefix(UInt32(littleEndian: marker.loadUnaligned(as: UInt32.self)), of: ~UInt32(length)) {
            return "the record's end was never written"
        }
        let sector = Int64(LogFormat.sectorSize)
        var block = (offset + sector - 1) / sector * sector
        while block + sector <= offset + extent {
            if try isZero(window, from: block, to: block + sector) {
                return "an all-zero sector at offset \(block) inside the record was never written"
            }
            block += sector
        }
        return nil
    }
}
