#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An in-memory file system with a disk's failure modes, for tests and simulations: writes are
/// volatile until `syncData`, directory entries until `syncDirectory`; `crash` keeps only what
/// was made durable (plus, on request, a torn part of what was not); faults (EIO, ENOSPC) can be
/// injected on any operation, and a capacity makes the device fill up.
///
/// A failed sync behaves like Linux after a writeback error: the unsynced writes stay visible
/// to reads but are dropped from what will reach the disk.
///
/// `@unchecked Sendable`: every stored property, and every `Inode` reachable from them, is read
/// and written only while `lock` is held (each public method and each `SimulatedFile` method
/// takes it for its whole body).
public final class SimulatedLogFileSystem: LogFileSystem, @unchecked Sendable {
    /// The operations a fault can be injected on.
    public enum Operation: Hashable, Sendable {
        case write, sync, truncate, open, rename, remove, syncDirectory
    }

    final class Inode {
        var data: [UInt8] = []
        var durable: [UInt8] = []
        var unsynced: [Change] = []
    }

    enum Change {
        case write(offset: Int, bytes: [UInt8])
        case truncate(Int)
    }

    let lock: LogMutex
    let syncGate: LogCondition
    var holdingSyncs = false
    /// Syncs parked so far, and how many of them were let through (tickets, in order).
    var syncArrivals = 0
    var syncsReleasedThrough = 0
    var entries: [String: Inode] = [:]
    var durableEntries: [String: Inode] = [:]
    var directories: Set<String> = []
    var faults: [Operation: [(code: Int32, remaining: Int)]] = [:]
    var capacity: Int?
    var generation = 0
    /// How many times each operation ran, for tests that count syncs.
    var counts: [Operation: Int] = [:]

    public init() {
        let lock = LogMutex()
        self.lock = lock
        syncGate = LogCondition(lock)
    }

    /// Makes the next `count` calls of `operation` fail with `code` (EIO, ENOSPC, ...).
    public func injectFault(_ code: Int32, on operation: Operation, count: Int = 1) {
        lock.withLock { faults[operation, default: []].append((code, count)) }
    }

    /// From now on `syncData` parks (after the data was written, before it is durable) until
    /// `releaseSyncs()`: tests use it to crash at a precise moment or to build a batch.
    public func holdSyncs() { lock.withLock { holdingSyncs = true } }

    /// Returns once a `syncData` call is parked by `holdSyncs()` and not yet let through.
    public func waitForHeldSync() {
        lock.withLock {
            while syncArrivals <= syncsReleasedThrough { syncGate.wait() }
        }
    }

    /// Lets the parked syncs proceed; later ones still park.
    public func releaseHeldSync() {
        lock.withLock {
            syncsReleasedThrough = syncArrivals
            syncGate.broadcast()
        }
    }

    /// Lets parked and future syncs proceed.
    public func releaseSyncs() {
        lock.withLock {
            holdingSyncs = false
            syncsReleasedThrough = syncArrivals
            syncGate.broadcast()
        }
    }

    /// Removes every injected fault that has not fired yet.
    public func clearFaults() { lock.withLock { faults = [:] } }

    /// The device's size in bytes (nil: unlimited). Growing a file past it fails with ENOSPC
    /// after writing what fits.
    public func setCapacity(_ bytes: Int?) { lock.withLock { capacity = bytes } }

    /// A `dropCache` call: the file's path as opened, the range, and whether every byte in it
    /// was durable then (no unsynced write overlapped it).
    public struct CacheDrop: Sendable {
        public let path: String
        public let range: Range<Int64>
        public let wasDurable: Bool
    }

    var cacheDropLog: [CacheDrop] = []

    /// Every `dropCache` call so far, oldest first.
    public var cacheDrops: [CacheDrop] { lock.withLock { cacheDropLog } }

    /// How many times `operation` was called.
    public func count(of operation: Operation) -> Int { lock.withLock { counts[operation, default: 0] } }

