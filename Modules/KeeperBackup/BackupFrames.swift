import CZlib
import KeeperModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Encodes content into the backup file format (`BackupFileFormat`) as a stream of byte
/// blocks: the header at once, a frame per `BackupFileFormat.chunkBytes` of content, the end
/// frame from `finish`. The file writer sends the blocks to a file; the server's admin
/// endpoints send the very same bytes over HTTP, so what a client receives is a backup file
/// as it will be stored, checked frame by frame on the way.
public final class BackupFrameEncoder {
    private let emit: ([UInt8]) throws -> Void
    private var chunk: [UInt8] = []
    private var compressed: [UInt8]
    /// Content bytes encoded so far (the frames emitted; a partial chunk is not counted).
    public private(set) var rawBytes: Int64 = 0
    /// Encoded bytes emitted so far.
    public private(set) var encodedBytes: Int64 = 0
    private var finished = false

    /// Emits the file header through `emit` at once.
    public init(content: BackupFileFormat.Content, emit: @escaping ([UInt8]) throws -> Void) throws {
        self.emit = emit
        chunk.reserveCapacity(BackupFileFormat.chunkBytes)
        compressed = [UInt8](repeating: 0, count: Int(compressBound(UInt(BackupFileFormat.chunkBytes))))
        var header = BackupFileFormat.magic
        BackupFileFormat.put32(BackupFileFormat.version, into: &header)
        BackupFileFormat.put32(content.rawValue, into: &header)
        try send(header)
    }

    private func send(_ bytes: [UInt8]) throws {
        try emit(bytes)
        encodedBytes += Int64(bytes.count)
    }

    /// Appends content bytes; emits a frame whenever a chunk fills.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(!finished, "write after finish")
        var rest = bytes
        while !rest.isEmpty {
            let take = min(rest.count, BackupFileFormat.chunkBytes - chunk.count)
            chunk.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[..<take]))
            rest = UnsafeRawBufferPointer(rebasing: rest[take...])
            if chunk.count == BackupFileFormat.chunkBytes { try flushChunk() }
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Appends one txn record (`BackupFileFormat.Content.txns`): i64 zxid, u32 length, payload.
    public func writeRecord(zxid: Zxid, payload: UnsafeRawBufferPointer) throws {
        var header: [UInt8] = []
        header.reserveCapacity(12)
        BackupFileFormat.put64(UInt64(bitPattern: zxid.rawValue), into: &header)
        BackupFileFormat.put32(UInt32(payload.count), into: &header)
        try write(header)
        try write(payload)
    }

    private func flushChunk() throws {
        guard !chunk.isEmpty else { return }
        var length = UInt(compressed.count)
        let rc = compressed.withUnsafeMutableBufferPointer { out in
            chunk.withUnsafeBufferPointer { input in
                compress2(out.baseAddress, &length, input.baseAddress, UInt(input.count), BackupFileFormat.compressionLevel)
            }
        }
        // compressBound sized the output, so anything but Z_OK is a zlib failure (memory).
        guard rc == Z_OK else { throw BackupError.io(operation: "deflate (zlib \(rc))", path: "a backup frame", errno: ENOMEM) }
        var frame: [UInt8] = []
        frame.reserveCapacity(BackupFileFormat.frameHeaderSize + Int(length))
        BackupFileFormat.put32(UInt32(length), into: &frame)
        BackupFileFormat.put32(UInt32(chunk.count), into: &frame)
        let compressedCRC = compressed.withUnsafeBytes { BackupFileFormat.crc(UnsafeRawBufferPointer(rebasing: $0[..<Int(length)])) }
        BackupFileFormat.put32(compressedCRC, into: &frame)
        BackupFileFormat.put32(chunk.withUnsafeBytes { BackupFileFormat.crc($0) }, into: &frame)
        frame.append(contentsOf: compressed[..<Int(length)])
        rawBytes += Int64(chunk.count)
        chunk.removeAll(keepingCapacity: true)
        try send(frame)
    }

    /// Emits the last frame and the end frame.
    public func finish() throws {
        precondition(!finished, "finish twice")
        try flushChunk()
        var end: [UInt8] = []
        BackupFileFormat.put32(0, into: &end)
        BackupFileFormat.put32(0, into: &end)
        BackupFileFormat.put64(UInt64(rawBytes), into: &end)
        try send(end)
        finished = true
    }
}

/// Decodes a backup file format stream pushed in blocks of any size (an HTTP body), checking
/// what `BackupFileReader` checks: magic, version, content kind, every frame's lengths and
/// both CRC32s, the end frame's total, and nothing after it. `name` and the byte offsets in
/// its errors locate the damage in the stream (the offset of the frame that holds it).
public final class BackupFrameDecoder {
    public let name: String
    private let content: BackupFileFormat.Content
    private var buffer: [UInt8] = []
    private var position = 0
    /// Stream offset of `buffer[0]`.
    private var base: Int64 = 0
    private var sawHeader = false
    /// True once the end frame was read and checked.
    public private(set) var finished = false
    /// Content bytes decoded so far.
    public private(set) var rawBytes: Int64 = 0

    public init(name: String, content: BackupFileFormat.Content) {
        self.name = name
        self.content = content
    }

    private var offset: Int64 { base + Int64(position) }

