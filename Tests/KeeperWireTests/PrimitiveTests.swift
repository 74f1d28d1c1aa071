import KeeperModel
import NIOCore
import Testing

@testable import KeeperWire

/// Jute primitives and the typed errors for bad input: every error names the record, the field
/// and the byte offset, and nothing is read or allocated past a bad length.
@Suite struct PrimitiveTests {
    func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    @Test func primitivesAreBigEndian() throws {
        var b = ByteBuffer()
        b.writeJuteInt(0x0102_0304)
        b.writeJuteLong(-2)
        b.writeJuteBool(true)
        b.writeJuteBool(false)
        b.writeJuteString("é/")
        b.writeJuteString(nil)
        b.writeJuteBuffer([0xaa] as [UInt8])
        b.writeJuteBuffer(nil as [UInt8]?)
        b.writeJuteStringVector(["a"])
        b.writeJuteStringVector(nil)
        #expect(Array(b.readableBytesView) == [
            1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 1, 0,
            0, 0, 0, 3, 0xc3, 0xa9, 0x2f, 0xff, 0xff, 0xff, 0xff,
            0, 0, 0, 1, 0xaa, 0xff, 0xff, 0xff, 0xff,
            0, 0, 0, 1, 0, 0, 0, 1, 0x61, 0xff, 0xff, 0xff, 0xff,
        ])
        var r = JuteReader(b)
        #expect(try r.readInt("T", "i") == 0x0102_0304)
        #expect(try r.readLong("T", "l") == -2)
        #expect(try r.readBool("T", "t") == true)
        #expect(try r.readBool("T", "f") == false)
        #expect(try r.readString("T", "s") == "é/")
        #expect(try r.readString("T", "null") == nil)
        #expect(try r.readBytes("T", "b") == [0xaa])
        #expect(try r.readBuffer("T", "null") == nil)
        #expect(try r.readStringVector("T", "v") == ["a"])
        #expect(try r.readStringVector("T", "null") == nil)
        #expect(r.isAtEnd)
    }

    @Test func anyNonZeroByteIsTrue() throws {
        var r = JuteReader(buffer([0x7f]))
        #expect(try r.readBool("T", "b"))
    }

    @Test func truncatedFieldNamesRecordFieldAndOffset() throws {
        // GetDataRequest{path, watch}: the path is complete, the watch byte is missing.
        var b = ByteBuffer()
        b.writeJuteString("/a")
        var r = JuteReader(b)
        #expect(throws: JuteDecodingError(record: "PathWatchRequest", field: "watch", offset: 6, reason: .truncated(needed: 1, available: 0))) {
            try GetDataRequest(jute: &r)
        }
    }

    @Test func lengthBeyondTheFrameIsTruncatedNotAllocated() throws {
        // A string claiming 1,000 bytes with 2 present: refused before anything is copied.
        var r = JuteReader(buffer([0, 0, 0x03, 0xe8, 0x2f, 0x61]))
        #expect(throws: JuteDecodingError(record: "T", field: "path", offset: 4, reason: .truncated(needed: 1000, available: 2))) {
            try r.readString("T", "path")
        }
    }

    @Test func negativeLengthsAreRefused() throws {
        var r = JuteReader(buffer([0xff, 0xff, 0xff, 0xfe]))
        #expect(throws: JuteDecodingError(record: "T", field: "data", offset: 0, reason: .negativeLength(-2))) {
            try r.readBuffer("T", "data")
        }
        var v = JuteReader(buffer([0x80, 0, 0, 0]))
        #expect(throws: JuteDecodingError(record: "T", field: "v", offset: 0, reason: .negativeLength(Int32.min))) {
            try v.readStringVector("T", "v")
        }
    }

    @Test func lengthsAboveMaxBufferAreRefusedBeforeWaitingForThem() throws {
        var b = ByteBuffer()
        b.writeJuteInt(2_000_000)
        b.writeRepeatingByte(0, count: 16)
        var r = JuteReader(b, maxLength: 1_048_575)
        #expect(throws: JuteDecodingError(record: "T", field: "data", offset: 0, reason: .lengthAboveLimit(length: 2_000_000, limit: 1_048_575))) {
            try r.readBuffer("T", "data")
        }
        // The limit is configurable (jute.maxbuffer).
        var small = JuteReader(buffer([0, 0, 0, 5, 1, 2, 3, 4, 5]), maxLength: 4)
        #expect(throws: JuteDecodingError(record: "T", field: "data", offset: 0, reason: .lengthAboveLimit(length: 5, limit: 4))) {
            try small.readBuffer("T", "data")
        }
    }

    @Test func absurdVectorCountsAreRefusedBeforeReserving() throws {
        // 100 million ACLs claimed in an 8-byte remainder.
        var b = ByteBuffer()
        b.writeJuteInt(100_000_000)
        b.writeRepeatingByte(0, count: 8)
        var r = JuteReader(b)
        #expect(throws: JuteDecodingError(record: "T", field: "acl", offset: 0, reason: .vectorCountAboveLimit(count: 100_000_000, limit: 1_048_575 / 12))) {
            try r.readACLs("T", "acl")
        }
        // Within the limit but beyond the frame: a short frame, found before reserving.
        var short = ByteBuffer()
        short.writeJuteInt(1000)
        short.writeRepeatingByte(0, count: 8)
        var s = JuteReader(short)
        #expect(throws: JuteDecodingError(record: "T", field: "acl", offset: 4, reason: .truncated(needed: 12_000, available: 8))) {
            try s.readACLs("T", "acl")
        }
    }

    @Test func invalidUTF8IsATypedErrorWithTheBadByte() throws {
        let cases: [([UInt8], Int)] = [
            ([0x2f, 0xff], 1),  // never valid
            ([0x2f, 0x61, 0xc3], 2),  // truncated sequence
            ([0x2f, 0xc0, 0xaf], 1),  // overlong "/"
            ([0x2f, 0xed, 0xa0, 0x80], 2),  // a UTF-16 surrogate (CESU-8)
            ([0x2f, 0xf4, 0x90, 0x80, 0x80], 2),  // above U+10FFFF
            ([0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x80], 9),  // after the ASCII fast path
        ]
        for (bytes, bad) in cases {
            var b = ByteBuffer()
            b.writeJuteBuffer(bytes)
            var r = JuteReader(b)
            #expect(throws: JuteDecodingError(record: "T", field: "path", offset: 4, reason: .invalidUTF8(byteOffset: bad))) {
                try r.readString("T", "path")
            }
        }
        var ok = ByteBuffer()
        ok.writeJuteString("/ünïcødé/中文/🦊")
        var r = JuteReader(ok)
        #expect(try r.readString("T", "path") == "/ünïcødé/中文/🦊")
    }

    @Test func nullPathIsRefused() throws {
        var r = JuteReader(buffer([0xff, 0xff, 0xff, 0xff, 0]))
        #expect(throws: JuteDecodingError(record: "PathWatchRequest", field: "path", offset: 0, reason: .unexpectedNull)) {
            try GetDataRequest(jute: &r)
        }
    }

    @Test func errorDescriptionSaysWhatWhereAndWhatToDo() throws {
        let error = JuteDecodingError(record: "CreateRequest", field: "data", offset: 12, reason: .lengthAboveLimit(length: 2_000_000, limit: 1_048_575))
        #expect(error.description == "cannot decode CreateRequest.data at byte 12: length 2000000 above jute.maxbuffer 1048575; raise jute.maxbuffer if this peer is legitimate")
    }

    @Test func offsetsOfNestedRecordsCountFromTheFrame() throws {
        // A multi whose second op's path is invalid UTF-8: the offset is within the whole frame.
        var b = ByteBuffer()
        RequestHeader(xid: 1, type: .multi).write(to: &b)
        MultiOp.delete(DeleteRequest(path: "/a", version: -1)).write(to: &b)
        MultiHeader(type: OpCode.delete.rawValue, done: false, err: -1).write(to: &b)
        let pathOffset = b.readableBytes
        b.writeJuteBuffer([0x2f, 0xfe] as [UInt8])
        b.writeJuteInt(-1)
        MultiHeader.end.write(to: &b)
        #expect(throws: JuteDecodingError(record: "PathVersionRequest", field: "path", offset: pathOffset + 4, reason: .invalidUTF8(byteOffset: 1))) {
            try Request.decode(frame: b)
        }
    }
}