    /// The bytes a file holds now (as a reader would see them), or nil if it does not exist.
    public func contents(of path: String) -> [UInt8]? { lock.withLock { entries[path]?.data } }

    /// Replaces bytes of a file both in memory and on the "disk": bit rot, a bad sector.
    public func corrupt(_ path: String, at offset: Int, with bytes: [UInt8]) {
        lock.withLock {
            guard let inode = entries[path] else { preconditionFailure("no file \(path)") }
            precondition(offset + bytes.count <= inode.durable.count, "corruption past the durable end of \(path)")
            inode.data.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
            inode.durable.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
        }
    }

    /// A power failure: every file keeps its durable bytes plus the first `unsyncedBytes` bytes
    /// of the writes made since its last sync (in the order they were made; 0 loses them all,
    /// any other count tears a write at that byte). Entries not made durable by
    /// `syncDirectory` vanish. Files opened before the crash fail with EIO from now on.
    public func crash(persistingUnsyncedBytes unsyncedBytes: Int = 0) {
        lock.withLock {
            crashLocked { inode in
                var budget = unsyncedBytes
                for change in inode.unsynced {
                    switch change {
                    case .truncate(let size):
                        Self.resize(&inode.durable, to: size)
                    case .write(let offset, let bytes):
                        let kept = min(budget, bytes.count)
                        budget -= kept
                        if kept > 0 { Self.store(bytes[0..<kept], at: offset, in: &inode.durable) }
                    }
                }
            }
        }
    }

    /// A power failure where each unsynced 512-byte sector independently reached the disk or
    /// not (a drive reordering its writes), chosen by `generator`.
    public func crash<G: RandomNumberGenerator>(persistingRandomSectorsUsing generator: inout G) {
        lock.withLock {
            crashLocked { inode in
                for change in inode.unsynced {
                    switch change {
                    case .truncate(let size):
                        Self.resize(&inode.durable, to: size)
                    case .write(let offset, let bytes):
                        var start = 0
                        while start < bytes.count {
                            let sectorEnd = ((offset + start) / 512 + 1) * 512 - offset
                            let end = min(bytes.count, sectorEnd)
                            if Bool.random(using: &generator) {
                                Self.store(bytes[start..<end], at: offset + start, in: &inode.durable)
                            }
                            start = end
                        }
                    }
                }
            }
        }
    }

    private func crashLocked(_ persist: (Inode) -> Void) {
        generation += 1
        entries = durableEntries
        var seen = Set<ObjectIdentifier>()
        for inode in entries.values where seen.insert(ObjectIdentifier(inode)).inserted {
            persist(inode)
            inode.unsynced = []
            inode.data = inode.durable
        }
    }

    /// Applies changes in order; writes a failed sync dropped are not among them, so they
    /// never reach the disk even though reads still show them.
    static func apply(_ changes: [Change], to bytes: inout [UInt8]) {
        for change in changes {
            switch change {
            case .truncate(let size): resize(&bytes, to: size)
            case .write(let offset, let data): store(data[...], at: offset, in: &bytes)
            }
        }
    }

    static func resize(_ bytes: inout [UInt8], to size: Int) {
        if size < bytes.count {
            bytes.removeSubrange(size...)
        } else if size > bytes.count {
            bytes.append(contentsOf: repeatElement(0, count: size - bytes.count))
        }
    }

    static func store(_ source: ArraySlice<UInt8>, at offset: Int, in bytes: inout [UInt8]) {
        if bytes.count < offset + source.count { resize(&bytes, to: offset + source.count) }
        bytes.replaceSubrange(offset..<(offset + source.count), with: source)
    }

    /// Counts the call and throws the injected fault, if any. Caller holds `lock`.
    func check(_ operation: Operation, _ path: String) throws(KeeperLogError) {
        counts[operation, default: 0] += 1
        guard var pending = faults[operation], !pending.isEmpty else { return }
        let code = pending[0].code
        pending[0].remaining -= 1
        if pending[0].remaining == 0 { pending.removeFirst() }
        faults[operation] = pending
        throw .io(operation: "simulated \(operation)", path: path, errno: code)
    }

