import CZlib
import KeeperModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The container every backup data file uses: independently deflated frames, each with its
/// own CRC32, so a file is written and read as a stream (never whole in memory) and damage is
/// reported with the byte offset of the frame that holds it.
///
/// ```
/// header  16 bytes: "SKBACKUP", u32 format version (1), u32 content kind
/// frame   16 bytes: u32 compressed length (>0), u32 raw length (1...chunkBytes),
///                   u32 crc32 of the compressed bytes, u32 crc32 of the raw bytes;
///                   then the compressed bytes (a zlib stream of the raw chunk)
/// end     16 bytes: u32 0, u32 0, u64 total raw length; nothing may follow
/// ```
/// All integers little-endian. The manifest also records each file's size and CRC32, so a
/// file cut at a frame boundary or swapped for another is caught too.
public enum BackupFileFormat {
    static let magic: [UInt8] = Array("SKBACKUP".utf8)
    static let version: UInt32 = 1
    static let headerSize = 16
    static let frameHeaderSize = 16
    /// The most raw bytes one frame holds: bounds the memory of writing and reading a file.
    public static let chunkBytes = 1 << 20
    /// zlib's level (1: fastest). LMDB pages and txn records compress well even at level 1,
    /// and a backup should not be bound by the CPU.
    public static let compressionLevel: Int32 = 1

    /// What a file holds (its header says so, so one file cannot stand in for another).
    public enum Content: UInt32, Sendable {
        /// A compacted LMDB store file (`KeeperStore.snapshot`).
        case store = 1
        /// Txn records: i64 zxid, u32 length, that many bytes of TxnCodec encoding; repeated.
        case txns = 2
    }

    static func crc(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return seed }
        return UInt32(truncatingIfNeeded: crc32_z(UInt(seed), base.assumingMemoryBound(to: UInt8.self), bytes.count))
    }

    static func put32(_ value: UInt32, into bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    static func put64(_ value: UInt64, into bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    static func get32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[at + i]) << (8 * UInt32(i)) }
        return v
    }

    static func get64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
        return v
    }
}

/// What the manifest records of one written file.
public struct BackupFileSummary: Hashable, Sendable, Codable {
    /// The file name inside the backup directory.
    public var name: String
    /// Its size in bytes.
    public var bytes: Int64
    /// The bytes it holds once decompressed.
    public var rawBytes: Int64
    /// CRC32 (zlib's) of the whole file as stored.
    public var crc32: UInt32
}

/// Writes one backup data file: the frames `BackupFrameEncoder` makes, written as they come.
/// `finish` writes the end frame, fsyncs and closes; a writer dropped without `finish` leaves
/// an incomplete file that readers reject (the caller removes it).
final class BackupFileWriter {
    let path: String
    let name: String
    private let sink: Sink
    private var encoder: BackupFrameEncoder!

    /// The file descriptor and the running size and CRC32 of what was written.
    final class Sink {
        let path: String
        var fd: Int32
        var bytesWritten: Int64 = 0
        var crc: UInt32 = 0

        init(path: String, fd: Int32) {
            self.path = path
            self.fd = fd
        }

        func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < bytes.count {
                let n = posixWrite(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw BackupError.io(operation: "write", path: path, errno: errno)
                }
                done += n
            }
            crc = BackupFileFormat.crc(bytes, seed: crc)
            bytesWritten += Int64(bytes.count)
        }

        /// Creates `path` (which must not exist) for writing.
        static func create(_ path: String) throws -> Sink {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw BackupError.io(operation: "create", path: path, errno: errno) }
            return Sink(path: path, fd: fd)
        }

        func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try writeAll($0) } }

        /// fsyncs and closes the file.
        func finish() throws {
            guard fsync(fd) == 0 else { throw BackupError.io(operation: "fsync", path: path, errno: errno) }
            let rc = close(fd)
            fd = -1
            guard rc == 0 else { throw BackupError.io(operation: "close", path: path, errno: errno) }
        }

        deinit {
            if fd >= 0 {
                // Only reached when `finish` was not: the caller is abandoning (and removing) the
                // file after an earlier error, which is the one it reports.
                _ = close(fd)
            }
        }
    }

    init(directory: String, name: String, content: BackupFileFormat.Content) throws {
        self.name = name
        self.path = directory + "/" + name
        let sink = try Sink.create(path)
        self.sink = sink
        encoder = try BackupFrameEncoder(content: content) { bytes in
            try bytes.withUnsafeBytes { try sink.writeAll($0) }
        }
    }

    var bytesWritten: Int64 { sink.bytesWritten }
    var rawBytes: Int64 { encoder.rawBytes }

    /// Appends raw bytes to the file's content.
    func write(_ bytes: UnsafeRawBufferPointer) throws { try encoder.write(bytes) }

    func write(_ bytes: [UInt8]) throws { try encoder.write(bytes) }

    /// Writes the last frame and the end frame, fsyncs and closes the file.
    func finish() throws -> BackupFileSummary {
        try encoder.finish()
        try sink.finish()
        return BackupFileSummary(name: name, bytes: sink.bytesWritten, rawBytes: encoder.rawBytes, crc32: sink.crc)
    }
}

