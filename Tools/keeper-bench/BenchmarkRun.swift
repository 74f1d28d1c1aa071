import Foundation
import KeeperModel
import NIOCore
import NIOPosix

/// Every limit of keeper-bench, named, in one place.
enum BenchLimits {
    /// Sessions per run. ZooKeeper refuses more than maxClientCnxns (default 60) connections
    /// from one address; the tool allows more for servers configured otherwise.
    static let maxSessions = 1_000
    /// Requests in flight per session (ZooKeeper's globalOutstandingLimit defaults to 1,000).
    static let maxOutstanding = 10_000
    /// Prepared keys for set/get/mixed.
    static let maxKeys = 1_000_000
    /// The largest value: jute.maxbuffer less room for the request's header and path.
    static let maxValueSize = Limits.default.maxBuffer - 4_096
    /// The longest measured duration and warm-up, in seconds.
    static let maxDurationSeconds = 3_600.0
    /// Runs per target.
    static let maxRounds = 100
    /// Event loop threads.
    static let maxThreads = 256
    /// Requests per session per run (xids are 31-bit and never wrap within a session).
    static let maxRequestsPerSession = 1_000_000_000
    /// The highest offered rate (requests per second, all sessions together).
    static let maxRate = 10_000_000.0
    /// The open loop's timer fires at most this often per session (nanoseconds): requests due
    /// closer together than that leave in one write, each timed from its own due moment.
    static let minimumTick: UInt64 = 50_000
    /// Requests in flight per session while preparing and cleaning up.
    static let setupOutstanding = 64
    /// Sessions opened to clean up when the run's own sessions are gone.
    static let cleanupSessions = 4
}

/// What to run: the same for every target of a comparison.
struct RunConfiguration: Sendable, Codable {
    var workload: Workload
    /// Share of getData in a mixed run (0...1).
    var readRatio: Double
    var valueSize: Int
    var sessions: Int
    /// Requests in flight per session: the window of the closed loop, the cap of the open one.
    var outstanding: Int
    /// Open loop: requests per second offered by all sessions together; nil: closed loop.
    var ratePerSecond: Double?
    var durationSeconds: Double
    var warmupSeconds: Double
    var keys: Int
    var maxRequestsPerSession: Int
    var seed: UInt64
    var sessionTimeoutMs: Int32
    var replyTimeoutSeconds: Double
    var connectTimeoutSeconds: Double
}

/// Latency figures in milliseconds.
struct LatencySummary: Sendable, Codable {
    var count: UInt64
    var minMs: Double
    var meanMs: Double
    var p50Ms: Double
    var p99Ms: Double
    var p999Ms: Double
    var maxMs: Double

    init?(_ histogram: LatencyHistogram) {
        guard histogram.totalCount > 0, let mean = histogram.mean else { return nil }
        func ms(_ percentile: Double) -> Double {
            Double(histogram.value(atPercentile: percentile) ?? 0) / 1_000_000
        }
        count = histogram.totalCount
        minMs = Double(histogram.minValue) / 1_000_000
        meanMs = mean / 1_000_000
        p50Ms = ms(50)
        p99Ms = ms(99)
        p999Ms = ms(99.9)
        maxMs = Double(histogram.maxValue) / 1_000_000
    }
}

/// What one run against one host list measured.
struct RunResult: Sendable, Codable {
    var hosts: String
    var basePath: String
    var measuredSeconds: Double
    /// Open loop: the rate offered (requests per second); `opsPerSecond` below it means the
    /// server did not keep up and requests queued.
    var offeredPerSecond: Double?
    /// Replies received in the measured window.
    var operations: Int
    var opsPerSecond: Double
    var latency: LatencySummary?
    /// Mixed runs only: reads and writes apart.
    var readLatency: LatencySummary?
    var writeLatency: LatencySummary?
    /// Error replies by ZooKeeper's name for the code ("NONODE(-101)").
    var errors: [String: Int]
    var requestsSent: Int
    var repliesReceived: Int
    var negotiatedSessionTimeoutMs: Int32
}