    var usedBytes: Int {
        var seen = Set<ObjectIdentifier>()
        var total = 0
        for inode in entries.values where seen.insert(ObjectIdentifier(inode)).inserted { total += inode.data.count }
        return total
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    public func createDirectory(_ path: String) throws(KeeperLogError) -> Bool {
        lock.withLock { directories.insert(path).inserted }
    }

    public func contentsOfDirectory(_ path: String) throws(KeeperLogError) -> [String] {
        try lock.withLock { () throws(KeeperLogError) -> [String] in
            guard directories.contains(path) else { throw .io(operation: "opendir", path: path, errno: ENOENT) }
            return entries.keys.filter { Self.parent(of: $0) == path }.map { String($0.dropFirst(path.count + 1)) }
        }
    }

    public func open(_ path: String, mode: LogFileOpenMode) throws(KeeperLogError) -> any LogFile {
        try lock.withLock { () throws(KeeperLogError) -> any LogFile in
            try check(.open, path)
            switch mode {
            case .readOnly, .readWrite:
                guard let inode = entries[path] else { throw .io(operation: "open", path: path, errno: ENOENT) }
                return SimulatedFile(fileSystem: self, inode: inode, path: path, generation: generation)
            case .createNew:
                guard directories.contains(Self.parent(of: path)) else {
                    throw .io(operation: "open", path: path, errno: ENOENT)
                }
                guard entries[path] == nil else { throw .io(operation: "open", path: path, errno: EEXIST) }
                let inode = Inode()
                entries[path] = inode
                return SimulatedFile(fileSystem: self, inode: inode, path: path, generation: generation)
            }
        }
    }

    public func rename(_ path: String, to newPath: String) throws(KeeperLogError) {
        try lock.withLock { () throws(KeeperLogError) in
            try check(.rename, path)
            guard let inode = entries.removeValue(forKey: path) else {
                throw .io(operation: "rename", path: path, errno: ENOENT)
            }
            entries[newPath] = inode
        }
    }

    public func remove(_ path: String) throws(KeeperLogError) {
        try lock.withLock { () throws(KeeperLogError) in
            try check(.remove, path)
            guard entries.removeValue(forKey: path) != nil else {
                throw .io(operation: "unlink", path: path, errno: ENOENT)
            }
        }
    }

    public func syncDirectory(_ path: String) throws(KeeperLogError) {
        try lock.withLock { () throws(KeeperLogError) in
            try check(.syncDirectory, path)
            for key in durableEntries.keys where Self.parent(of: key) == path { durableEntries[key] = nil }
            for (key, inode) in entries where Self.parent(of: key) == path { durableEntries[key] = inode }
        }
    }
}

/// A file of `SimulatedLogFileSystem`. `@unchecked Sendable`: its mutable state lives in the
/// file system's `Inode`, touched only under the file system's lock.
final class SimulatedFile: LogFile, @unchecked Sendable {
    let fileSystem: SimulatedLogFileSystem
    let inode: SimulatedLogFileSystem.Inode
    let path: String
    let generation: Int

    init(fileSystem: SimulatedLogFileSystem, inode: SimulatedLogFileSystem.Inode, path: String, generation: Int) {
        self.fileSystem = fileSystem
        self.inode = inode
        self.path = path
        self.generation = generation
    }

    private func alive(_ operation: String) throws(KeeperLogError) {
        guard generation == fileSystem.generation else {
            throw .io(operation: "\(operation) after a simulated crash", path: path, errno: EIO)
        }
    }

