// log-bench: the write-ahead log's fsync throughput and commit latency on a directory you
// name, next to the raw ceiling of that directory's disk measured the same way.
//
//   cd Benchmarks && swift run -c release log-bench --dir /path/on/the/target/disk
//
// See `log-bench --help` and README.md ("Benchmarks").
import ArgumentParser
import Foundation
import KeeperLog
import KeeperModel

#if canImport(Glibc)
import Glibc
#endif

@main
struct LogBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log-bench",
        abstract: "Measure KeeperLog's group-commit throughput and commit latency on a directory.",
        discussion: """
            Runs, in a fresh subdirectory of --dir (removed afterwards):
              1. throughput: for each record size x appender count, N appenders each keep one
                 record in flight (a new one the moment the previous is durable), on one
                 appending thread as in the server. Prints records/s, payload MB/s, records per
                 fdatasync, append-to-durable p50/p99/p99.9, and the raw ceiling: a plain
                 pwrite+fdatasync loop on the same directory writing the same payload bytes per
                 fdatasync into a file zero-filled in the same preallocation blocks. efficiency =
                 log MB/s / raw MB/s.
              2. commit latency (append-to-durable) at fixed offered loads (open loop), next to
                 the raw latency of one record per pwrite+fdatasync at the same rate.
            Each figure is the median of --runs runs (efficiency: the median of the per-run ratios). The default run takes about a minute;
            raise --seconds and --runs for steadier figures.
            """)

    @Option(help: "Directory on the disk to measure (a subdirectory is created and removed).")
    var dir: String

    @Option(help: "Record payload sizes in bytes, comma-separated.")
    var sizes: String = "64,256,4096,65536"

    @Option(help: "Concurrent appender counts, comma-separated.")
    var appenders: String = "1,4,16,64,256"

    @Option(help: "Measured seconds per throughput cell (after a warm-up).")
    var seconds: Double = 0.8

    @Option(help: "Runs per cell; figures are medians.")
    var runs: Int = 1

    @Option(help: "Offered loads (records/s) for the latency test, comma-separated.")
    var loads: String = "200,1000,5000"

    @Option(help: "Record size for the latency test.")
    var latencySize: Int = 256

    @Option(help: "Measured seconds per offered load.")
    var latencySeconds: Double = 2

    @Option(help: "Preallocation block in bytes (ZooKeeper's preAllocSize).")
    var preallocation: Int = 64 * 1024 * 1024

    @Option(help: "Warm-up seconds before each measurement.")
    var warmup: Double = 0.3

    func validate() throws {
        guard runs >= 1, seconds > 0, latencySeconds > 0, warmup >= 0 else {
            throw ValidationError("runs must be >= 1 and durations positive")
        }
        guard !parseList(sizes).isEmpty, !parseList(appenders).isEmpty else {
            throw ValidationError("--sizes and --appenders need at least one value")
        }
    }

    func run() throws {
        let root = dir + "/log-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        defer {
            do { try FileManager.default.removeItem(atPath: root) } catch {
                print("log-bench: could not remove \(root): \(error)")
            }
        }
        print("log-bench: directory \(dir), preallocation \(preallocation) B, \(seconds) s per cell, \(runs) run(s), medians")
        print("")
        print("== Throughput (closed loop: N appenders, one record in flight each)")
        print(pad("size", 7) + pad("appenders", 10) + pad("records/s", 12) + pad("MB/s", 9) + pad("rec/sync", 10)
              + pad("p50 ms", 9) + pad("p99 ms", 9) + pad("p99.9 ms", 10) + pad("raw MB/s", 10) + pad("efficiency", 10))
        var cells: [Cell] = []
        for size in parseList(sizes) {
            for count in parseList(appenders) {
                var results: [ThroughputResult] = []
                var raws: [RawResult] = []
                var ratios: [Double] = []
                for run in 0..<runs {
                    let result = try throughput(root: root + "/t\(size)-\(count)-\(run)", size: size, appenders: count)
                    let bytesPerSync = max(size, Int(result.payloadBytesPerSync.rounded()))
                    let raw = try rawLoop(path: root + "/raw", bytesPerSync: bytesPerSync, seconds: seconds)
                    results.append(result)
                    raws.append(raw)
                    ratios.append(result.megabytesPerSecond / raw.megabytesPerSecond)
                }
                let cell = Cell(size: size, appenders: count, log: ThroughputResult.median(results), raw: RawResult.median(raws),
                                efficiency: middle(ratios))
                cells.append(cell)
                let log = cell.log
                print(pad("\(size)", 7) + pad("\(count)", 10) + pad(fmt(log.recordsPerSecond, 0), 12)
                      + pad(fmt(log.megabytesPerSecond, 1), 9) + pad(fmt(log.recordsPerSync, 1), 10)
                      + pad(ms(log.p50), 9) + pad(ms(log.p99), 9) + pad(ms(log.p999), 10)
                      + pad(fmt(cell.raw.megabytesPerSecond, 1), 10) + pad(fmt(cell.efficiency, 2), 10))
            }
        }

        print("")
        print("== Commit latency, \(latencySize) B records (open loop at fixed rates, append-to-durable;")
        print("   raw = pwrite + fdatasync of one record at the same rate, measured just before each run)")
        print(pad("offered/s", 11) + pad("achieved/s", 12) + pad("rec/sync", 10) + pad("p50 ms", 9) + pad("p99 ms", 9)
              + pad("p99.9 ms", 10) + pad("raw p50 ms", 12) + pad("p50/raw p50", 12))
        var lowLoad: (log: ThroughputResult, raw: RawResult)?
        for load in parseList(loads) {
            // The raw loop runs right before each log run, so both see the same disk weather.
            var results: [ThroughputResult] = []
            var raws: [RawResult] = []
            for run in 0..<runs {
                raws.append(try rawLoop(path: root + "/raw", bytesPerSync: latencySize, seconds: latencySeconds, rate: load))
                results.append(try openLoop(root: root + "/l\(load)-\(run)", size: latencySize, rate: load))
            }
            let result = ThroughputResult.median(results)
            let raw = RawResult.median(raws)
            if lowLoad == nil { lowLoad = (result, raw) }
            print(pad("\(load)", 11) + pad(fmt(result.recordsPerSecond, 0), 12) + pad(fmt(result.recordsPerSync, 1), 10)
                  + pad(ms(result.p50), 9) + pad(ms(result.p99), 9) + pad(ms(result.p999), 10)
                  + pad(ms(raw.p50), 12) + pad(fmt(Double(result.p50) / Double(raw.p50), 2), 12))
        }
        if let saturated = cells.filter({ $0.size == latencySize }).max(by: { $0.appenders < $1.appenders }) {
            print("saturation (\(saturated.size) B, \(saturated.appenders) appenders): p50 \(ms(saturated.log.p50)) ms, p99 \(ms(saturated.log.p99)) ms, p99.9 \(ms(saturated.log.p999)) ms")
        }

        print("")
        print("== Targets")
        if let cell = cells.filter({ $0.size == 4096 }).max(by: { $0.appenders < $1.appenders }) {
            let ratio = cell.efficiency
            print("4 KiB at \(cell.appenders) appenders: \(fmt(ratio * 100, 0))% of the raw loop's MB/s (target >= 90%): \(ratio >= 0.9 ? "met" : "NOT met")")
        }
        if let cell = cells.filter({ $0.appenders == 256 }).max(by: { $0.log.recordsPerSync < $1.log.recordsPerSync }) {
            let perSync = cells.filter { $0.appenders == 256 }.map(\.log.recordsPerSync)
            print("records per fdatasync at 256 appenders: \(perSync.map { fmt($0, 0) }.joined(separator: ", ")) (target >= 50): \(perSync.min()! >= 50 ? "met" : "NOT met") [best \(fmt(cell.log.recordsPerSync, 0))]")
        }
        if let lowLoad {
            let ratio = Double(lowLoad.log.p50) / Double(lowLoad.raw.p50)
            print("commit p50 at the lowest load: \(fmt(ratio, 2))x one raw fdatasync (target <= 1.5x): \(ratio <= 1.5 ? "met" : "NOT met")")
        }
    }

    // MARK: Log measurements

    func logConfiguration(_ directory: String) -> LogConfiguration {
        LogConfiguration(directory: directory, preallocationSize: preallocation)
    }

    /// N appenders in a closed loop, on one appending thread.
    func throughput(root: String, size: Int, appenders: Int) throws -> ThroughputResult {
        let driver = Driver(size: size)
        let log = try KeeperLog.open(logConfiguration(root)) { event in driver.handle(event) }
        driver.log = log
        let appender = Thread { driver.closedLoop(outstanding: appenders) }
        appender.start()
        return try driver.measure(warmup: warmup, seconds: seconds, log: log, root: root)
    }

    /// Records at a fixed rate; latency from each append call to its durability event.
    func openLoop(root: String, size: Int, rate: Int) throws -> ThroughputResult {
        let driver = Driver(size: size)
        let log = try KeeperLog.open(logConfiguration(root)) { event in driver.handle(event) }
        driver.log = log
        let pacer = Thread { driver.openLoop(rate: rate) }
        pacer.start()
        return try driver.measure(warmup: warmup, seconds: latencySeconds, log: log, root: root)
    }

    // MARK: The raw ceiling

    /// A plain loop: pwrite `bytesPerSync` bytes, fdatasync, repeat, into a file zero-filled in
    /// the same preallocation blocks as the log (the zero-filling is timed, as in the log).
    func rawLoop(path: String, bytesPerSync: Int, seconds: Double, rate: Int? = nil) throws -> RawResult {
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BenchError.system("open \(path)", errno) }
        defer {
            if close(fd) != 0 || unlink(path) != 0 { print("log-bench: cleanup of \(path) failed: errno \(errno)") }
        }
        let buffer = [UInt8]((0..<bytesPerSync).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) })
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        var allocated = 0
        var offset = 0
        var latencies: [UInt64] = []
        var bytes = 0
        var syncs = 0
        let start = now()
        let measureFrom = start + UInt64(warmup * 1e9)
        let end = measureFrom + UInt64(seconds * 1e9)
        var index: UInt64 = 0
        while true {
            if let rate {
                // Paced like the log's open loop, so both see the same idle gaps.
                sleep(until: start + UInt64(Double(index) * 1e9 / Double(rate)))
                index += 1
            }
            let before = now()
            if before >= end { break }
            if offset + bytesPerSync > allocated {
                let target = (offset + bytesPerSync + preallocation - 1) / preallocation * preallocation
                while allocated < target {
                    let n = min(zeros.count, target - allocated)
                    guard zeros.withUnsafeBytes({ pwrite(fd, $0.baseAddress, n, off_t(allocated)) }) == n else {
                        throw BenchError.system("pwrite zeros", errno)
                    }
                    allocated += n
                }
            }
            guard buffer.withUnsafeBytes({ pwrite(fd, $0.baseAddress, bytesPerSync, off_t(offset)) }) == bytesPerSync else {
                throw BenchError.system("pwrite", errno)
            }
            guard fdatasync(fd) == 0 else { throw BenchError.system("fdatasync", errno) }
            let after = now()
            offset += bytesPerSync
            if before >= measureFrom {
                latencies.append(after - before)
                bytes += bytesPerSync
                syncs += 1
            }
        }
        let elapsed = Double(end - measureFrom) / 1e9
        latencies.sort()
        return RawResult(megabytesPerSecond: Double(bytes) / elapsed / 1e6, syncsPerSecond: Double(syncs) / elapsed,
                         p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), p999: percentile(latencies, 0.999))
    }
}

