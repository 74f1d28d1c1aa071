#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `unsynced` file of a `.checkpointed` store: present (and durable) whenever commits
/// made since the last `sync()` may not be on disk, holding the boot id of the system that
/// made them. Found at open with the same boot id, only the process died: the page cache
/// kept every commit. Found with another boot id (or where no boot id is known), the OS
/// stopped with writes pending and the file may be torn.
struct UnsyncedMarker {
    static let fileName = "unsynced"
    let directory: String
    var path: String { directory + "/" + UnsyncedMarker.fileName }

    /// The kernel's id of this boot (Linux); nil where there is none.
    static func currentBootID() -> String? {
        #if os(Linux)
        let fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY)
        guard fd >= 0 else { return nil }
        // Closing a descriptor opened read-only cannot lose data; its result is not needed.
        defer { _ = close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return String(decoding: buffer[..<n], as: UTF8.self).trimmingWhitespace()
        #else
        return nil
        #endif
    }

    /// The boot id recorded in the marker, "" if it is empty, nil if there is no marker.
    func recordedBootID() throws(StoreError) -> String? {
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw .io(operation: "open", path: path, errno: errno)
        }
        // Closing a descriptor opened read-only cannot lose data; its result is not needed.
        defer { _ = close(fd) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { throw .io(operation: "read", path: path, errno: errno) }
        return String(decoding: buffer[..<n], as: UTF8.self).trimmingWhitespace()
    }

    /// Creates the marker durably (file and directory entry fsynced) before any unsynced
    /// commit can reach the disk.
    func create() throws(StoreError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o640)
        if fd < 0 { throw .io(operation: "open", path: path, errno: errno) }
        let bytes = Array((UnsyncedMarker.currentBootID() ?? "").utf8)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n != bytes.count {
            let e = errno
            _ = close(fd)  // the write error is the one to report
            throw .io(operation: "write", path: path, errno: e)
        }
        if fsync(fd) != 0 {
            let e = errno
            _ = close(fd)  // the fsync error is the one to report
            throw .io(operation: "fsync", path: path, errno: e)
        }
        if close(fd) != 0 { throw .io(operation: "close", path: path, errno: errno) }
        try syncDirectory()
    }

    /// Removes the marker after a successful `mdb_env_sync`.
    func remove() throws(StoreError) {
        if unlink(path) != 0 && errno != ENOENT { throw .io(operation: "unlink", path: path, errno: errno) }
        try syncDirectory()
    }

    func syncDirectory() throws(StoreError) {
        let fd = open(directory, O_RDONLY)
        if fd < 0 { throw .io(operation: "open", path: directory, errno: errno) }
        // The fsync below is what matters; closing the read-only directory descriptor
        // cannot lose data.
        defer { _ = close(fd) }
        if fsync(fd) != 0 { throw .io(operation: "fsync", path: directory, errno: errno) }
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
