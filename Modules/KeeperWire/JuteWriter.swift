import KeeperModel
import NIOCore

/// Writes jute primitives (BinaryOutputArchive's encoding) straight into a `ByteBuffer`.
///
/// Encoding never fails: records built by SwiftKeeper are valid by construction, and the only
/// thing that could go wrong (a field longer than `Int32.max`) is a programmer error.
extension ByteBuffer {
    /// jute `int`.
    @inlinable
    public mutating func writeJuteInt(_ value: Int32) {
        writeInteger(value, endianness: .big)
    }

    /// jute `long`.
    @inlinable
    public mutating func writeJuteLong(_ value: Int64) {
        writeInteger(value, endianness: .big)
    }

    /// jute `boolean`: 1 or 0.
    @inlinable
    public mutating func writeJuteBool(_ value: Bool) {
        writeInteger(value ? 1 : 0, as: UInt8.self)
    }

    @inlinable
    mutating func writeJuteLength(_ count: Int) {
        precondition(count <= Int32.max, "a jute field cannot exceed Int32.max bytes")
        writeInteger(Int32(truncatingIfNeeded: count), endianness: .big)
    }

    /// jute `buffer` from contiguous bytes; nil writes a null buffer (length -1).
    @inlinable
    public mutating func writeJuteBuffer(_ bytes: UnsafeRawBufferPointer?) {
        guard let bytes else { return writeJuteInt(-1) }
        precondition(bytes.count <= Int32.max, "a jute field cannot exceed Int32.max bytes")
        // Length and bytes in one access to the storage (each access costs an exclusivity check).
        writeWithUnsafeMutableBytes(minimumWritableBytes: 4 + bytes.count) { raw in
            raw.storeBytes(of: Int32(truncatingIfNeeded: bytes.count).bigEndian, toByteOffset: 0, as: Int32.self)
            if let base = bytes.baseAddress, bytes.count > 0 {
                (raw.baseAddress! + 4).copyMemory(from: base, byteCount: bytes.count)
            }
            return 4 + bytes.count
        }
    }

    /// jute `buffer` from an array; nil writes a null buffer.
    @inlinable
    public mutating func writeJuteBuffer(_ bytes: [UInt8]?) {
        guard let bytes else { return writeJuteInt(-1) }
        bytes.withUnsafeBytes { writeJuteBuffer($0) }
    }

    /// jute `buffer` from the readable bytes of another buffer; nil writes a null buffer.
    @inlinable
    public mutating func writeJuteBuffer(_ bytes: ByteBuffer?) {
        guard let bytes else { return writeJuteInt(-1) }
        writeJuteLength(bytes.readableBytes)
        writeImmutableBuffer(bytes)
    }

    /// jute `ustring` (UTF-8); nil writes a null string.
    ///
    /// ZooKeeper's Java writer encodes a supplementary character as two 3-byte surrogates
    /// (CESU-8); Swift strings are written as standard UTF-8. The two agree on every string a
    /// ZooKeeper server accepts (PathUtils refuses surrogates in paths).
    @inlinable
    public mutating func writeJuteString(_ string: String?) {
        guard var string else { return writeJuteInt(-1) }
        // Native Swift strings are contiguous UTF-8: length and bytes go in one storage access.
        string.withUTF8 { writeJuteBuffer(UnsafeRawBufferPointer($0)) }
    }

    /// jute `vector<T>`; nil writes a null vector (count -1).
    @inlinable
    public mutating func writeJuteVector<C: Collection>(_ elements: C?, _ element: (inout ByteBuffer, C.Element) -> Void) {
        guard let elements else { return writeJuteInt(-1) }
        writeJuteLength(elements.count)
        for e in elements { element(&self, e) }
    }

    /// A vector of ustrings; nil writes a null vector.
    @inlinable
    public mutating func writeJuteStringVector(_ strings: [String]?) {
        writeJuteVector(strings) { $0.writeJuteString($1) }
    }

    /// Writes a record.
    @inlinable
    public mutating func writeJute<R: JuteRecord>(_ record: R) {
        record.write(to: &self)
    }

    /// Writes one frame: a 4-byte big-endian length, then whatever `body` writes. The length is
    /// patched in afterwards, so the body is written once, in place, with no intermediate buffer.
    @inlinable
    public mutating func writeJuteFrame<E: Error>(_ body: (inout ByteBuffer) throws(E) -> Void) throws(E) {
        let lengthIndex = writerIndex
        writeInteger(Int32(0))
        try body(&self)
        let length = writerIndex - lengthIndex - 4
        precondition(length <= Int32.max, "a frame cannot exceed Int32.max bytes")
        setInteger(Int32(truncatingIfNeeded: length), at: lengthIndex, endianness: .big)
    }
}

/// A jute record: it decodes itself from a `JuteReader` and encodes itself into a `ByteBuffer`,
/// field by field in zookeeper.jute's order.
public protocol JuteRecord: Hashable, Sendable {
    /// Decodes the record's fields from `reader`, leaving the reader after the record.
    init(jute reader: inout JuteReader) throws(JuteDecodingError)
    /// Encodes the record's fields at the buffer's writer index.
    func write(to buffer: inout ByteBuffer)
}

extension JuteRecord {
    /// Decodes one record that must fill `buffer` exactly (a log entry, a packet's data).
    @inlinable
    public static func decode(exactly buffer: ByteBuffer, maxLength: Int = Limits.default.maxBuffer) throws(JuteDecodingError) -> Self {
        var reader = JuteReader(buffer, maxLength: maxLength)
        let value = try Self(jute: &reader)
        try reader.expectEnd("\(Self.self)")
        return value
    }

    /// The record's encoding in a new buffer.
    @inlinable
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64)
        write(to: &buffer)
        return buffer
    }
}
