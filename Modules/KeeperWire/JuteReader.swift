import KeeperModel
import NIOCore

/// Reads jute primitives (BinaryInputArchive's encoding: big-endian integers, one-byte booleans,
/// length-prefixed buffers and UTF-8 strings, count-prefixed vectors, -1 for null) from a frame.
///
/// Why a struct around `ByteBuffer` rather than `ByteBuffer` extensions: every error must say
/// which byte of the frame was bad, so the reader remembers where the frame started, and it
/// carries the `jute.maxbuffer` limit every length is checked against before anything is read
/// or allocated.
public struct JuteReader: Sendable {
    /// The unread rest of the frame.
    public var buffer: ByteBuffer
    /// `jute.maxbuffer`: no buffer, string or vector may claim more bytes than this.
    public let maxLength: Int
    @usableFromInline let origin: Int
    @usableFromInline let baseOffset: Int

    /// - Parameters:
    ///   - buffer: the frame payload (without its 4-byte length prefix).
    ///   - maxLength: `jute.maxbuffer` (`Limits.maxBuffer`).
    ///   - baseOffset: added to offsets in errors, for records nested in an outer frame.
    @inlinable
    public init(_ buffer: ByteBuffer, maxLength: Int = Limits.default.maxBuffer, baseOffset: Int = 0) {
        precondition(maxLength >= 0, "jute.maxbuffer must not be negative")
        self.buffer = buffer
        self.maxLength = maxLength
        self.origin = buffer.readerIndex
        self.baseOffset = baseOffset
    }

    /// Offset of the next byte to read, from the start of the frame.
    @inlinable public var offset: Int { buffer.readerIndex - origin + baseOffset }
    /// Bytes left in the frame.
    @inlinable public var remaining: Int { buffer.readableBytes }
    /// Whether the frame has been read to its end.
    @inlinable public var isAtEnd: Bool { buffer.readableBytes == 0 }

    @inlinable
    func truncated(_ record: StaticString, _ field: StaticString, needed: Int) -> JuteDecodingError {
        JuteDecodingError(record, field, offset: offset, .truncated(needed: needed, available: remaining))
    }

    /// jute `int`: 4 bytes, big-endian.
    @inlinable
    public mutating func readInt(_ record: StaticString, _ field: StaticString) throws(JuteDecodingError) -> Int32 {
        guard let value = buffer.readInteger(endianness: .big, as: Int32.self) else {
            throw truncated(record, field, needed: 4)
        }
        return value
    }

    /// jute `long`: 8 bytes, big-endian.
    @inlinable
    public mutating func readLong(_ record: StaticString, _ field: StaticString) throws(JuteDecodingError) -> Int64 {
        guard let value = buffer.readInteger(endianness: .big, as: Int64.self) else {
            throw truncated(record, field, needed: 8)
        }
        return value
    }

    /// jute `boolean`: one byte, any non-zero value is true (Java's `DataInput.readBoolean`).
    @inlinable
    public mutating func readBool(_ record: StaticString, _ field: StaticString) throws(JuteDecodingError) -> Bool {
        guard let value = buffer.readInteger(as: UInt8.self) else {
            throw truncated(record, field, needed: 1)
        }
        return value != 0
    }

    /// Reads a length prefix and checks it: -1 is null (nil), anything else must be
    /// 0...maxLength and fit in the rest of the frame. The bytes are not consumed.
    @inlinable
    mutating func readLength(_ record: StaticString, _ field: StaticString) throws(JuteDecodingError) -> Int? {
        let at = offset
        let length = try readInt(record, field)
        if length == -1 { return nil }
        if length < 0 { throw JuteDecodingError(record, field, offset: at, .negativeLength(length)) }
        let count = Int(length)
        if count > maxLength {
            throw JuteDecodingError(record, field, offset: at, .lengthAboveLimit(length: count, limit: maxLength))
        }
        if count > remaining { throw truncated(record, field, needed: count) }
        return count
    }

    /// jute `buffer` as a slice of the frame (no copy); nil for a null buffer (length -1).
    @inlinable
    public mutating func readBuffer(_ record: StaticString, _ field: StaticString) throws(JuteDecodingError) -> ByteBuffer? {
        guard let count = try readLength(record, field) else { return nil }
        return buffer.readSlice(length: count)!  // readLength checked `count <= remaining`
    }

    /// jute `buffer` copied into an array; nil for a null buffer.
    @inlinable
    public mutating func readBytes(_ record: StaticString, _ field: StaticString) throws(JuteDecodingError) -> [UInt8]? {
        guard let count = try readLength(record, field) else { return nil }
        return buffer.readBytes(length: count)!  // readLength checked `count <= remaining`
    }