    /// Feeds stream bytes; `chunk` receives each decoded content chunk, in order.
    public func feed(_ bytes: [UInt8], chunk: ([UInt8]) throws -> Void) throws {
        if finished {
            guard bytes.isEmpty else { throw BackupError.corrupt(file: name, offset: offset, detail: "bytes after the end frame") }
            return
        }
        if position > 0 && position >= buffer.count / 2 {
            buffer.removeSubrange(0..<position)
            base += Int64(position)
            position = 0
        }
        buffer.append(contentsOf: bytes)
        if !sawHeader {
            guard buffer.count - position >= BackupFileFormat.headerSize else { return }
            guard Array(buffer[position..<(position + 8)]) == BackupFileFormat.magic else {
                throw BackupError.corrupt(file: name, offset: offset, detail: "not a SwiftKeeper backup stream (bad magic)")
            }
            let version = BackupFileFormat.get32(buffer, position + 8)
            guard version == BackupFileFormat.version else {
                throw BackupError.corrupt(file: name, offset: offset + 8, detail: "format version \(version), this program reads \(BackupFileFormat.version)")
            }
            let kind = BackupFileFormat.get32(buffer, position + 12)
            guard kind == content.rawValue else {
                throw BackupError.corrupt(file: name, offset: offset + 12, detail: "content kind \(kind), expected \(content.rawValue)")
            }
            position += BackupFileFormat.headerSize
            sawHeader = true
        }
        let bound = Int(compressBound(UInt(BackupFileFormat.chunkBytes)))
        while !finished && buffer.count - position >= BackupFileFormat.frameHeaderSize {
            let compressedLength = Int(BackupFileFormat.get32(buffer, position))
            let rawLength = Int(BackupFileFormat.get32(buffer, position + 4))
            if compressedLength == 0 && rawLength == 0 {
                let total = Int64(bitPattern: BackupFileFormat.get64(buffer, position + 8))
                guard total == rawBytes else {
                    throw BackupError.corrupt(file: name, offset: offset + 8, detail: "end frame records \(total) raw bytes, the frames hold \(rawBytes)")
                }
                position += BackupFileFormat.frameHeaderSize
                guard position == buffer.count else {
                    throw BackupError.corrupt(file: name, offset: offset, detail: "bytes after the end frame")
                }
                finished = true
                return
            }
            guard compressedLength > 0, compressedLength <= bound, rawLength > 0, rawLength <= BackupFileFormat.chunkBytes else {
                throw BackupError.corrupt(file: name, offset: offset, detail: "frame header with compressed length \(compressedLength), raw length \(rawLength)")
            }
            let start = position + BackupFileFormat.frameHeaderSize
            guard buffer.count - start >= compressedLength else { return }
            let frameOffset = offset
            let compressedCRC = buffer.withUnsafeBytes { BackupFileFormat.crc(UnsafeRawBufferPointer(rebasing: $0[start..<(start + compressedLength)])) }
            guard compressedCRC == BackupFileFormat.get32(buffer, position + 8) else {
                throw BackupError.corrupt(file: name, offset: frameOffset, detail: "frame CRC32 mismatch (frame of \(compressedLength) bytes at \(frameOffset + 16))")
            }
            var raw = [UInt8](repeating: 0, count: rawLength)
            var length = UInt(rawLength)
            let rc = raw.withUnsafeMutableBufferPointer { out in
                buffer.withUnsafeBufferPointer { input in
                    uncompress(out.baseAddress, &length, input.baseAddress! + start, UInt(compressedLength))
                }
            }
            guard rc == Z_OK, Int(length) == rawLength,
                  raw.withUnsafeBytes({ BackupFileFormat.crc($0) }) == BackupFileFormat.get32(buffer, position + 12)
            else {
                throw BackupError.corrupt(file: name, offset: frameOffset, detail: "frame does not inflate to its \(rawLength) bytes (zlib \(rc))")
            }
            position = start + compressedLength
            rawBytes += Int64(rawLength)
            try chunk(raw)
        }
    }

    /// Checks the stream ended with its end frame.
    public func finish() throws {
        guard finished else {
            throw BackupError.truncated(file: name, offset: offset, detail: "the stream ends before its end frame (\(buffer.count - position) bytes of an unfinished frame)")
        }
    }
}

/// Splits decoded `.txns` content, pushed in chunks, into records (i64 zxid, u32 length,
/// payload), as `TxnStreamReader` does for files.
public final class TxnRecordParser {
    private var buffer: [UInt8] = []
    private var position = 0
    let name: String

    public init(name: String) { self.name = name }

    /// Feeds content bytes; `record` receives each whole record.
    public func feed(_ bytes: [UInt8], record: (Zxid, UnsafeRawBufferPointer) throws -> Void) throws {
        if position > 0 {
            buffer.removeSubrange(0..<position)
            position = 0
        }
        buffer.append(contentsOf: bytes)
        while buffer.count - position >= 12 {
            let zxid = Zxid(Int64(bitPattern: BackupFileFormat.get64(buffer, position)))
            let length = Int(BackupFileFormat.get32(buffer, position + 8))
            guard length <= TxnStreamReader.maxPayload else {
                throw BackupError.corrupt(file: name, offset: -1, detail: "record \(zxid) claims \(length) bytes")
            }
            guard buffer.count - position >= 12 + length else { return }
            let start = position + 12
            try buffer.withUnsafeBytes { try record(zxid, UnsafeRawBufferPointer(rebasing: $0[start..<(start + length)])) }
            position = start + length
        }
    }

    /// Checks no partial record is left.
    public func finish() throws {
        guard buffer.count == position else {
            throw BackupError.corrupt(file: name, offset: -1, detail: "\(buffer.count - position) bytes of an unfinished record at the end of the content")
        }
    }
}
