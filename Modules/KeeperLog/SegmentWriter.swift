import KeeperModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A record waiting to be written: the appender's payload, untouched (zero-copy), and its
/// checksum, computed on the appender's thread.
struct PendingRecord {
    let zxid: Zxid
    let payload: [UInt8]
    let payloadChecksum: UInt32
}

/// The segment files as the writer thread sees them. Only the thread writing batches touches
/// it: the writer thread, or a caller of `KeeperLog.flush(inline:)` while the writer thread
/// keeps off (and `KeeperLog.open`, before that thread starts).
final class SegmentWriter {
    struct Active {
        var file: any LogFile
        var info: LogSegment
        /// Bytes zero-filled so far (the file's size).
        var allocatedEnd: Int64
        /// The cached pages below this offset were dropped (`dropDurablePages`).
        var cacheDroppedThrough: Int64 = 0
    }

    let configuration: LogConfiguration
    var fileSystem: any LogFileSystem { configuration.fileSystem }
    var directory: String { configuration.directory }
    var sealed: [LogSegment]
    var active: Active?
    /// The last durable zxid of the log.
    var lastZxid: Zxid

    /// Per record: 24 header bytes, then padding and the 8-byte trailer (at most 15 bytes).
    static let scratchStride = 40
    private var scratch: UnsafeMutableRawPointer
    private var scratchRecords: Int
    private let iovecs: UnsafeMutablePointer<iovec>
    /// iovecs per gathered write: 3 per record, within IOV_MAX.
    static let iovecCapacity = 1020
    /// Zeros for preallocation.
    private static let zeroBlock = 1 << 20
    private let zeros: UnsafeMutableRawPointer
    /// Zero-fills ahead of the writer, so preallocation blocks do not stall batches.
    let preallocator = Preallocator()
    /// How far at least the preallocator keeps zero-filled space ahead of the writer (more
    /// after large batches: four times the last batch).
    static let minimumLead: Int64 = 4 << 20
    /// The durable log the writer keeps in the page cache behind its tail, and the least it
    /// drops at a time (`dropDurablePages`).
    static let cachedTail: Int64 = 4 << 20
    static let cacheDropStep: Int64 = 4 << 20
    /// The most the writer zero-fills itself when the preallocator has not kept up.
    private var inlineStep: Int64 { Int64(min(configuration.preallocationSize, 1 << 20)) }

    init(configuration: LogConfiguration, sealed: [LogSegment], active: Active?, lastZxid: Zxid) {
        self.configuration = configuration
        self.sealed = sealed
        self.active = active
        self.lastZxid = lastZxid
        scratchRecords = 256
        scratch = .allocate(byteCount: scratchRecords * Self.scratchStride, alignment: 8)
        iovecs = .allocate(capacity: Self.iovecCapacity)
        zeros = .allocate(byteCount: Self.zeroBlock, alignment: 4096)
        zeros.initializeMemory(as: UInt8.self, repeating: 0, count: Self.zeroBlock)
    }

    deinit {
        scratch.deallocate()
        iovecs.deallocate()
        zeros.deallocate()
    }

    var segments: [LogSegment] {
        if let active { return sealed + [active.info] }
        return sealed
    }

    private func path(_ name: String) -> String { directory + "/" + name }

    // MARK: Writing

    /// Writes a batch with gathered writes and one fdatasync. On success the records are
    /// durable; on a throw nothing of the batch counts and `repair()` must run.
    func write(_ batch: ArraySlice<PendingRecord>) throws {
        try finish(batch, try writeUnsynced(batch))
    }

    /// Where a batch written by `writeUnsynced` lies in the active segment.
    struct Written {
        let start: Int64
        let end: Int64
    }

