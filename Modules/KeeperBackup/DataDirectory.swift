import Foundation
import KeeperModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The files of a SwiftKeeper data directory as `swiftkeeper serve --data-dir D
/// [--data-log-dir L]` lays them out: `D/store` (the LMDB store), `D/database-id` (hex), and
/// `L/log` (the write-ahead log; L defaults to D).
public struct DataDirectory: Sendable {
    public var dataDir: String
    public var dataLogDir: String

    public init(dataDir: String, dataLogDir: String? = nil) {
        self.dataDir = dataDir
        self.dataLogDir = dataLogDir ?? dataDir
    }

    public var storePath: String { dataDir + "/store" }
    public var logPath: String { dataLogDir + "/log" }
    public var databaseIDPath: String { dataDir + "/database-id" }
    /// LMDB's lock file: every process with the store open holds a shared fcntl lock on its
    /// first byte (liblmdb's `mdb_env_excl_lock`/`mdb_env_share_locks`).
    public var lockFilePath: String { storePath + "/lock.mdb" }

    /// The database id the server wrote (hex digits), shared by the store and every log segment.
    public func databaseID() throws -> UInt64 {
        let text: String
        do { text = try String(contentsOfFile: databaseIDPath, encoding: .utf8) } catch {
            throw BackupError.badDataDirectory(path: dataDir, detail: "no readable database-id file (\(error)): is this a SwiftKeeper data directory?")
        }
        guard let id = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines), radix: 16) else {
            throw BackupError.badDataDirectory(path: databaseIDPath, detail: "not a database id (hex digits expected)")
        }
        return id
    }

    /// Writes `database-id` as the server does (hex, newline), durably.
    static func writeDatabaseID(_ id: UInt64, to path: String) throws {
        try FileSystem.writeDurably(Array((String(id, radix: 16) + "\n").utf8), to: path)
    }

    /// Throws `BackupError.inUse` when some process holds the store open (a running server,
    /// or a tool). The probe is LMDB's own: a process with the environment open holds a shared
    /// fcntl (POSIX record) lock on byte 0 of `lock.mdb`; F_GETLK reports a conflicting lock
    /// and its owner's pid without taking anything. A crashed server holds no lock (the kernel
    /// drops it with the process), so a stale pid file cannot block a restore.
    ///
    /// Caveat (POSIX locks): closing any descriptor of `lock.mdb` drops every lock *this*
    /// process holds on it, so call this before this process opens the store, never while it
    /// has it open.
    public func checkNotInUse() throws {
        let fd = open(lockFilePath, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return }  // never opened by LMDB: nobody can hold it
            throw BackupError.io(operation: "open", path: lockFilePath, errno: errno)
        }
        defer { _ = close(fd) }  // read-only descriptor: nothing to lose on close
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = 0
        lock.l_len = 1
        guard fcntl(fd, F_GETLK, &lock) == 0 else {
            throw BackupError.io(operation: "fcntl(F_GETLK)", path: lockFilePath, errno: errno)
        }
        if lock.l_type != Int16(F_UNLCK) {
            throw BackupError.inUse(path: lockFilePath, pid: lock.l_pid)
        }
    }
}

/// Small file-system helpers with checked results.
enum FileSystem {
    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The names in `path` (without . and ..); nil when it does not exist.
    static func contents(_ path: String) throws -> [String]? {
        guard let dir = opendir(path) else {
            if errno == ENOENT { return nil }
            throw BackupError.io(operation: "opendir", path: path, errno: errno)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o750) != 0 && errno != EEXIST {
            throw BackupError.io(operation: "mkdir", path: path, errno: errno)
        }
    }

    static func makeDirectories(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            try makeDirectory(current)
        }
    }

    static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw BackupError.io(operation: "open", path: path, errno: errno) }
        defer { _ = close(fd) }
        guard fsync(fd) == 0 else { throw BackupError.io(operation: "fsync", path: path, errno: errno) }
    }

    static func syncFile(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BackupError.io(operation: "open", path: path, errno: errno) }
        defer { _ = close(fd) }
        guard fsync(fd) == 0 else { throw BackupError.io(operation: "fsync", path: path, errno: errno) }
    }

    static func removeTree(_ path: String) throws {
        guard exists(path) else { return }
        do { try FileManager.default.removeItem(atPath: path) } catch {
            throw BackupError.io(operation: "remove \(error)", path: path, errno: errno)
        }
    }

    /// Removes what a failed operation left behind. Its own failure must not hide the error
    /// being reported, so it is written to standard error for the operator to clean up.
    static func removeAfterFailure(_ path: String) {
        do { try removeTree(path) } catch {
            FileHandle.standardError.write(Data("warning: could not remove \(path) after the failure: \(error)\n".utf8))
        }
    }

    static func rename(_ from: String, _ to: String) throws {
        guard posixRename(from, to) == 0 else { throw BackupError.io(operation: "rename to \(to)", path: from, errno: errno) }
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Writes `bytes` to a temporary file, fsyncs it, renames it to `path`, fsyncs the directory.
    static func writeDurably(_ bytes: [UInt8], to path: String) throws {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw BackupError.io(operation: "create", path: temporary, errno: errno) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { posixWrite(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                _ = close(fd)
                throw BackupError.io(operation: "write", path: temporary, errno: e)
            }
            done += n
        }
        guard fsync(fd) == 0 else {
            let e = errno
            _ = close(fd)
            throw BackupError.io(operation: "fsync", path: temporary, errno: e)
        }
        guard close(fd) == 0 else { throw BackupError.io(operation: "close", path: temporary, errno: errno) }
        try rename(temporary, path)
        try syncDirectory(parent(of: path))
    }

    /// A new empty directory `<parent>/<prefix>.<pid>.<n>` for staging work.
    static func makeTemporaryDirectory(in parent: String, prefix: String) throws -> String {
        var n = 0
        while true {
            let path = parent + "/" + prefix + ".\(getpid()).\(n)"
            if mkdir(path, 0o750) == 0 { return path }
            guard errno == EEXIST else { throw BackupError.io(operation: "mkdir", path: path, errno: errno) }
            n += 1
        }
    }

    /// Copies a file in chunks into a backup writer.
    static func copy(file path: String, into writer: BackupFileWriter) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BackupError.io(operation: "open", path: path, errno: errno) }
        defer { _ = close(fd) }
        var buffer = [UInt8](repeating: 0, count: BackupFileFormat.chunkBytes)
        while true {
            let n = buffer.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw BackupError.io(operation: "read", path: path, errno: errno)
            }
            if n == 0 { return }
            try buffer.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
        }
    }
}

// The C calls under names no Swift member shadows (FileSystem.rename, BackupFileWriter.write),
// for Glibc and Darwin alike.
func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int { write(fd, buffer, count) }
func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int { read(fd, buffer, count) }
func posixRename(_ from: String, _ to: String) -> Int32 { rename(from, to) }