// MARK: - The driver

/// Feeds a log and collects what its durability events say.
///
/// `@unchecked Sendable`: every mutable property is touched only with `condition` locked,
/// except `sendTimes`, whose slot for a zxid is written by the appending thread before it
/// appends that zxid and read by the log's writer thread after the record is durable: the
/// log's own mutex (taken by `append` and by the writer when it takes the batch) orders the
/// write before the read. The ring holds far more slots than records in flight.
final class Driver: @unchecked Sendable {
    let condition = NSCondition()
    let payload: [UInt8]
    var log: KeeperLog?
    static let ring = 1 << 16
    let sendTimes = UnsafeMutablePointer<UInt64>.allocate(capacity: Driver.ring)
    var toReplace = 0
    var stopped = false
    var measuring = false
    var lastDurable: UInt32 = 0
    var lastAppended: UInt32 = 0
    var latencies: [UInt64] = []
    var durableRecords = 0
    var syncs = 0
    var failure: KeeperLogError?
    var running = 0

    init(size: Int) {
        payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 11) }
        latencies.reserveCapacity(1 << 20)
    }

    deinit { sendTimes.deallocate() }

    func handle(_ event: LogEvent) {
        let time = now()
        condition.lock()
        defer { condition.unlock() }
        switch event {
        case .durable(let zxid):
            let counter = zxid.counter
            guard counter > lastDurable else { return }
            if measuring {
                var next = lastDurable + 1
                while next <= counter {
                    latencies.append(time &- sendTimes[Int(next) & (Driver.ring - 1)])
                    next += 1
                }
                durableRecords += Int(counter - lastDurable)
                syncs += 1
            }
            toReplace += Int(counter - lastDurable)
            lastDurable = counter
            condition.broadcast()
        case .failed(_, let error):
            failure = error
            stopped = true
            condition.broadcast()
        }
    }

    private func append() -> Bool {
        lastAppended += 1
        let counter = lastAppended
        sendTimes[Int(counter) & (Driver.ring - 1)] = now()
        do {
            try log!.append(zxid: Zxid(epoch: 1, counter: counter), payload: payload)
            return true
        } catch {
            condition.lock()
            failure = error as? KeeperLogError
            stopped = true
            condition.broadcast()
            condition.unlock()
            return false
        }
    }

    /// The appending thread of a closed loop: keep `outstanding` records in flight.
    func closedLoop(outstanding: Int) {
        condition.lock()
        running += 1
        toReplace = outstanding
        while true {
            while toReplace == 0 && !stopped { condition.wait() }
            if stopped { break }
            let count = toReplace
            toReplace = 0
            condition.unlock()
            for _ in 0..<count where append() {}
            condition.lock()
        }
        running -= 1
        condition.broadcast()
        condition.unlock()
    }

    /// The pacing thread of an open loop: one record every 1/rate seconds, on schedule.
    func openLoop(rate: Int) {
        condition.lock()
        running += 1
        condition.unlock()
        let interval = 1e9 / Double(rate)
        let start = now()
        var index: UInt64 = 0
        while true {
            condition.lock()
            let stop = stopped
            condition.unlock()
            if stop { break }
            let scheduled = start + UInt64(Double(index) * interval)
            sleep(until: scheduled)
            lastAppended += 1
            let counter = lastAppended
            // Append-to-durable: from the append call (the pacer's own timer slack is not the log's).
            sendTimes[Int(counter) & (Driver.ring - 1)] = now()
            do {
                try log!.append(zxid: Zxid(epoch: 1, counter: counter), payload: payload)
            } catch {
                condition.lock()
                failure = error as? KeeperLogError
                stopped = true
                condition.unlock()
                break
            }
            index += 1
        }
        condition.lock()
        running -= 1
        condition.broadcast()
        condition.unlock()
    }

    func measure(warmup: Double, seconds: Double, log: KeeperLog, root: String) throws -> ThroughputResult {
        sleep(until: now() + UInt64(warmup * 1e9))
        condition.lock()
        measuring = true
        condition.unlock()
        let start = now()
        sleep(until: start + UInt64(seconds * 1e9))
        condition.lock()
        measuring = false
        let elapsed = Double(now() - start) / 1e9
        stopped = true
        condition.broadcast()
        while running > 0 { condition.wait() }
        var sorted = latencies
        let records = durableRecords
        let syncCount = syncs
        let failure = failure
        condition.unlock()
        try log.close()
        try FileManager.default.removeItem(atPath: root)
        if let failure { throw failure }
        sorted.sort()
        return ThroughputResult(
            recordsPerSecond: Double(records) / elapsed,
            megabytesPerSecond: Double(records * payload.count) / elapsed / 1e6,
            recordsPerSync: syncCount == 0 ? 0 : Double(records) / Double(syncCount),
            payloadBytesPerSync: syncCount == 0 ? 0 : Double(records * payload.count) / Double(syncCount),
            p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), p999: percentile(sorted, 0.999))
    }
}