/// Reads a backup data file frame by frame, checking every frame's CRC32s and lengths, the
/// end frame, and (when given) the size and CRC32 the manifest recorded. Every failure names
/// the file and the byte offset.
final class BackupFileReader {
    let path: String
    private let fd: Int32
    private let expected: BackupFileSummary?
    /// The file offset of the next frame.
    private(set) var offset: Int64 = 0
    /// The file offset of the frame the last chunk came from.
    private(set) var chunkOffset: Int64 = 0
    private var crc: UInt32 = 0
    private var rawBytes: Int64 = 0
    private(set) var finished = false

    init(path: String, content: BackupFileFormat.Content, expected: BackupFileSummary?) throws {
        self.path = path
        self.expected = expected
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BackupError.io(operation: "open", path: path, errno: errno) }
        if let expected {
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw BackupError.io(operation: "fstat", path: path, errno: errno) }
            if Int64(st.st_size) < expected.bytes {
                throw BackupError.truncated(file: path, offset: Int64(st.st_size), detail: "the manifest records \(expected.bytes) bytes")
            }
            if Int64(st.st_size) > expected.bytes {
                throw BackupError.corrupt(file: path, offset: expected.bytes, detail: "\(Int64(st.st_size) - expected.bytes) bytes more than the manifest records")
            }
        }
        let header = try readExactly(BackupFileFormat.headerSize, what: "the file header")
        guard Array(header[0..<8]) == BackupFileFormat.magic else {
            throw BackupError.corrupt(file: path, offset: 0, detail: "not a SwiftKeeper backup file (bad magic)")
        }
        let version = BackupFileFormat.get32(header, 8)
        guard version == BackupFileFormat.version else {
            throw BackupError.corrupt(file: path, offset: 8, detail: "format version \(version), this program reads \(BackupFileFormat.version)")
        }
        let kind = BackupFileFormat.get32(header, 12)
        guard kind == content.rawValue else {
            throw BackupError.corrupt(file: path, offset: 12, detail: "content kind \(kind), expected \(content.rawValue)")
        }
    }

    deinit {
        // A read-only descriptor loses nothing on close.
        _ = close(fd)
    }

    private func readExactly(_ count: Int, what: String) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress! + done, count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw BackupError.io(operation: "read", path: path, errno: errno)
            }
            if n == 0 {
                throw BackupError.truncated(file: path, offset: offset + Int64(done), detail: "the file ends inside \(what) (\(count) bytes from offset \(offset))")
            }
            done += n
        }
        out.withUnsafeBytes { crc = BackupFileFormat.crc($0, seed: crc) }
        offset += Int64(count)
        return out
    }

    /// The next chunk of raw content, or nil after the end frame (checked).
    func nextChunk() throws -> [UInt8]? {
        if finished { return nil }
        let frameOffset = offset
        chunkOffset = frameOffset
        let header = try readExactly(BackupFileFormat.frameHeaderSize, what: "a frame header")
        let compressedLength = Int(BackupFileFormat.get32(header, 0))
        let rawLength = Int(BackupFileFormat.get32(header, 4))
        if compressedLength == 0 && rawLength == 0 {
            let total = Int64(bitPattern: BackupFileFormat.get64(header, 8))
            guard total == rawBytes else {
                throw BackupError.corrupt(file: path, offset: frameOffset + 8, detail: "end frame records \(total) raw bytes, the frames hold \(rawBytes)")
            }
            var probe: UInt8 = 0
            let n = posixRead(fd, &probe, 1)
            if n < 0 { throw BackupError.io(operation: "read", path: path, errno: errno) }
            if n > 0 { throw BackupError.corrupt(file: path, offset: offset, detail: "bytes after the end frame") }
            if let expected, expected.crc32 != crc {
                throw BackupError.corrupt(file: path, offset: 0, detail: "file CRC32 0x\(String(crc, radix: 16)) but the manifest records 0x\(String(expected.crc32, radix: 16)) (every frame checked: the file was replaced)")
            }
            finished = true
            return nil
        }
        let bound = Int(compressBound(UInt(BackupFileFormat.chunkBytes)))
        guard compressedLength > 0, compressedLength <= bound, rawLength > 0, rawLength <= BackupFileFormat.chunkBytes else {
            throw BackupError.corrupt(file: path, offset: frameOffset, detail: "frame header with compressed length \(compressedLength), raw length \(rawLength)")
        }
        let compressed = try readExactly(compressedLength, what: "a frame of \(compressedLength) compressed bytes")
        let compressedCRC = compressed.withUnsafeBytes { BackupFileFormat.crc($0) }
        guard compressedCRC == BackupFileFormat.get32(header, 8) else {
            throw BackupError.corrupt(file: path, offset: frameOffset, detail: "frame CRC32 mismatch (frame of \(compressedLength) bytes at \(frameOffset + 16))")
        }
        var raw = [UInt8](repeating: 0, count: rawLength)
        var length = UInt(rawLength)
        let rc = raw.withUnsafeMutableBufferPointer { out in
            compressed.withUnsafeBufferPointer { input in
                uncompress(out.baseAddress, &length, input.baseAddress, UInt(input.count))
            }
        }
        guard rc == Z_OK, Int(length) == rawLength,
              raw.withUnsafeBytes({ BackupFileFormat.crc($0) }) == BackupFileFormat.get32(header, 12)
        else {
            throw BackupError.corrupt(file: path, offset: frameOffset, detail: "frame does not inflate to its \(rawLength) bytes (zlib \(rc))")
        }
        rawBytes += Int64(rawLength)
        return raw
    }
}

