import KeeperModel
import Testing

@testable import KeeperLog

@Suite("the log's page cache")
struct LogCacheTests {
    @Test("the writer drops only durable, page-aligned pages well behind its tail, and a sealed segment's all")
    func dropsOnlyDurablePagesBehindTheTail() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem, preallocation: 1 << 20, segmentRecords: 4_000))
        let body = [UInt8](repeating: 0x5A, count: 4_000)
        var counter = 0
        func appendBatch() async throws {
            for _ in 0..<100 {
                counter += 1
                try log.append(zxid: zxid(counter), payload: body)
            }
            try await log.waitUntilDurable(zxid(counter))
        }
        // About 16 MB into the first segment, checking the drops after every batch.
        while counter < 4_000 {
            try await appendBatch()
            let active = try #require(log.segments().last)
            let drops = fileSystem.cacheDrops.filter { $0.path.hasPrefix(active.path) }
            if let last = drops.last {
                #expect(last.range.upperBound <= active.byteCount - SegmentWriter.cachedTail,
                        "dropped \(last.range) with the tail at \(active.byteCount)")
            }
        }
        let first = try #require(log.segments().first)
        #expect(fileSystem.cacheDrops.count >= 2, "16 MB written, 4 MiB steps: got \(fileSystem.cacheDrops.count) drops")
        // The next batch rolls to a new segment: the sealed one is dropped to its end.
        try await appendBatch()
        #expect(log.segments().count == 2)
        let drops = fileSystem.cacheDrops.filter { $0.path.hasPrefix(first.path) }
        let durable = drops.allSatisfy { $0.wasDurable }
        #expect(durable, "a drop covered bytes not yet synced")
        let aligned = drops.allSatisfy { $0.range.lowerBound % 4096 == 0 && $0.range.upperBound % 4096 == 0 }
        #expect(aligned, "a drop not on page boundaries")
        #expect(drops.first?.range.lowerBound == 0)
        let contiguous = zip(drops, drops.dropFirst()).allSatisfy { $0.range.upperBound == $1.range.lowerBound }
        #expect(contiguous, "drops are contiguous and never repeat a range")
        #expect((drops.last?.range.upperBound ?? 0) >= first.byteCount)
        #expect(try readAll(log).count == counter)
        try log.close()
    }

    @Test("recovery drops each sealed segment's pages once it has verified it, never the active one's")
    func recoveryDropsVerifiedSealedSegments() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem, segmentRecords: 10))
        for batch in 0..<3 { try await appendDurably(log, (batch * 10 + 1)...(batch * 10 + 10)) }
        try log.close()
        let before = fileSystem.cacheDrops.count
        let reopened = try KeeperLog.open(configuration(fileSystem, segmentRecords: 10))
        let segments = reopened.recovery.segments
        #expect(segments.count == 3)
        let drops = fileSystem.cacheDrops.dropFirst(before)
        for (index, segment) in segments.enumerated() {
            let mine = drops.filter { $0.path == segment.path }
            if index < segments.count - 1 {
                #expect(mine.count == 1 && mine.first?.range == 0..<segment.fileSize,
                        "sealed segment \(segment.path): \(mine.map(\.range))")
            } else {
                #expect(mine.isEmpty, "the active segment's pages were dropped at recovery")
            }
        }
        #expect(try readAll(reopened).map(\.zxid) == (1...30).map(zxid))
        try reopened.close()
    }

    @Test("after a truncation the drops go on from the new tail, still only durable pages")
    func dropsResumeAfterATruncation() async throws {
        let fileSystem = SimulatedLogFileSystem()
        let log = try KeeperLog.open(configuration(fileSystem, preallocation: 1 << 20))
        let body = [UInt8](repeating: 0x3C, count: 4_000)
        var counter = 0
        func append(_ records: Int) async throws {
            for _ in 0..<records {
                counter += 1
                try log.append(zxid: zxid(counter), payload: body)
            }
            try await log.waitUntilDurable(zxid(counter))
        }
        for _ in 0..<30 { try await append(100) }           // about 12 MB
        let dropsBefore = fileSystem.cacheDrops.count
        #expect(dropsBefore >= 1)
        try log.truncate(after: zxid(500))                    // back to about 2 MB
        counter = 500
        let tail = try #require(log.segments().last).byteCount
        for _ in 0..<30 { try await append(100) }
        let later = fileSystem.cacheDrops.dropFirst(dropsBefore)
        let first = try #require(later.first, "no drop after the truncation")
        #expect(first.range.lowerBound <= tail, "drops resumed at \(first.range.lowerBound), past the new tail \(tail)")
        let durable = later.allSatisfy { $0.wasDurable }
        #expect(durable, "a drop covered bytes not yet synced")
        #expect(try readAll(log).map(\.zxid) == (1...counter).map(zxid))
        try log.close()
    }
}