// MARK: - Results and helpers

struct ThroughputResult {
    var recordsPerSecond: Double
    var megabytesPerSecond: Double
    var recordsPerSync: Double
    var payloadBytesPerSync: Double
    var p50: UInt64
    var p99: UInt64
    var p999: UInt64

    static func median(_ results: [ThroughputResult]) -> ThroughputResult {
        ThroughputResult(
            recordsPerSecond: middle(results.map(\.recordsPerSecond)),
            megabytesPerSecond: middle(results.map(\.megabytesPerSecond)),
            recordsPerSync: middle(results.map(\.recordsPerSync)),
            payloadBytesPerSync: middle(results.map(\.payloadBytesPerSync)),
            p50: middle(results.map(\.p50)), p99: middle(results.map(\.p99)), p999: middle(results.map(\.p999)))
    }
}

struct RawResult {
    var megabytesPerSecond: Double
    var syncsPerSecond: Double
    var p50: UInt64
    var p99: UInt64
    var p999: UInt64

    static func median(_ results: [RawResult]) -> RawResult {
        RawResult(
            megabytesPerSecond: middle(results.map(\.megabytesPerSecond)),
            syncsPerSecond: middle(results.map(\.syncsPerSecond)),
            p50: middle(results.map(\.p50)), p99: middle(results.map(\.p99)), p999: middle(results.map(\.p999)))
    }
}

