import KeeperLog
import KeeperModel
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// KeeperLog as the replica's log: durability events are forwarded to the handler the replica
/// installs when it starts (the log is opened, and recovered, before the replica exists).
final class KeeperLogAdapter: ReplicaLog, Sendable {
    private let current: Mutex<KeeperLog>
    private let handler: HandlerSlot
    let configuration: LogConfiguration

    /// The replica's event handler, installed after the log is open. The closure lives in a
    /// final class: reading a closure out of a Mutex re-wraps it in one more reabstraction
    /// thunk on every call, which grew each durable event's cost and finally overflowed the
    /// stack under sustained load.
    final class Handler: Sendable {
        let call: @Sendable (LogEvent) -> Void
        init(_ call: @escaping @Sendable (LogEvent) -> Void) { self.call = call }
    }

    final class HandlerSlot: Sendable {
        let value = Mutex<Handler?>(nil)
    }

    init(configuration: LogConfiguration) throws {
        let handler = HandlerSlot()
        self.configuration = configuration
        self.current = Mutex(try Self.open(configuration, handler))
        self.handler = handler
    }

    private static func open(_ configuration: LogConfiguration, _ handler: HandlerSlot) throws -> KeeperLog {
        try KeeperLog.open(configuration) { event in
            handler.value.withLock { $0 }?.call(event)
        }
    }

    /// The log in use (replaced only by `reset`, on the replica's thread).
    var log: KeeperLog { current.withLock { $0 } }

    func append(zxid: Zxid, payload: [UInt8]) throws { try log.append(zxid: zxid, payload: payload, wake: false) }

    func flush(inline: Bool) { log.flush(inline: inline) }

    func flush(overlappingSyncOf minimumRecords: Int, _ meanwhile: (Zxid, @escaping () throws -> Void) -> Void) -> Bool {
        log.flush(overlappingSyncOf: minimumRecords, meanwhile)
    }

    func start(onDurable: @escaping @Sendable (Zxid) -> Void, onFailure: @escaping @Sendable (any Error) -> Void) throws {
        let installed = Handler { event in
            switch event {
            case .durable(let zxid): onDurable(zxid)
            case .failed(_, let error): onFailure(error)
            }
        }
        handler.value.withLock { $0 = installed }
        // Anything that became durable before the handler was installed.
        onDurable(log.lastDurableZxid)
    }

    var lastZxid: Zxid { log.lastAppendedZxid }

    var lastDurableZxid: Zxid { log.lastDurableZxid }

    var oldestZxid: Zxid { log.segments().first?.previousZxid ?? log.lastAppendedZxid }

    func forEach(after zxid: Zxid, _ body: (Zxid, [UInt8]) throws -> Void) throws {
        guard let next = zxid.next else { return }
        let reader = log.read(from: next)
        while let record = try reader.next() {
            if record.zxid > zxid { try body(record.zxid, record.payload) }
        }
    }

    func truncate(after zxid: Zxid) throws { try log.truncate(after: zxid) }

    /// Empties the log (after a SNAP installed a store that is ahead of, or diverges from,
    /// every record in it): the records are written out, the log is closed, its directory moved
    /// aside and removed, and an empty log opened in its place.
    func reset() throws {
        try current.withLock { log in
            try log.close()
            let directory = configuration.directory
            let aside = directory + ".discarded"
            try removeDirectory(aside)
            guard rename(directory, aside) == 0 else {
                throw ServerStartError(message: "cannot move \(directory) aside: \(String(cString: strerror(errno)))")
            }
            try syncDirectory(parentDirectory(of: directory))
            log = try Self.open(configuration, handler)
            try removeDirectory(aside)
        }
    }

    func close() throws { try log.close() }
}

/// The directory holding `path`.
func parentDirectory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

/// The names in a directory (without "." and ".."); nil when it does not exist.
func directoryEntries(_ path: String) throws -> [String]? {
    guard let dir = opendir(path) else {
        if errno == ENOENT { return nil }
        throw ServerStartError(message: "cannot open directory \(path): \(String(cString: strerror(errno)))")
    }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// Removes a file; nothing when it is missing.
func removeFile(_ path: String) throws {
    guard unlink(path) == 0 || errno == ENOENT else {
        throw ServerStartError(message: "cannot remove \(path): \(String(cString: strerror(errno)))")
    }
}

/// Removes a directory of plain files (a log or store directory); nothing when it is missing.
func removeDirectory(_ path: String) throws {
    guard let names = try directoryEntries(path) else { return }
    for name in names { try removeFile(path + "/" + name) }
    guard rmdir(path) == 0 || errno == ENOENT else {
        throw ServerStartError(message: "cannot remove directory \(path): \(String(cString: strerror(errno)))")
    }
}