/// Writes txn records into a `.txns` backup file.
final class TxnStreamWriter {
    let file: BackupFileWriter
    private(set) var count = 0
    private(set) var first: Zxid?
    private(set) var last: Zxid?
    init(_ file: BackupFileWriter) { self.file = file }

    func append(zxid: Zxid, payload: UnsafeRawBufferPointer) throws {
        var header: [UInt8] = []
        header.reserveCapacity(12)
        BackupFileFormat.put64(UInt64(bitPattern: zxid.rawValue), into: &header)
        BackupFileFormat.put32(UInt32(payload.count), into: &header)
        try file.write(header)
        try file.write(payload)
        count += 1
        if first == nil { first = zxid }
        last = zxid
    }
}

/// Reads the txn records of a `.txns` backup file, across frame boundaries.
final class TxnStreamReader {
    let file: BackupFileReader
    private var buffer: [UInt8] = []
    private var position = 0
    /// Longest record payload accepted: a larger length is damage, not a record.
    static let maxPayload = 64 << 20

    init(_ file: BackupFileReader) { self.file = file }

    private func fill(_ count: Int) throws -> Bool {
        while buffer.count - position < count {
            guard let chunk = try file.nextChunk() else { return false }
            buffer.removeSubrange(0..<position)
            position = 0
            buffer.append(contentsOf: chunk)
        }
        return true
    }

    /// The next record, or nil at the end of the file.
    func next() throws -> (zxid: Zxid, payload: [UInt8])? {
        guard try fill(12) else {
            if buffer.count > position {
                throw BackupError.corrupt(file: file.path, offset: file.chunkOffset, detail: "\(buffer.count - position) bytes of a record header at the end of the content")
            }
            return nil
        }
        let zxid = Zxid(Int64(bitPattern: BackupFileFormat.get64(buffer, position)))
        let length = Int(BackupFileFormat.get32(buffer, position + 8))
        guard length <= TxnStreamReader.maxPayload else {
            throw BackupError.corrupt(file: file.path, offset: file.chunkOffset, detail: "record \(zxid) claims \(length) bytes")
        }
        guard try fill(12 + length) else {
            throw BackupError.corrupt(file: file.path, offset: file.chunkOffset, detail: "record \(zxid) of \(length) bytes cut by the end of the content")
        }
        let payload = Array(buffer[(position + 12)..<(position + 12 + length)])
        position += 12 + length
        return (zxid, payload)
    }
}