struct Cell {
    var size: Int
    var appenders: Int
    var log: ThroughputResult
    var raw: RawResult
    /// The median over runs of log MB/s / raw MB/s, each pair measured back to back.
    var efficiency: Double
}

enum BenchError: Error, CustomStringConvertible {
    case system(String, Int32)
    var description: String {
        switch self {
        case .system(let what, let code): "\(what) failed: \(String(cString: strerror(code))) (errno \(code))"
        }
    }
}

func middle<T: Comparable>(_ values: [T]) -> T { values.sorted()[values.count / 2] }

func percentile(_ sorted: [UInt64], _ fraction: Double) -> UInt64 {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
}

func now() -> UInt64 {
    var time = timespec()
    let rc = clock_gettime(CLOCK_MONOTONIC, &time)
    precondition(rc == 0, "clock_gettime failed: errno \(errno)")
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

func sleep(until deadline: UInt64) {
    var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
    while true {
        let rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &time, nil)
        if rc == 0 { return }
        precondition(rc == EINTR, "clock_nanosleep failed: \(rc)")
    }
}

func parseList(_ text: String) -> [Int] { text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count) }
func fmt(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
func ms(_ nanoseconds: UInt64) -> String { String(format: "%.3f", Double(nanoseconds) / 1e6) }
