#if canImport(Glibc)
    import Glibc
#endif

/// ZooKeeper's `acceptedEpoch` and `currentEpoch` files in the data directory: one decimal
/// number each, replaced atomically (write, fsync, rename, fsync the directory) so a crash
/// leaves the old value or the new one, never a torn one. ZAB's safety rests on them: a server
/// never acknowledges an epoch it could forget.
struct EpochFiles {
    let directory: String

    var acceptedPath: String { directory + "/acceptedEpoch" }
    var currentPath: String { directory + "/currentEpoch" }

    func load() throws -> (accepted: UInt32, current: UInt32) {
        let accepted = try readEpoch(acceptedPath) ?? 0
        let current = try readEpoch(currentPath) ?? 0
        guard current <= accepted else {
            throw ServerStartError(
                message: "\(currentPath) holds epoch \(current), after \(acceptedPath)'s \(accepted): "
                    + "the epoch files are inconsistent; restore this server's data directory or wipe it so it resyncs from its peers")
        }
        return (accepted, current)
    }

    /// Loads the epochs, first recording `epoch` as accepted and current when the data holds
    /// txns of an epoch the files have no record of (a restored or imported data directory, or
    /// one from before epoch files): the next epoch is then above every zxid the data holds.
    func load(recording epoch: UInt32) throws -> (accepted: UInt32, current: UInt32) {
        var (accepted, current) = try load()
        guard current < epoch else { return (accepted, current) }
        if accepted < epoch {
            accepted = epoch
            try storeAccepted(accepted)
        }
        current = epoch
        try storeCurrent(current)
        return (accepted, current)
    }

    func storeAccepted(_ epoch: UInt32) throws { try writeEpoch(epoch, to: acceptedPath) }
    func storeCurrent(_ epoch: UInt32) throws { try writeEpoch(epoch, to: currentPath) }

    private func readEpoch(_ path: String) throws -> UInt32? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw ServerStartError(message: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 32)
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n >= 0 else { throw ServerStartError(message: "cannot read \(path): \(String(cString: strerror(errno)))") }
        let text = String(decoding: bytes[0..<n], as: UTF8.self).trimmingWhitespace()
        guard let value = UInt32(text) else {
            throw ServerStartError(message: "\(path): '\(text)' is not an epoch (a decimal number up to \(UInt32.max))")
        }
        return value
    }

    private func writeEpoch(_ epoch: UInt32, to path: String) throws {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw ServerStartError(message: "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        let text = Array("\(epoch)\n".utf8)
        let written = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == text.count, synced == 0 else {
            throw ServerStartError(message: "cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        guard rename(temporary, path) == 0 else {
            throw ServerStartError(message: "cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))")
        }
        try syncDirectory(directory)
    }
}

/// fsyncs a directory so a rename or create in it survives a crash.
func syncDirectory(_ path: String) throws {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw ServerStartError(message: "cannot open directory \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw ServerStartError(message: "cannot fsync directory \(path): \(String(cString: strerror(errno)))") }
}