    func size() throws(KeeperLogError) -> Int64 {
        try fileSystem.lock.withLock { () throws(KeeperLogError) -> Int64 in
            try alive("fstat")
            return Int64(inode.data.count)
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(KeeperLogError) -> Int {
        try fileSystem.lock.withLock { () throws(KeeperLogError) -> Int in
            try alive("pread")
            let start = Int(offset)
            guard start < inode.data.count else { return 0 }
            let n = min(buffer.count, inode.data.count - start)
            inode.data.withUnsafeBytes { source in
                buffer.baseAddress!.copyMemory(from: source.baseAddress! + start, byteCount: n)
            }
            return n
        }
    }

    func write(_ buffers: UnsafeBufferPointer<iovec>, at offset: Int64) throws(KeeperLogError) {
        try fileSystem.lock.withLock { () throws(KeeperLogError) in
            try alive("pwritev")
            var bytes: [UInt8] = []
            for buffer in buffers where buffer.iov_len > 0 {
                bytes.append(contentsOf: UnsafeRawBufferPointer(start: buffer.iov_base, count: buffer.iov_len))
            }
            var fault: KeeperLogError?
            do throws(KeeperLogError) { try fileSystem.check(.write, path) } catch { fault = error }
            if let capacity = fileSystem.capacity {
                let growth = max(0, Int(offset) + bytes.count - inode.data.count)
                let free = max(0, capacity - fileSystem.usedBytes)
                if growth > free {
                    // Write what fits, as a device does, then report the full device.
                    bytes.removeLast(growth - free)
                    fault = fault ?? .io(operation: "simulated write (device full)", path: path, errno: ENOSPC)
                }
            }
            if fault != nil, bytes.count > 0 {
                // A failed write may still have written a part.
                bytes.removeLast(bytes.count / 2)
            }
            if !bytes.isEmpty {
                SimulatedLogFileSystem.store(bytes[...], at: Int(offset), in: &inode.data)
                inode.unsynced.append(.write(offset: Int(offset), bytes: bytes))
            }
            if let fault { throw fault }
        }
    }

    func syncData() throws(KeeperLogError) {
        try fileSystem.lock.withLock { () throws(KeeperLogError) in
            try alive("fdatasync")
            if fileSystem.holdingSyncs {
                fileSystem.syncArrivals += 1
                let ticket = fileSystem.syncArrivals
                fileSystem.syncGate.broadcast()
                while fileSystem.holdingSyncs && ticket > fileSystem.syncsReleasedThrough { fileSystem.syncGate.wait() }
                try alive("fdatasync")
            }
            do throws(KeeperLogError) {
                try fileSystem.check(.sync, path)
            } catch {
                // Linux after a writeback error: the pages are marked clean, the data is lost
                // on the way to the disk, and reads still show it.
                inode.unsynced = []
                throw error
            }
            SimulatedLogFileSystem.apply(inode.unsynced, to: &inode.durable)
            inode.unsynced = []
        }
    }

    /// Write-back without a sync promises nothing at a crash: nothing to model.
    func writeBack(_ range: Range<Int64>) throws(KeeperLogError) {
        try fileSystem.lock.withLock { () throws(KeeperLogError) in try alive("sync_file_range") }
    }

    /// Cached pages are not modelled (reads see `data` either way): the call is recorded.
    func dropCache(_ range: Range<Int64>) {
        fileSystem.lock.withLock {
            let durable = inode.unsynced.allSatisfy { change in
                switch change {
                case .truncate: return true
                case .write(let offset, let bytes):
                    return Int64(offset + bytes.count) <= range.lowerBound || Int64(offset) >= range.upperBound
                }
            }
            fileSystem.cacheDropLog.append(.init(path: path, range: range, wasDurable: durable))
        }
    }

    /// Reads always come from `data`: nothing to model.
    func prefetch(_ range: Range<Int64>) {}

    func truncate(to size: Int64) throws(KeeperLogError) {
        try fileSystem.lock.withLock { () throws(KeeperLogError) in
            try alive("ftruncate")
            try fileSystem.check(.truncate, path)
            if let capacity = fileSystem.capacity, Int(size) > inode.data.count,
                Int(size) - inode.data.count > capacity - fileSystem.usedBytes
            {
                throw .io(operation: "simulated ftruncate (device full)", path: path, errno: ENOSPC)
            }
            SimulatedLogFileSystem.resize(&inode.data, to: Int(size))
            inode.unsynced.append(.truncate(Int(size)))
        }
    }

    func close() throws(KeeperLogError) {}
}
