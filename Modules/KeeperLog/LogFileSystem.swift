#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How `LogFileSystem.open` opens a file.
public enum LogFileOpenMode: Sendable {
    case readOnly
    case readWrite
    /// Creates a new, empty file; fails if it exists.
    case createNew
}

/// An open log file: the log's seam to the disk. Production uses `PosixLogFileSystem`; tests
/// inject `SimulatedLogFileSystem`, which loses unsynced writes at a simulated crash, tears
/// writes and fails with EIO or ENOSPC on demand. The log's code is the same for both.
public protocol LogFile: AnyObject, Sendable {
    /// The path the file was opened with, for error messages.
    var path: String { get }
    /// The file's size in bytes.
    func size() throws(KeeperLogError) -> Int64
    /// Reads into `buffer` at `offset`; returns the bytes read, fewer than asked only at the end
    /// of the file.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(KeeperLogError) -> Int
    /// Writes all the bytes `buffers` point to, back to back, starting at `offset` (a gathered
    /// write: `pwritev`). Throws if any byte could not be written; some may have been.
    func write(_ buffers: UnsafeBufferPointer<iovec>, at offset: Int64) throws(KeeperLogError)
    /// Makes the written data (and the size, when it changed) durable: `fdatasync`.
    func syncData() throws(KeeperLogError)
    /// Starts write-back of `range` and waits for it, without syncing metadata or the device
    /// cache (`sync_file_range`): a hint that keeps background zero-filling from piling dirty
    /// pages onto the next fdatasync. Durability still needs `syncData`.
    func writeBack(_ range: Range<Int64>) throws(KeeperLogError)
    /// A hint that the log will not read `range` again soon: the OS may drop its clean cached
    /// pages (`posix_fadvise(DONTNEED)`; dirty pages stay until written). Nothing fails or is
    /// lost if it does not: the bytes are read from the disk when needed.
    func dropCache(_ range: Range<Int64>)
    /// A hint that the log is about to read `range`: the OS may start reading it into the page
    /// cache now, while the reader checks what came before (`posix_fadvise(WILLNEED)`).
    func prefetch(_ range: Range<Int64>)
    /// Sets the file's size.
    func truncate(to size: Int64) throws(KeeperLogError)
    /// Closes the file. Using it afterwards is a programmer error.
    func close() throws(KeeperLogError)
}

/// The directory operations the log needs.
public protocol LogFileSystem: Sendable {
    /// Creates the directory if it does not exist; returns true if it did not.
    func createDirectory(_ path: String) throws(KeeperLogError) -> Bool
    /// The names (not paths) of the directory's entries.
    func contentsOfDirectory(_ path: String) throws(KeeperLogError) -> [String]
    func open(_ path: String, mode: LogFileOpenMode) throws(KeeperLogError) -> any LogFile
    func rename(_ path: String, to newPath: String) throws(KeeperLogError)
    func remove(_ path: String) throws(KeeperLogError)
    /// Makes the directory's entries (creates, renames, removes) durable: `fsync` on the
    /// directory. Without it a crash may forget a segment that was synced (the ALICE study).
    func syncDirectory(_ path: String) throws(KeeperLogError)
}

/// The real file system, through POSIX calls.
public struct PosixLogFileSystem: LogFileSystem {
    public init() {}

    public func createDirectory(_ path: String) throws(KeeperLogError) -> Bool {
        if mkdir(path, 0o755) == 0 { return true }
        let code = errno
        if code == EEXIST { return false }
        throw .io(operation: "mkdir", path: path, errno: code)
    }