/// One run against one host list: connect the sessions, prepare the znodes, run the workload
/// with a warm-up, clean up, close the sessions.
struct BenchmarkRun {
    let configuration: RunConfiguration
    let hosts: HostList
    let group: any EventLoopGroup
    /// The run's own subtree, removed at the end.
    let basePath: String
    /// Progress lines (stderr), so stdout carries only results.
    let log: @Sendable (String) -> Void
    /// Ctrl-C: stops the run's sessions, which then clean up.
    let interrupts: InterruptSwitch

    private var config: RunConfiguration { configuration }

    func run() async throws -> RunResult {
        let addresses = try resolve()
        let sessions = try await openSessions(count: config.sessions, addresses: addresses)
        interrupts.register(sessions)
        defer { interrupts.unregister(sessions) }
        var createdBase = false
        do {
            try await createBase(using: sessions[0])
            createdBase = true
            let keys = config.workload.needsKeys ? (0..<config.keys).map { "\(basePath)/k\($0)" } : []
            if !keys.isEmpty {
                log("preparing \(keys.count) keys of \(config.valueSize) B under \(basePath)")
                try await runEverywhere(sessions, phase: Self.preparingKeys, tolerate: nil) { index in
                    .createAll(Self.share(of: keys, for: index, among: sessions.count))
                }
                if hosts.servers.count > 1 {
                    // Keys were created through several servers of an ensemble; a follower may
                    // not have applied them all yet (reads are only sequentially consistent).
                    // A sync makes each session's server catch up before the run reads them.
                    let basePath = self.basePath
                    try await runEverywhere(sessions, phase: Self.preparingKeys, tolerate: nil) { _ in
                        .syncAll([basePath])
                    }
                }
            }
            if interrupts.isInterrupted { throw BenchError.interrupted }
            log("running \(config.workload.operationName) for \(format(config.durationSeconds)) s "
                + "after \(format(config.warmupSeconds)) s of warm-up")
            let outcomes = try await measure(sessions, keys: keys)
            let result = summarize(outcomes, sessions: sessions)
            try await cleanUp(sessions, keys: keys)
            try await closeAll(sessions)
            // Cleaned up and closed: an interrupt now only means the figures are not whole.
            guard !interrupts.isInterrupted else { throw InterruptedAfterCleanup() }
            return result
        } catch is InterruptedAfterCleanup {
            throw BenchError.interrupted
        } catch {
            if createdBase { await cleanUpAfterFailure(sessions, addresses: addresses) }
            await closeQuietly(sessions)
            throw error
        }
    }

    /// Thrown past the cleanup of an interrupted run, which has already happened.
    private struct InterruptedAfterCleanup: Error {}

    // MARK: Phases

    private func resolve() throws -> [SocketAddress] {
        try hosts.servers.map { server in
            do {
                return try SocketAddress.makeAddressResolvingHost(server.host, port: server.port)
            } catch {
                throw BenchError.connectFailed(server, session: 0, underlying: "cannot resolve the host: \(error)")
            }
        }
    }

    private func openSessions(count: Int, addresses: [SocketAddress]) async throws -> [Session] {
        let capacity = max(config.outstanding, BenchLimits.setupOutstanding)
        let config = self.config
        let hosts = self.hosts
        let group = self.group
        return try await withThrowingTaskGroup(of: Session.self) { tasks in
            for index in 0..<count {
                tasks.addTask {
                    try await Session.open(
                        index: index, server: hosts.server(forSession: index),
                        address: addresses[index % addresses.count], group: group, capacity: capacity,
                        requestedTimeout: config.sessionTimeoutMs,
                        connectTimeout: .nanoseconds(Int64(config.connectTimeoutSeconds * 1e9)))
                }
            }
            var opened: [Session] = []
            do {
                for try await session in tasks { opened.append(session) }
            } catch {
                // Close what did open; report the first failure.
                tasks.cancelAll()
                while let next = await tasks.nextResult() {
                    if case .success(let session) = next { opened.append(session) }
                }
                await closeQuietly(opened)
                throw error
            }
            return opened.sorted { $0.index < $1.index }
        }
    }

