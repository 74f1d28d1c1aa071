import Foundation
import KeeperLog
import KeeperModel
import KeeperStore
import KeeperWire
import NIOCore

/// One line of an export file (JSON Lines): a `header`, one `node` per znode (parents before
/// their children), and an `end` line with the node count, so a cut file is detected.
public struct ExportRecord: Codable, Hashable, Sendable {
    public struct ACLEntry: Codable, Hashable, Sendable {
        public var perms: Int32
        public var scheme: String
        public var id: String
    }
    public struct StatRecord: Codable, Hashable, Sendable {
        public var czxid: Int64, mzxid: Int64, ctime: Int64, mtime: Int64
        public var version: Int32, cversion: Int32, aversion: Int32
        public var ephemeralOwner: Int64, dataLength: Int32, numChildren: Int32, pzxid: Int64
    }

    /// "header", "node" or "end".
    public var type: String
    // header
    public var format: String? = nil
    public var version: Int? = nil
    public var root: String? = nil
    public var zxid: String? = nil
    public var exportedAt: String? = nil
    // node
    public var path: String? = nil
    /// The data, base64.
    public var data: String? = nil
    /// "persistent", "ephemeral", "container" or "ttl".
    public var kind: String? = nil
    /// TTL nodes: the TTL in milliseconds.
    public var ttl: Int64? = nil
    public var acl: [ACLEntry]? = nil
    public var stat: StatRecord? = nil
    /// The number of child creates (the stored cversion: the sequential suffix counter).
    public var childCreates: Int32? = nil
    // end
    public var nodes: Int? = nil

    static let formatName = "swiftkeeper-export"
    static let formatVersion = 1
}

/// Logical export and import of a tree or subtree (JSON Lines), for moving data between
/// clusters or keeping a readable copy; not a substitute for backups (sessions, zxids and
/// history are not carried).
public enum TreeExport {
    /// Names in a store from its creation on; an import never creates them, it updates their
    /// sequence counters only.
    static let systemNodes: Set<String> = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"]

    /// Writes the subtree at `root` of the data directory `data` as JSON Lines through
    /// `emit`, from one consistent view (an LMDB read transaction). A stopped directory is
    /// exported as the server would serve it: when its log holds txns after the store's zxid,
    /// they are replayed onto a compacted copy of the store under `scratchParent` first
    /// (removed afterwards). With a server running, its store is read as it stands (at its
    /// last applied zxid, which the header line records). Returns the number of nodes.
    @discardableResult
    public static func export(
        _ data: DataDirectory, root: String, scratchParent: String = NSTemporaryDirectory(), emit: (String) throws -> Void
    ) throws -> Int {
        guard FileSystem.exists(data.storePath + "/" + KeeperStore.dataFileName) else {
            throw BackupError.badDataDirectory(path: data.dataDir, detail: "no store in \(data.storePath)")
        }
        let running: Bool
        do {
            try data.checkNotInUse()
            running = false
        } catch BackupError.inUse {
            running = true
        }
        if running {
            var configuration = StoreConfiguration()
            configuration.readOnly = true
            return try export(try KeeperStore(directory: data.storePath, configuration: configuration), root: root, emit: emit)
        }
        let scratch = try FileSystem.makeTemporaryDirectory(in: scratchParent, prefix: "keeper-export")
        do {
            let count = try export(try Backup.materialize(data, into: scratch), root: root, emit: emit)
            try FileSystem.removeTree(scratch)
            return count
        } catch {
            FileSystem.removeAfterFailure(scratch)
            throw error
        }
    }