    /// Writes a batch into the active segment without syncing it: `finish` syncs it and counts
    /// it. Nothing else may touch the writer in between (the same thread or another may call
    /// `finish`, ordered by the log's mutex).
    func writeUnsynced(_ batch: ArraySlice<PendingRecord>) throws -> Written {
        precondition(!batch.isEmpty)
        if needsRoll { try roll(base: batch.first!.zxid) }
        var total = 0
        for record in batch { total += LogFormat.recordExtent(payloadLength: record.payload.count) }
        let start = active!.info.byteCount
        if start + Int64(total) > active!.allocatedEnd,
            let reached = preallocator.progress(of: active!.file, through: start + Int64(total))
        {
            active!.allocatedEnd = max(active!.allocatedEnd, reached)
        }
        try allocate(through: start + Int64(total))
        if batch.count > scratchRecords {
            scratch.deallocate()
            scratchRecords = max(batch.count, scratchRecords * 2)
            scratch = .allocate(byteCount: scratchRecords * Self.scratchStride, alignment: 8)
        }
        // Frame every record: the header, the padding and the trailer live in scratch; the
        // payloads stay in the appenders' arrays.
        var slot = scratch
        for record in batch {
            let length = record.payload.count
            slot.storeBytes(of: LogFormat.recordMagic.littleEndian, toByteOffset: 0, as: UInt32.self)
            slot.storeBytes(of: UInt32(length).littleEndian, toByteOffset: 4, as: UInt32.self)
            slot.storeBytes(of: record.zxid.rawValue.littleEndian, toByteOffset: 8, as: Int64.self)
            slot.storeBytes(of: UInt64(start).littleEndian, toByteOffset: 16, as: UInt64.self)
            let checksum = LogFormat.crc(UnsafeRawBufferPointer(start: slot, count: LogFormat.recordHeaderSize),
                                         seed: record.payloadChecksum)
            let padding = LogFormat.paddedLength(length) - length
            let tail = slot + LogFormat.recordHeaderSize
            tail.initializeMemory(as: UInt8.self, repeating: 0, count: padding)
            tail.storeBytes(of: checksum.littleEndian, toByteOffset: padding, as: UInt32.self)
            tail.storeBytes(of: (~UInt32(length)).littleEndian, toByteOffset: padding + 4, as: UInt32.self)
            slot += Self.scratchStride
        }
        let file = active!.file
        var offset = start
        var first = batch.startIndex
        var slotIndex = 0
        let perWrite = Self.iovecCapacity / 3
        while first < batch.endIndex {
            let end = min(batch.endIndex, first + perWrite)
            offset += try gather(batch[first..<end], slotIndex: slotIndex, file: file, at: offset)
            slotIndex += end - first
            first = end
        }
        return Written(start: start, end: offset)
    }

    /// Syncs a batch `writeUnsynced` wrote and counts it: it is durable once this returns.
    func finish(_ batch: ArraySlice<PendingRecord>, _ written: Written) throws {
        let (start, offset) = (written.start, written.end)
        try active!.file.syncData()
        active!.info.byteCount = offset
        active!.info.recordCount += batch.count
        if active!.info.firstZxid == nil { active!.info.firstZxid = batch.first!.zxid }
        active!.info.lastZxid = batch.last!.zxid
        lastZxid = batch.last!.zxid
        dropDurablePages(below: offset - Self.cachedTail, step: Self.cacheDropStep)
        // Keep zero-filled space `lead` bytes ahead: start the next preallocation block when
        // less remains, and pace a running one.
        let block = Int64(configuration.preallocationSize)
        let lead = min(block, max(Self.minimumLead, 4 * (offset - start)))
        if active!.allocatedEnd - offset < lead && !preallocator.isBusy {
            preallocator.start(file: active!.file, from: active!.allocatedEnd, to: active!.allocatedEnd + block,
                               limit: offset + lead)
        } else {
            preallocator.allow(active!.file, through: offset + lead)
        }
    }

    /// Lets the OS drop the active segment's cached pages below `end` (rounded down to a
    /// page), in steps of at least `step` bytes. Every byte there is durable (a batch is only
    /// counted after its fdatasync) and the writer never reads it back; readers (recovery, a
    /// follower's catch-up, backups) get it from the disk, prefetched ahead. Without this
    /// every log byte takes a fresh page of memory, and the zero-fill ahead of the writer pays
    /// for it: on a virtual machine that hands free memory back to its host, a fresh page costs
    /// a fault in the host too (about ten times the system time of zero-filling into a page just
    /// dropped: `Tools/bench/log-disk.py --only pages`).
    /// The pages at the tail stay: a write into a dropped partial page would read it first.
    private func dropDurablePages(below end: Int64, step: Int64) {
        let pageAligned = end & ~4095
        guard pageAligned - active!.cacheDroppedThrough >= step else { return }
        active!.file.dropCache(active!.cacheDroppedThrough..<pageAligned)
        active!.cacheDroppedThrough = pageAligned
    }