    private func createBase(using session: Session) async throws {
        do {
            _ = try await session.run(listJob(.createAll([basePath]), phase: "creating the base path", tolerate: nil))
        } catch BenchError.errorReply(_, _, _, _, let code) where code == KeeperErrorCode.nodeExists.rawValue {
            throw BenchError.basePathExists(basePath, hosts)
        }
    }

    /// The measured part: every session starts at once and stops on the same clock.
    private func measure(_ sessions: [Session], keys: [String]) async throws -> [JobOutcome] {
        let start = NIODeadline.now()
        let measureFrom = start + .nanoseconds(Int64(config.warmupSeconds * 1e9))
        let measureUntil = measureFrom + .nanoseconds(Int64(config.durationSeconds * 1e9))
        let value = Self.value(size: config.valueSize)
        let config = self.config
        let basePath = self.basePath
        return try await withThrowingTaskGroup(of: (Int, JobOutcome).self) { tasks in
            for session in sessions {
                let index = session.index
                let plan = RequestSource.Plan.workload(
                    config.workload, keys: keys, cursor: keys.isEmpty ? 0 : index * keys.count / sessions.count,
                    createPrefix: "\(basePath)/s\(index)-", readRatio: config.readRatio,
                    random: SplitMix64(seed: config.seed &+ UInt64(index)))
                var job = Job(
                    source: RequestSource(plan, value: value), outstanding: config.outstanding,
                    measureFrom: measureFrom, measureUntil: measureUntil, stopAt: measureUntil,
                    maxRequests: config.maxRequestsPerSession,
                    replyTimeout: .nanoseconds(Int64(config.replyTimeoutSeconds * 1e9)), phase: "the measured run",
                    errorPolicy: .count, interruptible: true)
                if let rate = config.ratePerSecond {
                    // Session i's requests are due every sessions/rate seconds, the sessions
                    // staggered by 1/rate, so the whole offered load is evenly spaced.
                    job.openLoop = Job.OpenLoop(
                        interval: 1e9 * Double(sessions.count) / rate,
                        firstDue: start.uptimeNanoseconds + UInt64(1e9 * Double(index) / rate))
                }
                tasks.addTask { (index, try await session.run(job)) }
            }
            var outcomes = [JobOutcome?](repeating: nil, count: sessions.count)
            for try await (index, outcome) in tasks { outcomes[index] = outcome }
            return outcomes.map { $0! }  // every task either returned or threw
        }
    }

    private func summarize(_ outcomes: [JobOutcome], sessions: [Session]) -> RunResult {
        var all = LatencyHistogram()
        var reads = LatencyHistogram()
        var writes = LatencyHistogram()
        var errors: [String: Int] = [:]
        var measured = 0
        var sent = 0
        var completed = 0
        for outcome in outcomes {
            all.merge(outcome.latency)
            reads.merge(outcome.readLatency)
            writes.merge(outcome.writeLatency)
            measured += outcome.measured
            sent += outcome.sent
            completed += outcome.completed
            for (code, count) in outcome.errorCounts {
                errors["\(BenchError.name(of: code))(\(code))", default: 0] += count
            }
        }
        let mixed = config.workload == .mixed
        return RunResult(
            hosts: hosts.description, basePath: basePath, measuredSeconds: config.durationSeconds,
            offeredPerSecond: config.ratePerSecond,
            operations: measured, opsPerSecond: Double(measured) / config.durationSeconds,
            latency: LatencySummary(all), readLatency: mixed ? LatencySummary(reads) : nil,
            writeLatency: mixed ? LatencySummary(writes) : nil, errors: errors, requestsSent: sent,
            repliesReceived: completed, negotiatedSessionTimeoutMs: sessions.map(\.negotiatedTimeout).min() ?? 0)
    }

    /// Deletes everything the run created: created znodes, keys, then the base path. A znode
    /// already gone (NoNode) is fine: a create that failed left nothing behind.
    private func cleanUp(_ sessions: [Session], keys: [String]) async throws {
        var created: [String] = []
        if config.workload == .create {
            for session in sessions {
                let sent = try await session.lastJobSent()
                created.append(contentsOf: (0..<sent).lazy.map { "\(basePath)/s\(session.index)-\($0)" })
            }
        }
        let doomed = created + keys
        log("cleaning up \(doomed.count + 1) znodes under \(basePath)")
        try await runEverywhere(sessions, phase: "cleaning up", tolerate: .noNode) { index in
            .deleteAll(Self.share(of: doomed, for: index, among: sessions.count))
        }
        _ = try await sessions[0].run(listJob(.deleteAll([basePath]), phase: "cleaning up", tolerate: .noNode))
    }