    static func export(_ store: KeeperStore, root: String, emit: (String) throws -> Void) throws -> Int {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func line(_ record: ExportRecord) throws { try emit(String(decoding: try encoder.encode(record), as: UTF8.self)) }
        return try store.read { view in
            guard try view.exists(root) else {
                throw BackupError.badDataDirectory(path: store.directory, detail: "no node \(root) to export")
            }
            var header = ExportRecord(type: "header")
            header.format = ExportRecord.formatName
            header.version = ExportRecord.formatVersion
            header.root = root
            header.zxid = try view.lastAppliedZxid().description
            header.exportedAt = Backup.iso8601(Date())
            try line(header)
            var count = 0
            var stack = [root]
            while let path = stack.popLast() {
                guard let node = try view.node(at: path), let (acl, _) = try view.acl(at: path),
                      let creates = try view.childCreateCount(of: path), let children = try view.children(of: path)
                else { throw StoreError.damaged(directory: store.directory, detail: "\(path) vanished inside one read view") }
                var r = ExportRecord(type: "node")
                r.path = path
                r.data = Data(node.data).base64EncodedString()
                switch node.kind {
                case .persistent: r.kind = "persistent"
                case .ephemeral: r.kind = "ephemeral"
                case .container: r.kind = "container"
                case .ttl(let ms):
                    r.kind = "ttl"
                    r.ttl = ms
                }
                r.acl = acl.map { ExportRecord.ACLEntry(perms: $0.perms.rawValue, scheme: $0.id.scheme, id: $0.id.id) }
                let s = node.stat
                r.stat = ExportRecord.StatRecord(
                    czxid: s.czxid, mzxid: s.mzxid, ctime: s.ctime, mtime: s.mtime, version: s.version, cversion: s.cversion,
                    aversion: s.aversion, ephemeralOwner: s.ephemeralOwner, dataLength: s.dataLength,
                    numChildren: s.numChildren, pzxid: s.pzxid)
                r.childCreates = creates
                try line(r)
                count += 1
                let prefix = path == "/" ? "/" : path + "/"
                for name in children.names.reversed() { stack.append(prefix + name) }
            }
            var end = ExportRecord(type: "end")
            end.nodes = count
            try line(end)
            return count
        }
    }

    /// What an import did.
    public struct ImportReport: Sendable {
        public var created: Int
        /// Ephemeral nodes in the file, not imported: their sessions do not exist here.
        public var skippedEphemerals: [String]
        /// System nodes present in every store; only their child counters were raised.
        public var skippedSystemNodes: [String]
        public var txns: Int
        public var firstZxid: Zxid?
        public var lastZxid: Zxid?
        public var digest: TreeDigest
    }

    /// Imports an export file into the stopped data directory `data`, as txns written to its
    /// log and applied to its store (so the server, replicas and incremental backups see
    /// them as ordinary history).
    ///
    /// The store first catches up with the log (as the server would on start), so the import
    /// is checked against, and continues, the whole history.
    ///
    /// Preserved per node: path, data, ACL, kind (persistent, container, TTL with its TTL),
    /// version, aversion, ctime and mtime (as the txns' times), and the child create counter
    /// (the stored cversion, which names the next sequential child). Not preserved: czxid,
    /// mzxid and pzxid (new zxids), ephemeral nodes (skipped: their sessions do not exist).
    /// A counter is carried by creating and deleting one child `.swiftkeeper-import-counter`
    /// with `parentCVersion` set to the count (creates only ever raise it); then children are
    /// created at that count.
    ///
    /// The file is streamed, never held in memory: a first pass checks every line and applies
    /// every txn in one store write batch that is rolled back (a clash, a node that already
    /// exists or a missing parent, fails before anything is written; LMDB spills the batch's
    /// pages to its file past its dirty-page limit, so memory stays bounded); a second pass
    /// makes the same txns again and appends them to the log, which is closed (durable); then
    /// the store replays the log as the server does on start, in batches.
    public static func importFile(_ file: String, into data: DataDirectory) throws -> ImportReport {
        try data.checkNotInUse()
        let databaseID = try data.databaseID()
        guard FileSystem.exists(data.storePath + "/" + KeeperStore.dataFileName) else {
            throw BackupError.badDataDirectory(path: data.dataDir, detail: "no store in \(data.storePath)")
        }
        let logSummary = try Backup.scanLog(data, databaseID: databaseID)
        let store = try KeeperStore(directory: data.storePath)
        // First what the server would do on start: apply the log's txns the store lacks, so
        // the import checks against, and continues, the whole history.
        try Backup.replayLog(data, databaseID: databaseID, into: store)
        try store.sync()
        let start = max(try store.lastAppliedZxid(), logSummary.lastZxid ?? .zero)

        // 1. Check every line and dry-run every txn; the batch is then rolled back. (A full
        //    map reruns the closure from the start: the plan is made inside it.)
        struct RolledBack: Error {}
        var checked: ImportPlan?
        do {
            try store.write { batch in
                let plan = ImportPlan(file: file, start: start)
                try forEachNode(file) { line, record, isRoot in
                    try plan.txns(for: record, line: line, isRoot: isRoot) { entry in
                        let result = try batch.apply(entry)
                        guard result.succeeded else { throw BackupError.importRefused(path: result.path ?? "?", code: result.error) }
                    }
                }
                checked = plan
                throw RolledBack()
            }
        } catch is RolledBack {}
        guard let checked else { preconditionFailure("the dry run ends by rolling back") }
        guard let lastZxid = checked.last else {
            return ImportReport(created: 0, skippedEphemerals: checked.skippedEphemerals, skippedSystemNodes: checked.skippedSystem,
                                txns: 0, digest: try store.digest())
        }
        // 2. The same txns into the log (the store is a view of it), durably.
        let log = try KeeperLog.open(LogConfiguration(directory: data.logPath, databaseID: databaseID))
        do {
            let plan = ImportPlan(file: file, start: start)
            var buffer = ByteBuffer()
            try forEachNode(file) { line, record, isRoot in
                try plan.txns(for: record, line: line, isRoot: isRoot) { entry in
                    buffer.clear()
                    TxnCodec.write(entry, to: &buffer)
                    try log.append(zxid: entry.zxid, payload: Array(buffer.readableBytesView))
                }
            }
            precondition(plan.last == lastZxid && plan.txnCount == checked.txnCount, "the second pass made other txns than the dry run")
            try log.close()
        } catch {
            do { try log.close() } catch {
                // The append error is the one to report; close failing too adds nothing.
            }
            throw error
        }
        guard log.lastDurableZxid == lastZxid else {
            throw BackupError.inconsistentSource(detail: "the log made only \(log.lastDurableZxid) durable of \(lastZxid); the server will replay what it holds")
        }
        // 3. The store replays the log, as the server would.
        try Backup.replayLog(data, databaseID: databaseID, into: store)
        try store.sync()
        let digest = try store.digest()
        precondition(digest.zxid == lastZxid, "the store replayed to \(digest.zxid), the import ends at \(lastZxid)")
        return ImportReport(
            created: checked.created, skippedEphemerals: checked.skippedEphemerals, skippedSystemNodes: checked.skippedSystem,
            txns: checked.txnCount, firstZxid: checked.first, lastZxid: lastZxid, digest: digest)
    }

