import KeeperModel
import Testing

@testable import KeeperLog

#if canImport(Glibc)
import Glibc
#endif

let logDirectory = "/data/log"

func zxid(_ counter: Int) -> Zxid { Zxid(epoch: 1, counter: UInt32(counter)) }

/// The payload the tests write for a zxid: its length and bytes derive from the zxid and a
/// tag, so a read-back proves the record is the one written (never 0xFF, never all zero).
func payload(_ counter: Int, tag: UInt8 = 1, length: Int? = nil) -> [UInt8] {
    let count = length ?? (counter * 37 % 300 + 1)
    return (0..<count).map { UInt8(truncatingIfNeeded: (counter &* 31 &+ $0 &* 7 &+ Int(tag)) % 200 + 17) }
}

func configuration(_ fileSystem: any LogFileSystem, directory: String = logDirectory,
                   preallocation: Int = 64 * 1024, segmentRecords: Int = 100_000,
                   databaseID: UInt64 = 7, maxPendingBytes: Int = 64 << 20) -> LogConfiguration {
    LogConfiguration(directory: directory, databaseID: databaseID, preallocationSize: preallocation,
                     segmentMaxRecords: segmentRecords, maxPendingBytes: maxPendingBytes, fileSystem: fileSystem)
}

func readAll(_ log: KeeperLog, from start: Zxid = .zero) throws -> [LogRecord] {
    let reader = log.read(from: start)
    var records: [LogRecord] = []
    while let record = try reader.next() { records.append(record) }
    return records
}

/// Every record a fresh open of the log on `fileSystem` finds (the log is closed again).
func recordsAfterReopen(_ fileSystem: any LogFileSystem) throws -> [LogRecord] {
    let reopened = try KeeperLog.open(configuration(fileSystem))
    defer { #expect(throws: Never.self) { try reopened.close() } }
    return try readAll(reopened)
}

/// Crashes `fileSystem`, closes `log`, and checks that a fresh open finds exactly the records
/// 1...`last` with their standard payloads: nothing acknowledged lost, no failed batch's record
/// (written with another tag) resurfaced.
func expectStandardRecordsAfterCrash(
    _ log: KeeperLog, _ fileSystem: SimulatedLogFileSystem, through last: Int,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    fileSystem.crash()
    try log.close()
    let records = try recordsAfterReopen(fileSystem)
    #expect(records.map(\.zxid) == (1...last).map(zxid), sourceLocation: sourceLocation)
    #expect(records.allSatisfy { $0.payload == payload(Int($0.zxid.counter)) }, "a failed batch's record resurfaced",
            sourceLocation: sourceLocation)
}

/// Appends `counters` with their standard payloads and waits until the last is durable.
func appendDurably(_ log: KeeperLog, _ counters: ClosedRange<Int>, tag: UInt8 = 1) async throws {
    for counter in counters { try log.append(zxid: zxid(counter), payload: payload(counter, tag: tag)) }
    try await log.waitUntilDurable(zxid(counters.upperBound))
}

/// A seeded generator (SplitMix64) so a failing case replays from its printed seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Collects the log's events, thread-safely, for assertions.
final class EventRecorder: @unchecked Sendable {
    // Safety: `events` is only touched with `lock` held.
    private let lock = LogMutex()
    private var events: [LogEvent] = []
    func record(_ event: LogEvent) { lock.withLock { events.append(event) } }
    var all: [LogEvent] { lock.withLock { events } }
    var failures: [(ClosedRange<Zxid>, KeeperLogError)] {
        all.compactMap { if case .failed(let range, let error) = $0 { (range, error) } else { nil } }
    }
}
