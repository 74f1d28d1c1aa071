// KeeperStore benchmarks: batched apply throughput (creates and setData, 100 B and 1 KiB,
// 1,000 txns per LMDB write transaction) and read latency percentiles (getData, exists,
// getChildren) on a store of 100,000 znodes. Run from Benchmarks/:
//   swift package benchmark --target StoreBenchmarks
// Stores live in fresh temporary directories with the default durability (`.checkpointed`,
// no fsync per batch: the log is the durable copy), and are removed afterwards.
import Benchmark
import Foundation
import KeeperModel
import KeeperStore

/// One store and the next zxid to apply. Benchmarks run one at a time on one thread.
final class StoreFixture: @unchecked Sendable {
    // Sendable proof: the benchmark harness runs setup, the measured closure and teardown
    // of one benchmark sequentially on one thread; nothing else touches the fixture.
    var directory = ""
    var store: KeeperStore?
    var zxid: Int64 = 0
    var nodes = 0
    var rng = SystemRandomNumberGenerator()

    func open() throws {
        var template = Array((NSTemporaryDirectory() + "keeper-store-bench-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        directory = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
        var config = StoreConfiguration()
        config.initialMapSize = 1 << 30
        store = try KeeperStore(directory: directory + "/store", configuration: config)
        zxid = try store!.lastAppliedZxid().rawValue
        nodes = 0
    }

    func close() throws {
        store = nil
        try FileManager.default.removeItem(atPath: directory)
    }

    func header(_ type: OpCode) -> TxnHeader {
        zxid += 1
        return TxnHeader(clientID: .none, cxid: 0, zxid: Zxid(zxid), time: zxid, type: type)
    }

    func createEntry(dataSize: Int) -> TxnEntry {
        let path = "/p/n\(nodes)"
        nodes += 1
        let data = [UInt8](repeating: UInt8(truncatingIfNeeded: nodes), count: dataSize)
        return TxnEntry(
            header: header(.create),
            txn: .create(CreateTxn(path: path, data: data, acl: ACL.openUnsafe, kind: .persistent)))
    }

    /// Creates /p and `count` children of `dataSize` bytes, in batches of 1,000.
    func populate(count: Int, dataSize: Int) throws {
        try store!.apply(
            TxnEntry(header: header(.create), txn: .create(CreateTxn(path: "/p", data: [], acl: ACL.openUnsafe, kind: .persistent))))
        var left = count
        while left > 0 {
            let n = min(1000, left)
            _ = try store!.write { batch in for _ in 0..<n { try batch.apply(createEntry(dataSize: dataSize)) } }
            left -= n
        }
        try store!.sync()
    }

    func randomPath() -> String { "/p/n\(Int.random(in: 0..<nodes, using: &rng))" }
}

let benchmarks: @Sendable () -> Void = {
    let applyConfig = Benchmark.Configuration(
        metrics: [.throughput, .wallClock], warmupIterations: 2, scalingFactor: .kilo, maxDuration: .seconds(3),
        maxIterations: 200)
    let readConfig = Benchmark.Configuration(
        metrics: [.wallClock, .throughput], warmupIterations: 100, scalingFactor: .one, maxDuration: .seconds(3),
        maxIterations: 200_000)

    for size in [100, 1024] {
        let label = size == 100 ? "100 B" : "1 KiB"
        let creates = StoreFixture()
        Benchmark(
            "Apply create \(label), 1000 per batch", configuration: applyConfig,
            closure: { benchmark in
                let store = creates.store!
                let entries = benchmark.scaledIterations.map { _ in creates.createEntry(dataSize: size) }
                benchmark.startMeasurement()
                let results = try store.write { batch in try entries.map { try batch.apply($0) } }
                benchmark.stopMeasurement()
                precondition(results.allSatisfy(\.succeeded), "a create failed")
                blackHole(results)
            },
            setup: {
                try creates.open()
                try creates.populate(count: 0, dataSize: size)
            },
            teardown: { try creates.close() })

        let updates = StoreFixture()
        var version: [Int32] = []
        Benchmark(
            "Apply setData \(label), 1000 per batch", configuration: applyConfig,
            closure: { benchmark in
                let store = updates.store!
                let entries = benchmark.scaledIterations.map { _ -> TxnEntry in
                    let i = Int.random(in: 0..<updates.nodes, using: &updates.rng)
                    version[i] += 1
                    let data = [UInt8](repeating: UInt8(truncatingIfNeeded: version[i]), count: size)
                    return TxnEntry(
                        header: updates.header(.setData),
                        txn: .setData(SetDataTxn(path: "/p/n\(i)", data: data, version: version[i])))
                }
                benchmark.startMeasurement()
                let results = try store.write { batch in try entries.map { try batch.apply($0) } }
                benchmark.stopMeasurement()
                precondition(results.allSatisfy(\.succeeded), "a setData failed")
                blackHole(results)
            },
            setup: {
                try updates.open()
                try updates.populate(count: 100_000, dataSize: size)
                version = Array(repeating: 0, count: updates.nodes)
            },
            teardown: { try updates.close() })
    }

    // The harness runs each benchmark in a process of its own: every read benchmark sets up
    // (and removes) its own 100k-znode store.
    let reads = StoreFixture()
    let readSetup: Benchmark.BenchmarkSetupHook = {
        if reads.store == nil {
            try reads.open()
            try reads.populate(count: 100_000, dataSize: 100)
        }
    }
    let readTeardown: Benchmark.BenchmarkTeardownHook = {
        if reads.store != nil { try reads.close() }
    }
    Benchmark(
        "Read getData 100 B (100k znodes)", configuration: readConfig,
        closure: { benchmark in
            let path = reads.randomPath()
            benchmark.startMeasurement()
            let node = try reads.store!.read { view in try view.node(at: path) }
            benchmark.stopMeasurement()
            precondition(node?.data.count == 100, "missing node \(path)")
            blackHole(node)
        }, setup: readSetup, teardown: readTeardown)
    Benchmark(
        "Read exists (100k znodes)", configuration: readConfig,
        closure: { benchmark in
            let path = reads.randomPath()
            benchmark.startMeasurement()
            let stat = try reads.store!.read { view in try view.stat(at: path) }
            benchmark.stopMeasurement()
            precondition(stat != nil, "missing node \(path)")
            blackHole(stat)
        }, setup: readSetup, teardown: readTeardown)
    Benchmark(
        "Read getChildren2 of a 100-child node", configuration: readConfig,
        closure: { benchmark in
            benchmark.startMeasurement()
            let children = try reads.store!.read { view in try view.children(of: "/q") }
            benchmark.stopMeasurement()
            precondition(children?.names.count == 100, "children of /q missing")
            blackHole(children)
        },
        setup: {
            try await readSetup()
            if try reads.store!.read({ try $0.exists("/q") }) { return }
            try reads.store!.write { batch in
                try batch.apply(TxnEntry(header: reads.header(.create), txn: .create(CreateTxn(path: "/q", data: [], acl: ACL.openUnsafe, kind: .persistent))))
                for i in 0..<100 {
                    try batch.apply(TxnEntry(header: reads.header(.create), txn: .create(CreateTxn(path: "/q/c\(i)", data: [1], acl: ACL.openUnsafe, kind: .persistent))))
                }
            }
        },
        teardown: readTeardown)
}