    /// Takes over what the preallocator zero-filled (waiting for it, or stopping it early with
    /// `cancel`). After it returns nothing else writes to the active segment. A preallocation
    /// error is not reported here: the writer zero-fills inline what it still needs and meets
    /// the same error (ENOSPC) on the batch it belongs to.
    private func absorbPreallocation(cancel: Bool) {
        guard let result = preallocator.finish(cancel: cancel), let current = active,
            (result.file as AnyObject) === (current.file as AnyObject)
        else { return }
        active!.allocatedEnd = max(current.allocatedEnd, result.reached)
    }

    /// One pwritev of a chunk of records. The payload pointers come from nested
    /// `withUnsafeBytes` calls (one per record, at most `iovecCapacity / 3` deep), so each is
    /// valid for the whole write without copying the payload.
    private func gather(_ chunk: ArraySlice<PendingRecord>, slotIndex: Int, file: any LogFile, at offset: Int64) throws -> Int64 {
        var count = 0
        var bytes = 0
        func nest(_ index: Int) throws {
            if index == chunk.endIndex {
                try file.write(UnsafeBufferPointer(start: iovecs, count: count), at: offset)
                return
            }
            let record = chunk[index]
            let slot = scratch + (slotIndex + index - chunk.startIndex) * Self.scratchStride
            let length = record.payload.count
            iovecs[count] = iovec(iov_base: slot, iov_len: LogFormat.recordHeaderSize)
            count += 1
            try record.payload.withUnsafeBytes { payload in
                if length > 0 {
                    iovecs[count] = iovec(iov_base: UnsafeMutableRawPointer(mutating: payload.baseAddress!), iov_len: length)
                    count += 1
                }
                let tail = LogFormat.paddedLength(length) - length + LogFormat.recordTrailerSize
                iovecs[count] = iovec(iov_base: slot + LogFormat.recordHeaderSize, iov_len: tail)
                count += 1
                bytes += LogFormat.recordExtent(payloadLength: length)
                try nest(index + 1)
            }
        }
        try nest(chunk.startIndex)
        return Int64(bytes)
    }

    /// Zero-fills the active segment until it reaches `end` (rounded up to `inlineStep`), when
    /// the preallocator has not done it ahead.
    private func allocate(through end: Int64) throws {
        guard end > active!.allocatedEnd else { return }
        let block = inlineStep
        let target = (end + block - 1) / block * block
        var offset = active!.allocatedEnd
        while offset < target {
            var count = 0
            var bytes = 0
            while count < Self.iovecCapacity && offset + Int64(bytes) < target {
                let n = Int(min(Int64(Self.zeroBlock), target - offset - Int64(bytes)))
                iovecs[count] = iovec(iov_base: zeros, iov_len: n)
                count += 1
                bytes += n
            }
            try active!.file.write(UnsafeBufferPointer(start: iovecs, count: count), at: offset)
            offset += Int64(bytes)
        }
        active!.allocatedEnd = target
    }

    private var needsRoll: Bool {
        guard let active else { return true }
        return active.info.recordCount >= configuration.segmentMaxRecords
            || active.info.byteCount >= configuration.segmentMaxBytes
    }