    /// Turns export records into txns, zxid after zxid from `start`: the same txns on every
    /// pass over the same file.
    final class ImportPlan {
        let file: String
        var next: Zxid
        var first: Zxid?
        var last: Zxid?
        var txnCount = 0
        var created = 0
        var skippedEphemerals: [String] = []
        var skippedSystem: [String] = []
        static let counterChild = ".swiftkeeper-import-counter"

        init(file: String, start: Zxid) {
            self.file = file
            next = start
        }

        private func add(_ txn: Txn, time: Int64, _ emit: (TxnEntry) throws -> Void) throws {
            guard let z = next.next else {
                throw BackupError.inconsistentSource(detail: "the zxid counter of epoch \(next.epoch) is exhausted; start the server once to move to a new epoch")
            }
            next = z
            if first == nil { first = z }
            last = z
            txnCount += 1
            try emit(TxnEntry(header: TxnHeader(clientID: .none, cxid: 0, zxid: z, time: time, type: txn.opCode), txn: txn))
        }

        func txns(for r: ExportRecord, line lineNumber: Int, isRoot: Bool, _ emit: (TxnEntry) throws -> Void) throws {
            guard let path = r.path, let stat = r.stat, let kind = r.kind, let aclEntries = r.acl, let creates = r.childCreates,
                  let encoded = r.data, let bytes = Data(base64Encoded: encoded)
            else { throw BackupError.badExport(file: file, line: lineNumber, detail: "a node line lacks path, data, kind, acl, stat or childCreates") }
            let acl = aclEntries.map { ACL(perms: Permissions(rawValue: $0.perms), id: Id(scheme: $0.scheme, id: $0.id)) }
            let prefix = path == "/" ? "/" : path + "/"
            if systemNodes.contains(path) {
                skippedSystem.append(path)
            } else {
                let createKind: CreateTxn.Kind
                switch kind {
                case "persistent": createKind = .persistent
                case "container": createKind = .container
                case "ttl":
                    guard let ttl = r.ttl else { throw BackupError.badExport(file: file, line: lineNumber, detail: "a ttl node without ttl") }
                    createKind = .ttl(ttl)
                case "ephemeral":
                    skippedEphemerals.append(path)
                    return
                default:
                    throw BackupError.badExport(file: file, line: lineNumber, detail: "unknown kind \(kind)")
                }
                // The export's root counts as one more create of its parent here (-1), like any
                // create; below it, parents already carry their exported counter (set by the
                // marker create), which 0 leaves alone (creates only raise it).
                let c = CreateTxn(path: path, data: Array(bytes), acl: acl, kind: createKind, parentCVersion: isRoot ? -1 : 0)
                let txn: Txn
                switch createKind {
                case .persistent: txn = .create(c)
                case .container: txn = .createContainer(c)
                case .ttl: txn = .createTTL(c)
                case .ephemeral: preconditionFailure("skipped above")
                }
                try add(txn, time: stat.ctime, emit)
                created += 1
                if stat.version > 0 { try add(.setData(SetDataTxn(path: path, data: Array(bytes), version: stat.version)), time: stat.mtime, emit) }
                if stat.aversion > 0 { try add(.setACL(SetACLTxn(path: path, acl: acl, version: stat.aversion)), time: stat.mtime, emit) }
            }
            if creates > 0 {
                let marker = CreateTxn(path: prefix + ImportPlan.counterChild, data: [], acl: ACL.openUnsafe, kind: .persistent, parentCVersion: creates)
                try add(.create(marker), time: stat.mtime, emit)
                try add(.delete(DeleteTxn(path: prefix + ImportPlan.counterChild)), time: stat.mtime, emit)
            }
        }
    }

