import CZlib
import KeeperModel
import KeeperWire
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// The store snapshot a leader sends after SNAP: the store's compacted LMDB copy at the SNAP's
/// zxid (`KeeperStore.snapshot(toFileDescriptor:)`, taken on the replica thread so nothing is
/// applied meanwhile), read from a temporary file and sent as SNAP packets whose data is one
/// independently deflated chunk each: `[u32 raw length][u32 CRC32 of the raw bytes][deflate]`.
/// A SNAP packet with empty data ends the stream. Neither side ever holds more than one chunk
/// in memory; the learner writes each chunk to a file it fsyncs before installing it.
enum SnapshotStream {
    /// Raw bytes per chunk.
    static let chunkSize = 256 * 1024
    static let headerSize = 8

    static func crc(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        UInt32(crc32(0, bytes.baseAddress?.assumingMemoryBound(to: Bytef.self), uInt(bytes.count)))
    }

    /// One chunk packet's data.
    static func encodeChunk(_ raw: UnsafeRawBufferPointer) -> ByteBuffer {
        var out = [UInt8](repeating: 0, count: Int(compressBound(uLong(raw.count))))
        var length = uLongf(out.count)
        let rc = out.withUnsafeMutableBufferPointer { o in
            compress2(o.baseAddress, &length, raw.baseAddress?.assumingMemoryBound(to: Bytef.self), uLong(raw.count), 1)
        }
        // compressBound sized the output: anything but Z_OK is zlib running out of memory.
        precondition(rc == Z_OK, "compress2 failed with zlib code \(rc)")
        var buffer = ByteBuffer()
        buffer.reserveCapacity(headerSize + Int(length))
        buffer.writeInteger(UInt32(raw.count))
        buffer.writeInteger(crc(raw))
        out.withUnsafeBytes { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: $0[..<Int(length)])) }
        return buffer
    }

    /// The raw bytes of one chunk packet's data, checked against its CRC.
    static func decodeChunk(_ data: ByteBuffer, maxRaw: Int = chunkSize) throws -> [UInt8] {
        var d = data
        guard let rawLength = d.readInteger(as: UInt32.self), let expected = d.readInteger(as: UInt32.self) else {
            throw PeerProtocolError("snapshot chunk shorter than its \(headerSize)-byte header")
        }
        guard Int(rawLength) <= maxRaw else {
            throw PeerProtocolError("snapshot chunk claims \(rawLength) raw bytes, more than the \(maxRaw) a chunk holds")
        }
        var raw = [UInt8](repeating: 0, count: Int(rawLength))
        var length = uLongf(rawLength)
        let rc = raw.withUnsafeMutableBufferPointer { out in
            d.withUnsafeReadableBytes { input in
                uncompress(out.baseAddress, &length, input.baseAddress?.assumingMemoryBound(to: Bytef.self), uLong(input.count))
            }
        }
        guard rc == Z_OK, length == uLongf(rawLength) else {
            throw PeerProtocolError("snapshot chunk does not inflate to its \(rawLength) bytes (zlib \(rc))")
        }
        let found = raw.withUnsafeBytes { crc($0) }
        guard found == expected else {
            throw PeerProtocolError("snapshot chunk CRC32 mismatch: expected \(expected), found \(found)")
        }
        return raw
    }
}

/// Reads a snapshot file chunk by chunk for the sender; the file is removed when done.
final class SnapshotFileSource: @unchecked Sendable {
    // @unchecked Sendable: created on the replica thread and handed over once to a PeerLink's
    // queue; from then on only that link's `pump` (on its channel's event loop) reads it, and
    // `release` (idempotent) runs either there or when the queue is dropped at close, after
    // which nothing reads it.
    let path: String
    let zxid: Zxid
    private let fd: Int32
    private(set) var finished = false

    init(path: String, zxid: Zxid) throws {
        self.path = path
        self.zxid = zxid
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ServerStartError(message: "cannot open snapshot \(path): \(String(cString: strerror(errno)))") }
    }

    /// The next packet of the stream: a chunk, then the empty end marker, then nil.
    func nextPacket() throws -> QuorumPacket? {
        guard !finished else { return nil }
        var raw = [UInt8](repeating: 0, count: SnapshotStream.chunkSize)
        var filled = 0
        while filled < raw.count {
            let n = raw.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ServerStartError(message: "cannot read snapshot \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            filled += n
        }
        if filled == 0 {
            finished = true
            release()
            return QuorumPacket(type: .snap, zxid: zxid, data: ByteBuffer())
        }
        let data = raw.withUnsafeBytes { SnapshotStream.encodeChunk(UnsafeRawBufferPointer(rebasing: $0[..<filled])) }
        return QuorumPacket(type: .snap, zxid: zxid, data: data)
    }

    private var released = false
    /// Closes and removes the file (also when the learner went away mid-stream).
    func release() {
        guard !released else { return }
        released = true
        close(fd)
        unlink(path)
    }

    deinit { release() }
}

/// Collects a snapshot stream into a file on the learner.
final class SnapshotFileSink {
    let path: String
    let zxid: Zxid
    private let fd: Int32
    private(set) var bytes: Int64 = 0

    init(path: String, zxid: Zxid) throws {
        self.path = path
        self.zxid = zxid
        unlink(path)
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw ServerStartError(message: "cannot create \(path): \(String(cString: strerror(errno)))") }
    }

    func append(_ raw: [UInt8]) throws {
        var done = 0
        while done < raw.count {
            let n = raw.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ServerStartError(message: "cannot write \(path): \(String(cString: strerror(errno)))")
            }
            done += n
        }
        bytes += Int64(raw.count)
    }

    /// Makes the file durable and closes it.
    func finish() throws {
        guard fsync(fd) == 0 else { throw ServerStartError(message: "cannot fsync \(path): \(String(cString: strerror(errno)))") }
        close(fd)
    }

    func abandon() {
        close(fd)
        unlink(path)
    }
}