    /// After a failure: clean up with the run's sessions, or with fresh ones if those are gone;
    /// say what was left behind if neither works.
    private func cleanUpAfterFailure(_ sessions: [Session], addresses: [SocketAddress]) async {
        let keys = config.workload.needsKeys ? (0..<config.keys).map { "\(basePath)/k\($0)" } : []
        do {
            try await cleanUp(sessions, keys: keys)
            return
        } catch {
            log("cleanup with the run's sessions failed (\(error)); trying fresh sessions")
        }
        do {
            // The create workload's names depend on the old sessions' counts: read them first.
            var created: [String] = []
            if config.workload == .create {
                for session in sessions {
                    let sent = try await session.lastJobSent()
                    created.append(contentsOf: (0..<sent).lazy.map { "\(basePath)/s\(session.index)-\($0)" })
                }
            }
            let fresh = try await openSessions(count: BenchLimits.cleanupSessions, addresses: addresses)
            let doomed = created + keys
            do {
                try await runEverywhere(fresh, phase: "cleaning up", tolerate: .noNode) { index in
                    .deleteAll(Self.share(of: doomed, for: index, among: fresh.count))
                }
                _ = try await fresh[0].run(listJob(.deleteAll([basePath]), phase: "cleaning up", tolerate: .noNode))
            } catch {
                await closeQuietly(fresh)
                throw error
            }
            await closeQuietly(fresh)
        } catch {
            log("could not clean up (\(error)): remove \(basePath) on \(hosts) yourself (zkCli.sh deleteall \(basePath))")
        }
    }

    private func closeAll(_ sessions: [Session]) async throws {
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for session in sessions { tasks.addTask { try await session.close(timeout: .seconds(5)) } }
            try await tasks.waitForAll()
        }
    }

    private func closeQuietly(_ sessions: [Session]) async {
        for session in sessions {
            do {
                try await session.close(timeout: .seconds(5))
            } catch {
                log("session \(session.index): closing failed: \(error)")
            }
        }
    }

    // MARK: Helpers

    /// The one list phase an interrupt cuts short (cleaning up must run to its end).
    static let preparingKeys = "preparing keys"

    /// Runs a finite list job on every session at once (`plan(index)` gives each its share).
    private func runEverywhere(
        _ sessions: [Session], phase: String, tolerate: KeeperErrorCode?,
        plan: @Sendable (Int) -> RequestSource.Plan
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for session in sessions {
                let job = listJob(plan(session.index), phase: phase, tolerate: tolerate)
                tasks.addTask { _ = try await session.run(job) }
            }
            try await tasks.waitForAll()
        }
    }

    private func listJob(_ plan: RequestSource.Plan, phase: String, tolerate: KeeperErrorCode?) -> Job {
        Job(
            source: RequestSource(plan, value: Self.value(size: config.valueSize)),
            outstanding: BenchLimits.setupOutstanding,
            measureFrom: .distantFuture, measureUntil: .distantFuture, stopAt: .distantFuture,
            maxRequests: .max, replyTimeout: .nanoseconds(Int64(config.replyTimeoutSeconds * 1e9)), phase: phase,
            errorPolicy: .fail(except: tolerate), interruptible: phase == Self.preparingKeys)
    }

    /// The `index`th of `count` interleaved shares of `items`.
    static func share(of items: [String], for index: Int, among count: Int) -> [String] {
        Array(stride(from: index, to: items.count, by: count).lazy.map { items[$0] })
    }

    /// A value of `size` bytes: a repeating printable pattern, so a dump of it is readable.
    static func value(size: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(size)
        for index in 0..<size { buffer.writeInteger(UInt8(ascii: "a") + UInt8(index % 26)) }
        return buffer
    }

    private func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(format: "%.1f", seconds)
    }
}