    /// Streams an export file's node records, checking the whole file's shape as it goes: a
    /// header on line 1, node lines, an end line with their count, nothing after it. `body`
    /// gets each node with its line number and whether it is the first (the export's root).
    static func forEachNode(_ file: String, _ body: (Int, ExportRecord, Bool) throws -> Void) throws {
        let decoder = JSONDecoder()
        var number = 0
        var nodes = 0
        var sawHeader = false
        var ended = false
        try forEachLine(file) { line in
            number += 1
            if line.isEmpty || line.allSatisfy({ $0 == 0x0D }) { return }
            guard !ended else { throw BackupError.badExport(file: file, line: number, detail: "lines after the end line") }
            let record: ExportRecord
            do { record = try decoder.decode(ExportRecord.self, from: Data(line)) } catch {
                throw BackupError.badExport(file: file, line: number, detail: "not an export record: \(error)")
            }
            switch record.type {
            case "header":
                guard number == 1, record.format == ExportRecord.formatName, record.version == ExportRecord.formatVersion else {
                    throw BackupError.badExport(file: file, line: number, detail: "expected a \(ExportRecord.formatName) version \(ExportRecord.formatVersion) header on line 1")
                }
                sawHeader = true
            case "node":
                guard sawHeader else { throw BackupError.badExport(file: file, line: number, detail: "a node before the header") }
                try body(number, record, nodes == 0)
                nodes += 1
            case "end":
                guard record.nodes == nodes else {
                    throw BackupError.badExport(file: file, line: number, detail: "the end line counts \(record.nodes ?? -1) nodes, the file holds \(nodes)")
                }
                ended = true
            default:
                throw BackupError.badExport(file: file, line: number, detail: "unknown record type \(record.type)")
            }
        }
        guard ended else { throw BackupError.badExport(file: file, line: number + 1, detail: "no end line: the file is truncated") }
    }

    /// The longest line an export file may have: a node's data is at most `jute.maxbuffer`
    /// (base64 makes it 4/3 longer) plus its path, ACL and stat.
    static let maxLineBytes = 64 << 20

    /// Calls `body` with each line of `file` (without the newline), reading it in blocks.
    static func forEachLine(_ file: String, _ body: (ArraySlice<UInt8>) throws -> Void) throws {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw BackupError.badExport(file: file, line: 0, detail: "cannot be opened: \(String(cString: strerror(errno)))")
        }
        defer { _ = close(fd) }  // read-only descriptor: nothing to lose on close
        var buffer: [UInt8] = []
        var block = [UInt8](repeating: 0, count: 1 << 20)
        var lineNumber = 0
        while true {
            let n = block.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw BackupError.io(operation: "read", path: file, errno: errno)
            }
            if n == 0 { break }
            buffer.append(contentsOf: block[..<n])
            var start = 0
            while let newline = buffer[start...].firstIndex(of: 0x0A) {
                lineNumber += 1
                try body(buffer[start..<newline])
                start = newline + 1
            }
            buffer.removeSubrange(0..<start)
            guard buffer.count <= maxLineBytes else {
                throw BackupError.badExport(file: file, line: lineNumber + 1, detail: "a line longer than \(maxLineBytes) bytes")
            }
        }
        if !buffer.isEmpty { try body(buffer[...]) }
    }
}
