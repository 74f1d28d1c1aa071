import KeeperModel
import KeeperZAB
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole ensembles of ZAB cores under seeded network, disk, crash and clock faults.
///
/// `SIM_SEEDS` (default 5000) seeds from `SIM_FIRST_SEED` (default 1), each with `SIM_TICKS`
/// (default 120) ticks of faults then a healed period that must commit a probe write
/// everywhere. A failure prints its seed; `SIM_SEED=<seed> swift test --filter SimulationTests`
/// replays exactly that run and prints its transcript.
@Suite struct SimulationTests {
    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }

    static var chaosTicks: Int { environment("SIM_TICKS").flatMap(Int.init) ?? 120 }

    @Test func seeds() async throws {
        if let single = Self.environment("SIM_SEED").flatMap(UInt64.init) {
            var simulation = Simulation(seed: single, chaosTicks: Self.chaosTicks, recordTranscript: true)
            simulation.run()
            let transcript = simulation.transcript ?? []
            print(transcript.suffix(Int(Self.environment("SIM_TRANSCRIPT_LINES").flatMap(Int.init) ?? 400)).joined(separator: "\n"))
            print("seed \(single): \(simulation.parameters); \(simulation.events) events, \(simulation.checker.committed.count) committed, trace \(String(simulation.trace.value, radix: 16))")
            #expect(simulation.checker.failures.isEmpty, "seed \(single): \(simulation.checker.failures.joined(separator: "; "))")
            return
        }
        let count = Self.environment("SIM_SEEDS").flatMap(Int.init) ?? 5000
        let first = Self.environment("SIM_FIRST_SEED").flatMap(UInt64.init) ?? 1
        let workers = max(1, Int(Self.environment("SIM_WORKERS").flatMap(Int.init) ?? 2))
        let ticks = Self.chaosTicks
        let clock = ContinuousClock()
        let started = clock.now
        let results = await withTaskGroup(of: (failures: [(UInt64, String)], committed: Int, events: Int).self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var failures: [(UInt64, String)] = []
                    var committed = 0
                    var events = 0
                    var seed = first + UInt64(worker)
                    while seed < first + UInt64(count) {
                        var simulation = Simulation(seed: seed, chaosTicks: ticks)
                        simulation.run()
                        committed += simulation.checker.committed.count
                        events += simulation.events
                        if !simulation.checker.failures.isEmpty {
                            failures.append((seed, simulation.checker.failures.joined(separator: "; ")))
                        }
                        seed += UInt64(workers)
                    }
                    return (failures, committed, events)
                }
            }
            var all: (failures: [(UInt64, String)], committed: Int, events: Int) = ([], 0, 0)
            for await result in group {
                all.failures += result.failures
                all.committed += result.committed
                all.events += result.events
            }
            return all
        }
        let elapsed = clock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("simulation: \(count) seeds from \(first), \(ticks) chaos ticks, \(results.events) events, \(results.committed) txns committed, \((Double(count) / seconds * 10).rounded() / 10) seeds/s over \(workers) workers")
        for (seed, failure) in results.failures.sorted(by: { $0.0 < $1.0 }).prefix(20) {
            print("FAILED seed \(seed): \(failure)\n  replay: SIM_SEED=\(seed) swift test --filter SimulationTests")
        }
        #expect(results.failures.isEmpty, "\(results.failures.count) of \(count) seeds failed; first: seed \(results.failures.map(\.0).min() ?? 0)")
    }

    /// The same seed gives the same run, so a printed seed replays the failure exactly.
    @Test func sameSeedSameRun() {
        for seed: UInt64 in [7, 4242] {
            var a = Simulation(seed: seed, chaosTicks: 60)
            var b = Simulation(seed: seed, chaosTicks: 60)
            a.run()
            b.run()
            #expect(a.trace.value == b.trace.value, "seed \(seed) diverged")
            #expect(a.events == b.events)
            #expect(a.checker.committed == b.checker.committed)
            #expect(a.checker.committed.count > 0, "seed \(seed) committed nothing")
        }
    }
}

/// The checkers must be able to fail: feed them the histories of broken protocols.
@Suite struct CheckerTests {
    func entry(_ epoch: UInt32, _ counter: UInt32, _ byte: UInt8) -> Proposal {
        Proposal(zxid: Zxid(epoch: epoch, counter: counter), payload: [byte])
    }

    @Test func divergentHistoriesBreakAgreement() {
        var checker = Checker()
        for byte: UInt8 in [1, 2] { checker.submitted([byte]) }
        checker.proposed(entry(1, 1, 1), by: 1, at: 0)
        checker.proposed(entry(2, 1, 2), by: 2, at: 0)
        checker.applied(entry(1, 1, 1), index: 0, previous: .zero, node: 1, at: 1)
        #expect(checker.failures.isEmpty)
        checker.applied(entry(2, 1, 2), index: 0, previous: .zero, node: 2, at: 2)
        #expect(checker.failures.count == 1)
    }

    @Test func unproposedOrReorderedTxnsBreakIntegrityAndOrder() {
        var checker = Checker()
        checker.applied(entry(1, 1, 9), index: 0, previous: .zero, node: 1, at: 1)
        #expect(checker.failures.count == 1)
        checker.submitted([3])
        checker.proposed(entry(1, 3, 3), by: 1, at: 0)
        checker.applied(entry(1, 3, 3), index: 1, previous: Zxid(epoch: 1, counter: 5), node: 1, at: 2)
        #expect(checker.failures.count == 2)
    }

    @Test func aLeaderWithoutACommittedTxnBreaksPrimaryIntegrity() {
        var checker = Checker()
        checker.submitted([1])
        checker.proposed(entry(1, 1, 1), by: 1, at: 0)
        checker.applied(entry(1, 1, 1), index: 0, previous: .zero, node: 1, at: 1)
        checker.established(epoch: 2, node: 2, history: [], at: 2)
        #expect(checker.failures.count == 1)
        checker.established(epoch: 2, node: 3, history: [entry(1, 1, 1)], at: 3)
        #expect(checker.failures.count == 2)  // a second primary for epoch 2
    }

    @Test func twoTxnsWithOneZxidAreCaught() {
        var checker = Checker()
        for byte: UInt8 in [1, 2] { checker.submitted([byte]) }
        checker.proposed(entry(1, 1, 1), by: 1, at: 0)
        checker.proposed(entry(1, 1, 2), by: 2, at: 0)
        #expect(checker.failures.count == 1)
    }
}
