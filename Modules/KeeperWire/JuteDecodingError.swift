/// Why bytes from a peer could not be decoded as jute, and where.
///
/// Every decoder in KeeperWire throws this one error type (typed throws), so a caller on the
/// event loop never boxes an existential and can log the record, the field and the byte offset
/// (from the start of the frame payload, after the 4-byte length) of the first bad byte. Bytes
/// from the network are never trusted: a decoder checks every length against what is left of the
/// frame and against `jute.maxbuffer` before it touches or allocates anything.
public struct JuteDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was wrong with the bytes.
    public enum Reason: Hashable, Sendable {
        /// The record needs `needed` more bytes but only `available` are left in the frame.
        case truncated(needed: Int, available: Int)
        /// A length prefix below -1 (jute uses -1 for a null buffer, string or vector).
        case negativeLength(Int32)
        /// A length prefix above the configured `jute.maxbuffer`.
        case lengthAboveLimit(length: Int, limit: Int)
        /// A vector claims more elements than `jute.maxbuffer` bytes could possibly hold
        /// (`limit` elements of the smallest size).
        case vectorCountAboveLimit(count: Int, limit: Int)
        /// A ustring is not valid UTF-8; `byteOffset` is the offending byte within the string.
        case invalidUTF8(byteOffset: Int)
        /// A null (-1 length) string or vector where ZooKeeper requires a value.
        case unexpectedNull
        /// A request, reply or txn type this codec does not know, so the record layout is unknown.
        case unknownType(Int32)
        /// An op type that may not appear inside a multi (or a multiRead).
        case invalidMultiOp(Int32)
        /// An enumerated value (error code, event type, state, packet type) out of its range
        /// where the codec maps it to a KeeperModel enum.
        case unknownEnumValue(Int32)
        /// A value out of the range the record allows (documented at the throw site).
        case invalidValue(Int64)
        /// Bytes left over after a record that must fill its frame exactly.
        case trailingBytes(Int)
    }

    /// The jute record being decoded (`GetDataRequest`, `frame`, `TxnHeader`, ...).
    public var record: String
    /// The field of that record (`path`, `data`, `length`, ...).
    public var field: String
    /// Byte offset of the field within the frame payload (or the log entry, or the packet).
    public var offset: Int
    public var reason: Reason

    public init(record: String, field: String, offset: Int, reason: Reason) {
        self.record = record
        self.field = field
        self.offset = offset
        self.reason = reason
    }

    @usableFromInline
    init(_ record: StaticString, _ field: StaticString, offset: Int, _ reason: Reason) {
        self.record = record.description
        self.field = field.description
        self.offset = offset
        self.reason = reason
    }

    public var description: String {
        let what: String
        switch reason {
        case .truncated(let needed, let available):
            what = "truncated: needs \(needed) bytes, \(available) left; the peer sent a short frame"
        case .negativeLength(let length):
            what = "negative length \(length); the peer is not speaking jute or the stream is out of sync"
        case .lengthAboveLimit(let length, let limit):
            what = "length \(length) above jute.maxbuffer \(limit); raise jute.maxbuffer if this peer is legitimate"
        case .vectorCountAboveLimit(let count, let limit):
            what = "vector of \(count) elements; jute.maxbuffer allows at most \(limit); raise jute.maxbuffer if this peer is legitimate"
        case .invalidUTF8(let byteOffset):
            what = "invalid UTF-8 at byte \(byteOffset) of the string; clients must send UTF-8"
        case .unexpectedNull:
            what = "null where ZooKeeper requires a value"
        case .unknownType(let type):
            what = "unknown type \(type); this codec follows ZooKeeper 3.9's zookeeper.jute"
        case .invalidMultiOp(let type):
            what = "op type \(type) is not allowed inside a multi"
        case .unknownEnumValue(let value):
            what = "unknown enumerated value \(value)"
        case .invalidValue(let value):
            what = "value \(value) out of range"
        case .trailingBytes(let count):
            what = "\(count) unexpected bytes after the record"
        }
        return "cannot decode \(record).\(field) at byte \(offset): \(what)"
    }
}
