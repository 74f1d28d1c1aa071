import Foundation

/// Medians over the runs against one target: each figure is the median of that figure, so a
/// single disturbed run (a build on the same machine, a GC pause) moves none of them.
struct MedianSummary: Sendable, Codable {
    var runs: Int
    var opsPerSecond: Double
    var p50Ms: Double?
    var p99Ms: Double?
    var p999Ms: Double?
    var maxMs: Double?

    init(_ results: [RunResult]) {
        precondition(!results.isEmpty, "a median needs at least one run")
        runs = results.count
        opsPerSecond = Self.median(results.map(\.opsPerSecond))!
        p50Ms = Self.median(results.compactMap(\.latency?.p50Ms))
        p99Ms = Self.median(results.compactMap(\.latency?.p99Ms))
        p999Ms = Self.median(results.compactMap(\.latency?.p999Ms))
        maxMs = Self.median(results.compactMap(\.latency?.maxMs))
    }

    /// The middle value (the mean of the middle two for an even count); nil for none.
    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}

/// All runs against one host list.
struct TargetReport: Sendable, Codable {
    var label: String
    var hosts: String
    var runs: [RunResult]
    var median: MedianSummary
}

/// The second target's medians divided by the first's: ops/s above 1 and latencies below 1
/// mean the second target is better.
struct Ratios: Sendable, Codable {
    var opsPerSecond: Double
    var p50: Double?
    var p99: Double?
    var p999: Double?
    var max: Double?

    init(_ b: MedianSummary, over a: MedianSummary) {
        func ratio(_ x: Double?, _ y: Double?) -> Double? {
            guard let x, let y, y > 0 else { return nil }
            return x / y
        }
        opsPerSecond = a.opsPerSecond > 0 ? b.opsPerSecond / a.opsPerSecond : 0
        p50 = ratio(b.p50Ms, a.p50Ms)
        p99 = ratio(b.p99Ms, a.p99Ms)
        p999 = ratio(b.p999Ms, a.p999Ms)
        max = ratio(b.maxMs, a.maxMs)
    }
}

/// The JSON document --json writes.
struct BenchReport: Sendable, Codable {
    var tool = "keeper-bench"
    var startedAt: String
    var configuration: RunConfiguration
    var targets: [TargetReport]
    /// Compare mode: targets[1] over targets[0].
    var ratios: Ratios?

    func write(to path: String) throws(BenchError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            let data = try encoder.encode(self)
            try data.write(to: URL(fileURLWithPath: path))
        } catch {
            throw .cannotWriteJSON(path, underlying: "\(error)")
        }
    }
}

/// Human-readable lines for stdout.
enum TextReport {
    static func describe(_ configuration: RunConfiguration) -> String {
        var text = "\(configuration.workload.operationName)"
        if configuration.workload == .mixed {
            text += " (\(Int((configuration.readRatio * 100).rounded())) % reads)"
        }
        text += ", \(configuration.valueSize) B values"
        if let rate = configuration.ratePerSecond {
            text += ", open loop at \(number(rate, decimals: 0)) requests/s over \(configuration.sessions) "
                + "session\(configuration.sessions == 1 ? "" : "s") (at most \(configuration.outstanding) in flight each), "
                + "\(number(configuration.durationSeconds, decimals: 1)) s after \(number(configuration.warmupSeconds, decimals: 1)) s warm-up"
        } else {
            text += ", \(configuration.sessions) session\(configuration.sessions == 1 ? "" : "s") x "
                + "\(configuration.outstanding) in flight, \(number(configuration.durationSeconds, decimals: 1)) s "
                + "after \(number(configuration.warmupSeconds, decimals: 1)) s warm-up"
        }
        if configuration.workload.needsKeys { text += ", \(configuration.keys) keys" }
        return text
    }

    static func line(for result: RunResult, label: String, run: Int, of runs: Int) -> String {
        var text = "\(label) run \(run)/\(runs): \(number(result.opsPerSecond, decimals: 0)) ops/s"
        text += "  " + latency(result.latency)
        text += "  (\(number(Double(result.operations), decimals: 0)) ops in \(number(result.measuredSeconds, decimals: 1)) s"
        let errorCount = result.errors.values.reduce(0, +)
        text += errorCount == 0 ? ", no errors)" : ", \(errorCount) error replies: \(errorList(result.errors)))"
        if let offered = result.offeredPerSecond, result.opsPerSecond < offered * behindThreshold {
            text += "\n    behind: \(number(offered, decimals: 0)) requests/s offered, the server kept up with "
                + "\(number(100 * result.opsPerSecond / offered, decimals: 0)) %; latency includes the queue"
        }
        if let reads = result.readLatency { text += "\n    reads   " + latency(reads) }
        if let writes = result.writeLatency { text += "\n    writes  " + latency(writes) }
        return text
    }

    /// An open-loop run whose replies fall below this share of the offered rate is flagged.
    static let behindThreshold = 0.95

    static func latency(_ summary: LatencySummary?) -> String {
        guard let summary else { return "no replies measured" }
        return "p50 \(ms(summary.p50Ms))  p99 \(ms(summary.p99Ms))  p99.9 \(ms(summary.p999Ms))  max \(ms(summary.maxMs)) ms"
    }

    static func table(_ targets: [TargetReport], ratios: Ratios?) -> String {
        let runs = targets.map(\.median.runs).max() ?? 0
        var rows: [[String]] = [["median of \(runs) run\(runs == 1 ? "" : "s")", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms"]]
        for target in targets {
            let m = target.median
            rows.append([
                "\(target.label) \(target.hosts)", number(m.opsPerSecond, decimals: 0), optionalMs(m.p50Ms),
                optionalMs(m.p99Ms), optionalMs(m.p999Ms), optionalMs(m.maxMs),
            ])
        }
        if let ratios, targets.count == 2 {
            rows.append([
                "\(targets[1].label)/\(targets[0].label)", ratio(ratios.opsPerSecond), ratio(ratios.p50), ratio(ratios.p99),
                ratio(ratios.p999), ratio(ratios.max),
            ])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        var lines = rows.map { row in
            row.enumerated().map { column, cell in
                column == 0
                    ? cell.padding(toLength: widths[0], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ")
        }
        if ratios != nil, targets.count == 2 {
            lines.append("(\(targets[1].label)/\(targets[0].label): ops/s above 1 and latencies below 1 mean \(targets[1].label) is better)")
        }
        return lines.joined(separator: "\n")
    }

    private static func errorList(_ errors: [String: Int]) -> String {
        errors.sorted { $0.value > $1.value }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ")
    }

    private static func ms(_ value: Double) -> String { String(format: value < 10 ? "%.3f" : "%.1f", value) }

    private static func optionalMs(_ value: Double?) -> String { value.map(ms) ?? "-" }

    private static func ratio(_ value: Double?) -> String { value.map { String(format: "%.2fx", $0) } ?? "-" }

    /// A number with thousands separators ("25,311").
    static func number(_ value: Double, decimals: Int) -> String {
        let formatted = String(format: "%.\(decimals)f", value)
        let parts = formatted.split(separator: ".", maxSplits: 1)
        var integer = String(parts[0])
        let negative = integer.hasPrefix("-")
        if negative { integer.removeFirst() }
        var grouped = ""
        for (offset, character) in integer.reversed().enumerated() {
            if offset > 0 && offset % 3 == 0 { grouped.append(",") }
            grouped.append(character)
        }
        let sign = negative ? "-" : ""
        let fraction = parts.count > 1 ? "." + parts[1] : ""
        return sign + String(grouped.reversed()) + fraction
    }
}