    /// Seals the active segment (trimmed to its records and synced) and creates the next:
    /// header written and synced under a temporary name, renamed, directory synced. Only then
    /// may records go into it: a crash can never leave a named segment without its header, nor
    /// forget a segment that holds synced records.
    private func roll(base: Zxid) throws {
        absorbPreallocation(cancel: true)
        if active != nil {
            try active!.file.truncate(to: active!.info.byteCount)
            active!.allocatedEnd = active!.info.byteCount
            try active!.file.syncData()
            // Sealed and synced: nothing writes to it again.
            dropDurablePages(below: active!.info.byteCount + 4095, step: 1)
        }
        let name = LogFormat.segmentName(base: base)
        let final = path(name)
        let temporary = final + LogFormat.temporarySuffix
        let header = SegmentHeader(databaseID: configuration.databaseID, baseZxid: base, previousZxid: lastZxid)
        let file = try fileSystem.open(temporary, mode: .createNew)
        do {
            try header.encode().withUnsafeBytes { raw in
                let vector = iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress!), iov_len: raw.count)
                try withUnsafePointer(to: vector) { try file.write(UnsafeBufferPointer(start: $0, count: 1), at: 0) }
            }
            try file.syncData()
            try fileSystem.rename(temporary, to: final)
        } catch {
            // The temporary file is harmless (recovery removes it); report the first failure.
            do {
                try file.close()
                try fileSystem.remove(temporary)
            } catch let cleanup {
                throw KeeperLogError.failed(cause: cleanup)
            }
            throw error
        }
        do {
            try fileSystem.syncDirectory(directory)
        } catch {
            // The segment is named but perhaps not durably: records must never go into it.
            throw KeeperLogError.failed(cause: error)
        }
        if var previous = active {
            previous.info.isActive = false
            try previous.file.close()
            sealed.append(previous.info)
        }
        active = Active(
            file: file,
            info: LogSegment(name: name, path: final, baseZxid: base, previousZxid: lastZxid, firstZxid: nil,
                             lastZxid: nil, recordCount: 0, byteCount: Int64(LogFormat.segmentHeaderSize), isActive: true),
            allocatedEnd: Int64(LogFormat.segmentHeaderSize))
    }

    /// After a failed write or sync: cut the active segment back to its durable records and
    /// sync, so nothing of the failed batch (which a failed fdatasync may have half-written, or
    /// dropped while reads still show it) can resurface at recovery.
    func repair() throws {
        absorbPreallocation(cancel: true)
        guard active != nil else { return }
        try active!.file.truncate(to: active!.info.byteCount)
        active!.allocatedEnd = active!.info.byteCount
        try active!.file.syncData()
    }

    // MARK: Truncate and purge

    /// Removes every record after `zxid` (ZAB's TRUNC). Later segments go first, newest first,
    /// each removal made durable before the next, so a crash leaves a prefix of the old log,
    /// never a log with a hole.
    func truncate(after zxid: Zxid) throws {
        guard zxid < lastZxid else { return }
        absorbPreallocation(cancel: true)
        if let current = active, current.info.baseZxid > zxid {
            try current.file.close()
            active = nil
            try fileSystem.remove(current.info.path)
            try fileSystem.syncDirectory(directory)
        }
        while active == nil, let newest = sealed.last, newest.baseZxid > zxid {
            sealed.removeLast()
            try fileSystem.remove(newest.path)
            try fileSystem.syncDirectory(directory)
        }
        if active == nil {
            guard let newest = sealed.popLast() else {
                lastZxid = .zero
                return
            }
            let file = try fileSystem.open(newest.path, mode: .readWrite)
            var info = newest
            info.isActive = true
            active = Active(file: file, info: info, allocatedEnd: try file.size())
        }
        // Find where the records after `zxid` start in the (now) active segment.
        let file = active!.file
        let window = FileWindow(file: file, fileSize: active!.info.byteCount)
        var info = active!.info
        var offset = Int64(LogFormat.segmentHeaderSize)
        var previous = info.previousZxid
        info.recordCount = 0
        info.firstZxid = nil
        info.lastZxid = nil
        while offset < active!.info.byteCount {
            guard case .valid(let record) = try SegmentScanner.check(window, at: offset, after: previous) else {
                throw KeeperLogError.corruption(LogCorruption(file: info.path, offset: offset, expected: "a sound durable record",
                                                              found: "a record that does not verify"))
            }
            if record.zxid > zxid { break }
            info.recordCount += 1
            if info.firstZxid == nil { info.firstZxid = record.zxid }
            info.lastZxid = record.zxid
            previous = record.zxid
            offset += Int64(record.extent)
        }
        try file.truncate(to: offset)
        try file.syncData()
        info.byteCount = offset
        active!.info = info
        active!.allocatedEnd = offset
        // Drops resume from the new tail's page (its bytes are read back on the next write).
        active!.cacheDroppedThrough = min(active!.cacheDroppedThrough, offset & ~4095)
        lastZxid = info.lastZxid ?? info.previousZxid
    }

    /// Removes the sealed segments whose records all precede `zxid`, oldest first. The active
    /// segment stays.
    func purge(before zxid: Zxid) throws -> [LogSegment] {
        var removed: [LogSegment] = []
        while let oldest = sealed.first, (oldest.lastZxid ?? oldest.previousZxid) < zxid {
            try fileSystem.remove(oldest.path)
            removed.append(sealed.removeFirst())
        }
        if !removed.isEmpty { try fileSystem.syncDirectory(directory) }
        return removed
    }

    func close() throws {
        preallocator.stop()
        if let active {
            self.active = nil
            try active.file.close()
        }
    }
}