    /// jute `ustring`; nil for a null string. Invalid UTF-8 is an error, never repaired.
    ///
    /// The length, its checks, the validation and the copy happen in one access to the
    /// buffer's storage (each access costs a dynamic exclusivity check).
    @inlinable
    public mutating func readString(_ record: StaticString, _ field: StaticString) throws(JuteDecodingError) -> String? {
        let at = offset
        let maxLength = self.maxLength
        // 0: decoded (or null), 1: truncated length, 2: negative, 3: above limit, 4: short, 5: invalid UTF-8
        var failure = 0
        var detail = 0
        var consumed = 0
        let decoded: String? = buffer.withUnsafeReadableBytes { raw in
            guard raw.count >= 4 else {
                failure = 1
                return nil
            }
            let length = Int32(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: Int32.self))
            consumed = 4
            if length == -1 { return nil }
            if length < 0 {
                failure = 2
                detail = Int(length)
                return nil
            }
            let count = Int(length)
            if count > maxLength {
                failure = 3
                detail = count
                return nil
            }
            if count > raw.count - 4 {
                failure = 4
                detail = count
                return nil
            }
            let bytes = UnsafeRawBufferPointer(rebasing: raw[4..<(4 + count)])
            if let bad = UTF8Validation.firstInvalidByte(in: bytes) {
                failure = 5
                detail = bad
                return nil
            }
            consumed = 4 + count
            return String(decoding: bytes, as: UTF8.self)
        }
        switch failure {
        case 0:
            buffer.moveReaderIndex(forwardBy: consumed)
            return decoded
        case 1:
            throw truncated(record, field, needed: 4)
        case 2:
            throw JuteDecodingError(record, field, offset: at, .negativeLength(Int32(detail)))
        case 3:
            throw JuteDecodingError(record, field, offset: at, .lengthAboveLimit(length: detail, limit: maxLength))
        case 4:
            throw JuteDecodingError(record, field, offset: at + 4, .truncated(needed: detail, available: remaining - 4))
        default:
            throw JuteDecodingError(record, field, offset: at + 4, .invalidUTF8(byteOffset: detail))
        }
    }

    /// A ustring ZooKeeper requires to be present (a path, a scheme): null is an error.
    @inlinable
    public mutating func readNonNullString(_ record: StaticString, _ field: StaticString) throws(JuteDecodingError) -> String {
        let at = offset
        guard let value = try readString(record, field) else {
            throw JuteDecodingError(record, field, offset: at, .unexpectedNull)
        }
        return value
    }

    /// jute `vector<T>`: a count then the elements; nil for a null vector (count -1).
    ///
    /// `minimumElementSize` (bytes) bounds the count by `jute.maxbuffer` and by what is left of
    /// the frame before any element is read or any storage is reserved, so an absurd count
    /// costs nothing.
    @inlinable
    public mutating func readVector<Element>(
        _ record: StaticString, _ field: StaticString, minimumElementSize: Int,
        _ element: (inout JuteReader) throws(JuteDecodingError) -> Element
    ) throws(JuteDecodingError) -> [Element]? {
        precondition(minimumElementSize > 0, "every jute element takes at least one byte")
        let at = offset
        let count = try readInt(record, field)
        if count == -1 { return nil }
        if count < 0 { throw JuteDecodingError(record, field, offset: at, .negativeLength(count)) }
        let n = Int(count)
        // More elements than jute.maxbuffer bytes could hold is an error at once; fewer, but
        // more than the bytes at hand, is a short frame (or, on an unframed stream, a wait).
        let limit = maxLength / minimumElementSize
        if n > limit {
            throw JuteDecodingError(record, field, offset: at, .vectorCountAboveLimit(count: n, limit: limit))
        }
        if n > remaining / minimumElementSize {
            throw truncated(record, field, needed: n * minimumElementSize)
        }
        var result: [Element] = []
        result.reserveCapacity(n)
        for _ in 0..<n { result.append(try element(&self)) }
        return result
    }

    /// A vector of ustrings; null is returned as nil.
    @inlinable
    public mutating func readStringVector(_ record: StaticString, _ field: StaticString) throws(JuteDecodingError) -> [String]? {
        try readVector(record, field, minimumElementSize: 4) { (r: inout JuteReader) throws(JuteDecodingError) in
            try r.readNonNullString(record, field)
        }
    }

    /// Fails when bytes are left, for records that must fill their frame exactly.
    @inlinable
    public func expectEnd(_ record: @autoclosure () -> String) throws(JuteDecodingError) {
        if remaining != 0 {
            throw JuteDecodingError(record: record(), field: "end", offset: offset, reason: .trailingBytes(remaining))
        }
    }

    /// Reads a record of a `JuteRecord` type.
    @inlinable
    public mutating func read<R: JuteRecord>(_ type: R.Type = R.self) throws(JuteDecodingError) -> R {
        try R(jute: &self)
    }
}

/// UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), with
/// an ASCII fast path, reporting the first bad byte so the error can point at it.
@usableFromInline
enum UTF8Validation {
    @inlinable
    static func firstInvalidByte(in bytes: UnsafeRawBufferPointer) -> Int? {
        let count = bytes.count
        var i = 0
        // ASCII fast path, eight bytes at a time.
        while i + 8 <= count {
            let word = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            if word & 0x8080_8080_8080_8080 != 0 { break }
            i += 8
        }
        while i < count {
            let b0 = bytes[i]
            if b0 < 0x80 { i += 1; continue }
            let length: Int
            var lower: UInt8 = 0x80
            var upper: UInt8 = 0xbf
            switch b0 {
            case 0xc2...0xdf: length = 2
            case 0xe0: length = 3; lower = 0xa0
            case 0xe1...0xec, 0xee...0xef: length = 3
            case 0xed: length = 3; upper = 0x9f
            case 0xf0: length = 4; lower = 0x90
            case 0xf1...0xf3: length = 4
            case 0xf4: length = 4; upper = 0x8f
            default: return i
            }
            if i + length > count { return i }
            let b1 = bytes[i + 1]
            if b1 < lower || b1 > upper { return i + 1 }
            var k = 2
            while k < length {
                if bytes[i + k] & 0xc0 != 0x80 { return i + k }
                k += 1
            }
            i += length
        }
        return nil
    }
}
