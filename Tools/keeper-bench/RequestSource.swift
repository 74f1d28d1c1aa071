import ArgumentParser
import KeeperModel
import KeeperWire
import NIOCore

/// What a run asks the server to do.
enum Workload: String, CaseIterable, Sendable, Codable, ExpressibleByArgument {
    /// Persistent znodes, each a new name under the run's base path.
    case create
    /// setData (version -1) on the prepared keys, in turn.
    case set
    /// getData (no watch) on the prepared keys, in turn.
    case get
    /// getData with probability --read-ratio, else setData, on the prepared keys.
    case mixed

    /// Whether the run needs prepared keys to read or write.
    var needsKeys: Bool {
        switch self {
        case .create: false
        case .set, .get, .mixed: true
        }
    }

    /// The name used in reports ("setData").
    var operationName: String {
        switch self {
        case .create: "create"
        case .set: "setData"
        case .get: "getData"
        case .mixed: "getData/setData"
        }
    }
}


/// SplitMix64: a tiny seeded generator, so a mixed run's sequence of reads and writes repeats
/// exactly for the same --seed.
struct SplitMix64: Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A double uniform in [0, 1).
    mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }
}

/// The requests one session sends, produced one at a time into the outbound buffer so that an
/// endless workload needs no list: either the measured workload (endless; the session's clock
/// and request budget end it) or a finite list (preparing keys, cleaning up).
struct RequestSource: Sendable {
    enum Plan: Sendable {
        /// The measured workload. `keys` are the paths to read/write, `cursor` the session's
        /// first key (sessions start apart so they do not all hit one znode), `createPrefix`
        /// the name stem of created znodes (followed by a counter).
        case workload(Workload, keys: [String], cursor: Int, createPrefix: String, readRatio: Double, random: SplitMix64)
        /// Create each path (persistent, open ACL) with the value.
        case createAll([String])
        /// Delete each path (any version).
        case deleteAll([String])
        /// Sync each path: the session's server catches up with the leader first.
        case syncAll([String])
    }

    private(set) var plan: Plan
    /// The data of every create and setData.
    let value: ByteBuffer
    /// How many requests this source has produced.
    private(set) var produced = 0

    init(_ plan: Plan, value: ByteBuffer) {
        self.plan = plan
        self.value = value
    }

    /// Whether another request remains (always true for a workload).
    var hasNext: Bool {
        switch plan {
        case .workload: true
        case .createAll(let paths), .deleteAll(let paths), .syncAll(let paths): produced < paths.count
        }
    }

    /// The path the `index`th request of a finite list is about (for error messages).
    func path(ofRequest index: Int) -> String {
        switch plan {
        case .workload(let workload, let keys, _, let prefix, _, _):
            workload == .create ? prefix + String(index) : "one of the \(keys.count) keys"
        case .createAll(let paths), .deleteAll(let paths), .syncAll(let paths): paths[index]
        }
    }

    /// Writes the next request's frame (length, RequestHeader{xid, type}, record) into `buffer`
    /// and returns its opcode.
    mutating func writeNext(xid: Int32, into buffer: inout ByteBuffer) -> OpCode {
        precondition(hasNext, "writeNext called on an exhausted request source")
        let index = produced
        produced += 1
        switch plan {
        case .workload(let workload, let keys, var cursor, let prefix, let readRatio, var random):
            let read: Bool
            switch workload {
            case .create:
                let request = CreateRequest(path: prefix + String(index), data: value, acl: ACL.openUnsafe, mode: .persistent)
                Request.create(request).writeFrame(xid: xid, to: &buffer)
                return .create
            case .set: read = false
            case .get: read = true
            case .mixed: read = random.nextUnit() < readRatio
            }
            let path = keys[cursor]
            cursor += 1
            if cursor == keys.count { cursor = 0 }
            plan = .workload(workload, keys: keys, cursor: cursor, createPrefix: prefix, readRatio: readRatio, random: random)
            if read {
                Request.getData(GetDataRequest(path: path, watch: false)).writeFrame(xid: xid, to: &buffer)
                return .getData
            }
            Request.setData(SetDataRequest(path: path, data: value, version: -1)).writeFrame(xid: xid, to: &buffer)
            return .setData
        case .createAll(let paths):
            let request = CreateRequest(path: paths[index], data: value, acl: ACL.openUnsafe, mode: .persistent)
            Request.create(request).writeFrame(xid: xid, to: &buffer)
            return .create
        case .deleteAll(let paths):
            Request.delete(DeleteRequest(path: paths[index], version: -1)).writeFrame(xid: xid, to: &buffer)
            return .delete
        case .syncAll(let paths):
            Request.sync(SyncRequest(path: paths[index])).writeFrame(xid: xid, to: &buffer)
            return .sync
        }
    }
}
