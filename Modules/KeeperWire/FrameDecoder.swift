import KeeperModel
import NIOCore

/// Frames: a 4-byte big-endian length, then that many payload bytes.
public enum JuteFraming {
    /// Takes the next whole frame's payload off the front of `buffer`, or returns nil (consuming
    /// nothing) when the frame is not complete yet.
    ///
    /// A length below 0 or above `maxLength` (`jute.maxbuffer`) is a typed error before any
    /// byte of the payload is awaited or buffered, as ZooKeeper's "Len error".
    @inlinable
    public static func nextFrame(in buffer: inout ByteBuffer, maxLength: Int) throws(JuteDecodingError) -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: Int32.self) else {
            return nil
        }
        if length < 0 {
            throw JuteDecodingError("frame", "length", offset: 0, .negativeLength(length))
        }
        if Int(length) > maxLength {
            throw JuteDecodingError("frame", "length", offset: 0, .lengthAboveLimit(length: Int(length), limit: maxLength))
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return buffer.readSlice(length: Int(length))!  // checked just above
    }
}

/// Splits a byte stream into frame payloads (without their length prefix): client connections
/// after the handshake and peer (quorum, election) connections.
public struct JuteFrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = ByteBuffer

    /// The largest payload accepted (`jute.maxbuffer`).
    public let maxFrameLength: Int

    public init(maxFrameLength: Int = Limits.default.maxBuffer) {
        precondition(maxFrameLength >= 0, "jute.maxbuffer must not be negative")
        self.maxFrameLength = maxFrameLength
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try JuteFraming.nextFrame(in: &buffer, maxLength: maxFrameLength) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

/// What arrives on a client connection: either a four-letter word (only as the very first 4
/// bytes) or frames, the first of which is the ConnectRequest.
public enum ClientFrame: Hashable, Sendable {
    /// A four-letter-word command; `stmk` carries its 8-byte trace mask. Nothing more is decoded
    /// on the connection: ZooKeeper answers the command and closes it.
    case fourLetterWord(FourLetterWord, traceMask: Int64?)
    /// A frame payload: the ConnectRequest first (`ConnectRequest.decode(from:)`), then requests.
    case frame(ByteBuffer)
}

/// The client connection's decoder: it recognises a four-letter word in the first 4 bytes
/// (ZooKeeper reads them as the first frame's length and compares them with the known commands),
/// then splits frames like `JuteFrameDecoder`.
public struct ClientFrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = ClientFrame

    enum State: Sendable {
        case start
        case awaitingTraceMask
        case frames
        case afterFourLetterWord
    }

    public let maxFrameLength: Int
    var state: State = .start

    public init(maxFrameLength: Int = Limits.default.maxBuffer) {
        precondition(maxFrameLength >= 0, "jute.maxbuffer must not be negative")
        self.maxFrameLength = maxFrameLength
    }

    /// Decodes what it can from `buffer` without a channel: the pure core of `decode(context:buffer:)`.
    public mutating func next(from buffer: inout ByteBuffer) throws(JuteDecodingError) -> ClientFrame? {
        switch state {
        case .start:
            guard let first = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: Int32.self) else {
                return nil
            }
            if let word = FourLetterWord.recognise(firstInt: first) {
                buffer.moveReaderIndex(forwardBy: 4)
                if word == .stmk {
                    state = .awaitingTraceMask
                    return try next(from: &buffer)
                }
                state = .afterFourLetterWord
                return .fourLetterWord(word, traceMask: nil)
            }
            state = .frames
            return try next(from: &buffer)
        case .awaitingTraceMask:
            guard let mask = buffer.readInteger(endianness: .big, as: Int64.self) else { return nil }
            state = .afterFourLetterWord
            return .fourLetterWord(.stmk, traceMask: mask)
        case .frames:
            return try JuteFraming.nextFrame(in: &buffer, maxLength: maxFrameLength).map(ClientFrame.frame)
        case .afterFourLetterWord:
            // The connection is answered and closed; whatever else the peer sends is dropped.
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return nil
        }
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try next(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

extension ConnectRequest {
    /// Decodes the first frame of a client connection. It is 44 bytes without the trailing
    /// readOnly byte and 45 with it; other lengths decode too (passwd is a length-prefixed
    /// buffer), and bytes after readOnly are ignored as ZooKeeper ignores them.
    public static func decode(from frame: ByteBuffer, maxLength: Int = Limits.default.maxBuffer) throws(JuteDecodingError) -> ConnectRequest {
        var reader = JuteReader(frame, maxLength: maxLength)
        return try ConnectRequest(jute: &reader)
    }
}