    public func contentsOfDirectory(_ path: String) throws(KeeperLogError) -> [String] {
        guard let dir = opendir(path) else { throw .io(operation: "opendir", path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw .io(operation: "readdir", path: path, errno: errno) }
                break
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public func open(_ path: String, mode: LogFileOpenMode) throws(KeeperLogError) -> any LogFile {
        let flags: Int32 = switch mode {
        case .readOnly: O_RDONLY
        case .readWrite: O_RDWR
        case .createNew: O_RDWR | O_CREAT | O_EXCL
        }
        let fd = posixOpen(path, flags | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        return PosixLogFile(fd: fd, path: path)
    }

    public func rename(_ path: String, to newPath: String) throws(KeeperLogError) {
        guard posixRename(path, newPath) == 0 else {
            throw .io(operation: "rename to \(newPath)", path: path, errno: errno)
        }
    }

    public func remove(_ path: String) throws(KeeperLogError) {
        guard unlink(path) == 0 else { throw .io(operation: "unlink", path: path, errno: errno) }
    }

    public func syncDirectory(_ path: String) throws(KeeperLogError) {
        let fd = posixOpen(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
        guard fd >= 0 else { throw .io(operation: "open directory", path: path, errno: errno) }
        let rc = fsync(fd)
        let code = errno
        guard posixClose(fd) == 0 else { throw .io(operation: "close directory", path: path, errno: errno) }
        guard rc == 0 else { throw .io(operation: "fsync directory", path: path, errno: code) }
    }
}

/// A POSIX file descriptor. Sendable because its only state is immutable: the descriptor and
/// path never change, and the positional calls (pread/pwritev) share no file offset.
final class PosixLogFile: LogFile {
    let fd: Int32
    let path: String

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    func size() throws(KeeperLogError) -> Int64 {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .io(operation: "fstat", path: path, errno: errno) }
        return Int64(info.st_size)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(KeeperLogError) -> Int {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "pread at \(offset + Int64(done))", path: path, errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    func write(_ buffers: UnsafeBufferPointer<iovec>, at offset: Int64) throws(KeeperLogError) {
        precondition(buffers.count <= maxIOVecs, "at most IOV_MAX buffers per write")
        let total = buffers.reduce(0) { $0 + $1.iov_len }
        var written = 0
        while true {
            let n = pwritev(fd, buffers.baseAddress, Int32(buffers.count), off_t(offset))
            if n >= 0 { written = n; break }
            if errno != EINTR { throw .io(operation: "pwritev at \(offset)", path: path, errno: errno) }
        }
        if written == total { return }
        // A short write (a signal, a nearly full device): continue from where it stopped, on a
        // copy of the vector so the caller's stays intact. The next call reports ENOSPC if any.
        var vector = Array(buffers)
        var first = 0
        var position = off_t(offset) + off_t(written)
        var remaining = total - written
        var advance = written
        while remaining > 0 {
            while advance > 0 {
                if vector[first].iov_len <= advance {
                    advance -= vector[first].iov_len
                    first += 1
                } else {
                    vector[first].iov_base = vector[first].iov_base.map { $0 + advance }
                    vector[first].iov_len -= advance
                    advance = 0
                }
            }
            while first < vector.count && vector[first].iov_len == 0 { first += 1 }
            let n = vector.withUnsafeBufferPointer { all in
                pwritev(fd, all.baseAddress! + first, Int32(all.count - first), position)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "pwritev at \(position)", path: path, errno: errno)
            }
            if n == 0 { throw .io(operation: "pwritev at \(position) wrote nothing", path: path, errno: EIO) }
            remaining -= n
            position += off_t(n)
            advance = n
        }
    }

    func syncData() throws(KeeperLogError) {
        #if os(Linux)
        let rc = fdatasync(fd)
        #else
        let rc = fcntl(fd, F_FULLFSYNC)
        #endif
        guard rc == 0 else { throw .io(operation: "fdatasync", path: path, errno: errno) }
    }

    func writeBack(_ range: Range<Int64>) throws(KeeperLogError) {
        #if os(Linux)
        guard let syncFileRange = syncFileRangeFunction else { return }
        // SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER
        guard syncFileRange(fd, range.lowerBound, range.upperBound - range.lowerBound, 1 | 2 | 4) == 0 else {
            throw .io(operation: "sync_file_range \(range)", path: path, errno: errno)
        }
        #endif
    }

    func dropCache(_ range: Range<Int64>) {
        #if os(Linux)
        // Advice only: an error (EINVAL on a file system without page cache) changes nothing.
        _ = posix_fadvise(fd, off_t(range.lowerBound), off_t(range.upperBound - range.lowerBound), POSIX_FADV_DONTNEED)
        #endif
    }

    func prefetch(_ range: Range<Int64>) {
        #if os(Linux)
        _ = posix_fadvise(fd, off_t(range.lowerBound), off_t(range.upperBound - range.lowerBound), POSIX_FADV_WILLNEED)
        #endif
    }

    func truncate(to size: Int64) throws(KeeperLogError) {
        guard ftruncate(fd, off_t(size)) == 0 else {
            throw .io(operation: "ftruncate to \(size)", path: path, errno: errno)
        }
    }

    func close() throws(KeeperLogError) {
        guard posixClose(fd) == 0 else { throw .io(operation: "close", path: path, errno: errno) }
    }
}

// File-scope wrappers: inside the types above, `open`, `rename` and `close` name their methods.
private func posixOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 { open(path, flags, mode) }
private func posixRename(_ from: String, _ to: String) -> Int32 { rename(from, to) }
private func posixClose(_ fd: Int32) -> Int32 { close(fd) }

/// The most buffers one pwritev takes (Linux's UIO_MAXIOV, IOV_MAX on the BSDs).
let maxIOVecs = 1024

#if os(Linux)
/// glibc's `sync_file_range`, which the Glibc module does not import (it is a GNU extension):
/// looked up once; nil if the C library lacks it, and then `writeBack` is a no-op.
private let syncFileRangeFunction: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32)? = {
    guard let symbol = dlsym(nil, "sync_file_range") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32).self)
}()
#endif
