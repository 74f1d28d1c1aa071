// Applies batches of creates to a store until it is killed, printing each committed zxid.
// Usage: StoreCrashHelper <store directory> <batch size> <max batches>
// Batch k (from 1) creates /n<zxid> for every zxid in ((k-1)·size, k·size], so a store that
// stopped at a batch boundary has exactly the nodes /n1 ... /n<lastApplied>.
import KeeperModel
import KeeperStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func say(_ line: String) {
    var bytes = Array((line + "\n").utf8)
    let n = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress, $0.count) }
    precondition(n == bytes.count, "short write to stdout")
}

let args = CommandLine.arguments
precondition(args.count == 4, "usage: StoreCrashHelper <dir> <batch size> <max batches>")
guard let batchSize = Int64(args[2]), let maxBatches = Int(args[3]), batchSize > 0 else {
    preconditionFailure("batch size and max batches must be positive integers")
}
do {
    let store = try KeeperStore(directory: args[1])
    var last = try store.lastAppliedZxid().rawValue
    precondition(last % batchSize == 0, "store opened between batches: \(last)")
    say("open \(last)")
    for _ in 0..<maxBatches {
        let entries = (1...batchSize).map { i -> TxnEntry in
            let zxid = last + i
            let header = TxnHeader(clientID: .none, cxid: Int32(truncatingIfNeeded: zxid), zxid: Zxid(zxid), time: zxid, type: .create)
            let data = [UInt8](repeating: UInt8(truncatingIfNeeded: zxid), count: 200)
            return TxnEntry(header: header, txn: .create(CreateTxn(path: "/n\(zxid)", data: data, acl: ACL.openUnsafe, kind: .persistent)))
        }
        say("begin \(last + 1)")
        let results = try store.apply(entries)
        precondition(results.allSatisfy(\.succeeded), "a create failed")
        last += batchSize
        say("committed \(last)")
    }
    say("done")
} catch {
    say("error \(error)")
    exit(2)
}
