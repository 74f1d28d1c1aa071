import Foundation
import KeeperModel
import Testing

@testable import KeeperStore

/// A fresh temporary directory, removed when the test ends.
final class TemporaryDirectory: Sendable {
    let path: String
    init() throws {
        var template = Array((NSTemporaryDirectory() + "keeper-store-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { throw StoreError.io(operation: "mkdtemp", path: NSTemporaryDirectory(), errno: errno) }
        path = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
    }
    deinit {
        do { try FileManager.default.removeItem(atPath: path) } catch {
            print("warning: could not remove temporary directory \(path): \(error)")
        }
    }
    var store: String { path + "/store" }
}

/// A store plus a zxid and clock, to apply txns one by one.
final class Harness {
    let dir: TemporaryDirectory
    var store: KeeperStore
    var zxid: Int64 = 0
    var time: Int64 = 1_000

    init(configuration: StoreConfiguration = StoreConfiguration()) throws {
        dir = try TemporaryDirectory()
        store = try KeeperStore(directory: dir.store, configuration: configuration)
    }

    func entry(_ txn: Txn, session: Int64 = 0) -> TxnEntry {
        zxid += 1
        time += 10
        return TxnEntry(
            header: TxnHeader(clientID: SessionID(session), cxid: 0, zxid: Zxid(zxid), time: time, type: txn.opCode),
            txn: txn)
    }

    @discardableResult
    func apply(_ txn: Txn, session: Int64 = 0) throws -> TxnResult {
        try store.apply(entry(txn, session: session))
    }

    @discardableResult
    func create(
        _ path: String, _ data: String = "", kind: CreateTxn.Kind = .persistent, acl: [ACL] = ACL.openUnsafe,
        parentCVersion: Int32 = -1, session: Int64 = 0
    ) throws -> TxnResult {
        try apply(
            .create(CreateTxn(path: path, data: Array(data.utf8), acl: acl, kind: kind, parentCVersion: parentCVersion)),
            session: session)
    }

    func stat(_ path: String) throws -> Stat? { try store.read { try $0.stat(at: path) } }
}

/// SplitMix64: a small seeded generator whose sequence is fixed by its seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// The seed of a randomized test: KEEPER_TEST_SEED when set (to replay a failure), else
/// one drawn from the system generator; printed on failure by the caller.
func testSeed() -> UInt64 {
    if let s = ProcessInfo.processInfo.environment["KEEPER_TEST_SEED"], let v = UInt64(s) { return v }
    return UInt64.random(in: 1...UInt64.max)
}
