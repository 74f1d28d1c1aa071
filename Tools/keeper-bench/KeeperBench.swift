import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// `keeper-bench`: a load generator that speaks ZooKeeper's client wire protocol, so the same
/// workload measures SwiftKeeper, Apache ZooKeeper or any compatible server, and `--compare`
/// puts two of them side by side on the same machine.
@main
struct KeeperBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keeper-bench",
        abstract: "Load a ZooKeeper-protocol server with pipelined sessions and report ops/s and latency.",
        discussion: """
            Each session is one TCP connection with up to --outstanding requests in flight.
            A run creates its znodes under /keeper-bench-<pid>-<n> and removes them after.
            Latency is measured per request with a monotonic clock, from the write of the
            request to the arrival of its reply; ops/s counts replies within --duration.

            By default the load is a closed loop: each reply lets the session send the next
            request. With --rate the load is an open loop: requests are due at a fixed rate
            whatever the replies (the offered load is the same for every server), at most
            --outstanding per session are in flight, and latency runs from the moment a
            request was due, so time spent waiting behind a slow server counts.

            Examples:
              keeper-bench --hosts 127.0.0.1:2181 --workload set
              keeper-bench --hosts 127.0.0.1:2181 --serial
              keeper-bench --hosts 127.0.0.1:2181 --rate 20000 --sessions 8 --outstanding 256
              keeper-bench --compare 127.0.0.1:2181 127.0.0.1:2281 --json out.json

            Exit status: 0 done; 1 a run failed (unreachable server, error reply while
            preparing or cleaning up, protocol violation, no reply); 2 error replies
            during a measured run; 64 bad arguments.
            """)

    @Option(name: .long, help: "Servers to load: host:port[,host:port...]; sessions take them in turn.")
    var hosts = "127.0.0.1:2181"

    @Option(
        name: .long, parsing: .upToNextOption,
        help: "Two host lists A B: run the same workload on each in alternation and print B/A ratios.")
    var compare: [String] = []

    @Option(name: .long, help: "create, set, get or mixed.")
    var workload: Workload = .set

    @Option(name: .long, help: "Share of getData requests in the mixed workload (0...1).")
    var readRatio = 0.9

    @Option(name: .long, help: "Bytes of data per create and setData (and of every prepared key).")
    var valueSize = 100

    @Option(name: .long, help: "Sessions (connections).")
    var sessions = 8

    @Option(name: .long, help: "Requests in flight per session.")
    var outstanding = 64

    @Flag(name: .long, help: "Serial latency: 1 session x 1 request in flight (overrides --sessions/--outstanding).")
    var serial = false

    @Option(name: .long, help: "Open loop: offer this many requests per second in total, spread evenly over the sessions.")
    var rate: Double?

    @Option(name: .long, help: "Measured seconds per run.")
    var duration = 10.0

    @Option(name: .long, help: "Seconds of load before measuring starts.")
    var warmup = 2.0

    @Option(name: .long, help: "Znodes that set/get/mixed read and write, prepared before the run.")
    var keys = 1_000

    @Option(name: .long, help: "Runs per target (default: 1, or 3 with --compare); medians are reported.")
    var rounds: Int?

    @Option(name: .long, help: "Stop a session after this many requests even before --duration ends (ops/s still divides by --duration).")
    var maxRequests = BenchLimits.maxRequestsPerSession

    @Option(name: .long, help: "Seed of the mixed workload's read/write choice (each session adds its index).")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Event loop threads (default: one per core).")
    var threads: Int?

    @Option(name: .long, help: "Session timeout to ask for, in milliseconds.")
    var sessionTimeout: Int32 = 30_000

    @Option(name: .long, help: "Seconds to wait for a reply while requests are in flight before giving up.")
    var replyTimeout = 30.0

    @Option(name: .long, help: "Seconds to wait for a connection and its session.")
    var connectTimeout = 5.0

    @Option(name: .long, help: "Write every run's figures and the medians to this JSON file.")
    var json: String?

    mutating func validate() throws {
        if !compare.isEmpty && compare.count != 2 {
            throw ValidationError("--compare takes exactly two host lists, A and B (got \(compare.count))")
        }
        if serial {
            sessions = 1
            outstanding = 1
        }
        guard (1...BenchLimits.maxSessions).contains(sessions) else {
            throw ValidationError("--sessions must be within 1...\(BenchLimits.maxSessions)")
        }
        guard (1...BenchLimits.maxOutstanding).contains(outstanding) else {
            throw ValidationError("--outstanding must be within 1...\(BenchLimits.maxOutstanding)")
        }
        guard (0...BenchLimits.maxValueSize).contains(valueSize) else {
            throw ValidationError("--value-size must be within 0...\(BenchLimits.maxValueSize) (jute.maxbuffer)")
        }
        guard duration > 0 && duration <= BenchLimits.maxDurationSeconds else {
            throw ValidationError("--duration must be above 0 and at most \(Int(BenchLimits.maxDurationSeconds)) s")
        }
        guard warmup >= 0 && warmup <= BenchLimits.maxDurationSeconds else {
            throw ValidationError("--warmup must be within 0...\(Int(BenchLimits.maxDurationSeconds)) s")
        }
        guard (0...1).contains(readRatio) else { throw ValidationError("--read-ratio must be within 0...1") }
        if let rate {
            guard rate > 0 && rate <= BenchLimits.maxRate else {
                throw ValidationError("--rate must be above 0 and at most \(Int(BenchLimits.maxRate)) requests per second")
            }
        }
        if workload.needsKeys {
            guard (1...BenchLimits.maxKeys).contains(keys) else {
                throw ValidationError("--keys must be within 1...\(BenchLimits.maxKeys)")
            }
        }
        if let rounds, !(1...BenchLimits.maxRounds).contains(rounds) {
            throw ValidationError("--rounds must be within 1...\(BenchLimits.maxRounds)")
        }
        guard (1...BenchLimits.maxRequestsPerSession).contains(maxRequests) else {
            throw ValidationError("--max-requests must be within 1...\(BenchLimits.maxRequestsPerSession)")
        }
        if let threads, !(1...BenchLimits.maxThreads).contains(threads) {
            throw ValidationError("--threads must be within 1...\(BenchLimits.maxThreads)")
        }
        guard sessionTimeout > 0 else { throw ValidationError("--session-timeout must be positive") }
        guard replyTimeout > 0 && replyTimeout <= BenchLimits.maxDurationSeconds else {
            throw ValidationError("--reply-timeout must be above 0 and at most \(Int(BenchLimits.maxDurationSeconds)) s")
        }
        guard connectTimeout > 0 && connectTimeout <= BenchLimits.maxDurationSeconds else {
            throw ValidationError("--connect-timeout must be above 0 and at most \(Int(BenchLimits.maxDurationSeconds)) s")
        }
        for text in compare.isEmpty ? [hosts] : compare {
            do {
                _ = try HostList(parsing: text)
            } catch {
                throw ValidationError("\(error)")
            }
        }
    }

    func run() async throws {
        let targets: [(label: String, hosts: HostList)]
        do {
            targets = try compare.isEmpty
                ? [("A", HostList(parsing: hosts))]
                : [("A", HostList(parsing: compare[0])), ("B", HostList(parsing: compare[1]))]
        } catch {
            throw ValidationError("\(error)")  // validate() parsed them already
        }
        let rounds = self.rounds ?? (compare.isEmpty ? 1 : 3)
        let configuration = RunConfiguration(
            workload: workload, readRatio: readRatio, valueSize: valueSize, sessions: sessions, outstanding: outstanding,
            ratePerSecond: rate, durationSeconds: duration, warmupSeconds: warmup, keys: keys,
            maxRequestsPerSession: maxRequests, seed: seed,
            sessionTimeoutMs: sessionTimeout, replyTimeoutSeconds: replyTimeout, connectTimeoutSeconds: connectTimeout)
        let startedAt = ISO8601DateFormatter().string(from: Date())
        let log: @Sendable (String) -> Void = { line in
            FileHandle.standardError.write(Data("keeper-bench: \(line)\n".utf8))
        }
        if sessions > 60 {
            log("warning: \(sessions) sessions from one address exceed ZooKeeper's default maxClientCnxns (60)")
        }
        print("keeper-bench: \(TextReport.describe(configuration))")
        for target in targets { print("  \(target.label) = \(target.hosts)") }

        let interrupts = InterruptSwitch(log: log)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads ?? System.coreCount)
        var results = [[RunResult]](repeating: [], count: targets.count)
        var failure: (any Error)?
        var runNumber = 0
        allRuns: for round in 1...rounds {
            for (position, target) in targets.enumerated() {
                runNumber += 1
                let run = BenchmarkRun(
                    configuration: configuration, hosts: target.hosts, group: group,
                    basePath: "/keeper-bench-\(ProcessInfo.processInfo.processIdentifier)-\(runNumber)", log: log,
                    interrupts: interrupts)
                do {
                    let result = try await run.run()
                    results[position].append(result)
                    print(TextReport.line(for: result, label: target.label, run: round, of: rounds))
                } catch {
                    failure = error
                    break allRuns
                }
            }
        }
        try await group.shutdownGracefully()

        if let failure {
            log("error: \(failure)")
            if case BenchError.interrupted = failure { throw ExitCode(130) }
            throw ExitCode(1)
        }
        let reports = targets.enumerated().map { position, target in
            TargetReport(
                label: target.label, hosts: target.hosts.description, runs: results[position],
                median: MedianSummary(results[position]))
        }
        let ratios = reports.count == 2 ? Ratios(reports[1].median, over: reports[0].median) : nil
        if rounds > 1 || reports.count > 1 {
            print(TextReport.table(reports, ratios: ratios))
        }
        if let json {
            let report = BenchReport(startedAt: startedAt, configuration: configuration, targets: reports, ratios: ratios)
            try report.write(to: json)
            log("wrote \(json)")
        }
        let errorReplies = results.joined().reduce(0) { $0 + $1.errors.values.reduce(0, +) }
        if errorReplies > 0 {
            log("error: \(errorReplies) error replies during the measured runs (listed above): figures are not comparable")
            throw ExitCode(2)
        }
    }
}
