import KeeperModel
import NIOCore
import NIOEmbedded
import Testing

@testable import KeeperWire

/// The frame decoders, driven through an EmbeddedChannel as the server's pipeline drives them.
@Suite struct FrameDecoderTests {
    func framed(_ payloads: [[UInt8]]) -> ByteBuffer {
        var b = ByteBuffer()
        for p in payloads { b.writeJuteFrame { $0.writeBytes(p) } }
        return b
    }

    @Test func needMoreBytesUntilTheFrameIsWhole() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(JuteFrameDecoder()))
        let stream = framed([[1, 2, 3], [], [4]])
        for byte in stream.readableBytesView {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(bytes: [1, 2, 3]))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer())
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(bytes: [4]))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        #expect(try channel.finish().isClean)
    }

    @Test func oversizedFrameFailsAtItsLengthWithoutBuffering() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(JuteFrameDecoder(maxFrameLength: 100)))
        var b = ByteBuffer()
        b.writeJuteInt(101)
        #expect(throws: JuteDecodingError(record: "frame", field: "length", offset: 0, reason: .lengthAboveLimit(length: 101, limit: 100))) {
            try channel.writeInbound(b)
        }
        _ = try? channel.finish()
    }

    @Test func negativeFrameLengthFails() throws {
        var b = ByteBuffer(bytes: [0xff, 0xff, 0xff, 0x00, 1])
        #expect(throws: JuteDecodingError(record: "frame", field: "length", offset: 0, reason: .negativeLength(-256))) {
            try JuteFraming.nextFrame(in: &b, maxLength: 1_048_575)
        }
    }

    @Test func defaultLimitIsJuteMaxBuffer() throws {
        var ok = ByteBuffer()
        ok.writeJuteInt(1_048_575)
        #expect(try JuteFraming.nextFrame(in: &ok, maxLength: JuteFrameDecoder().maxFrameLength) == nil)
        var tooBig = ByteBuffer()
        tooBig.writeJuteInt(1_048_576)
        #expect(throws: JuteDecodingError.self) { try JuteFraming.nextFrame(in: &tooBig, maxLength: JuteFrameDecoder().maxFrameLength) }
    }

    @Test func firstFourBytesMayBeAFourLetterWord() throws {
        for word in FourLetterWord.known where word != .stmk {
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(ClientFrameDecoder()))
            var b = ByteBuffer()
            b.writeInteger(word.rawValue)
            b.writeString("\r\n")  // telnet users type a newline; it is dropped
            try channel.writeInbound(b)
            #expect(try channel.readInbound(as: ClientFrame.self) == .fourLetterWord(word, traceMask: nil))
            #expect(try channel.readInbound(as: ClientFrame.self) == nil)
            _ = try channel.finish()
        }
        #expect(FourLetterWord.ruok.description == "ruok")
        #expect(FourLetterWord.telnetClose.description == "telnet close")
    }

    @Test func stmkWaitsForItsTraceMask() throws {
        var decoder = ClientFrameDecoder()
        var b = ByteBuffer(string: "stmk")
        b.writeInteger(Int32(0))
        #expect(try decoder.next(from: &b) == nil)
        b.writeInteger(Int32(0x1f))
        #expect(try decoder.next(from: &b) == .fourLetterWord(.stmk, traceMask: 0x1f))
    }

    @Test func connectRequestIsNotMistakenForAFourLetterWord() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(ClientFrameDecoder()))
        let connect = ConnectRequest(
            lastZxidSeen: Zxid(0), timeOut: 30_000, sessionID: .none, passwd: [UInt8](repeating: 0, count: 16),
            readOnly: false)
        var out = ByteBuffer()
        out.writeJuteFrame { connect.write(to: &$0) }
        Request.ping.writeFrame(xid: -2, to: &out)
        try channel.writeInbound(out)
        guard case .frame(let first) = try #require(try channel.readInbound(as: ClientFrame.self)) else {
            Issue.record("expected a frame")
            return
        }
        #expect(try ConnectRequest.decode(from: first) == connect)
        guard case .frame(let second) = try #require(try channel.readInbound(as: ClientFrame.self)) else {
            Issue.record("expected a frame")
            return
        }
        #expect(try Request.decode(frame: second).request == .ping)
        #expect(try channel.finish().isClean)
    }

    @Test func randomChunkingNeverChangesTheFrames() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        var generator = SeededGenerator(seed: seed)
        var payloads: [[UInt8]] = []
        for _ in 0..<200 {
            let count = Int.random(in: 0...300, using: &generator)
            payloads.append((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
        }
        var stream = framed(payloads)
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(JuteFrameDecoder()))
        while stream.readableBytes > 0 {
            let n = Int.random(in: 1...min(stream.readableBytes, 500), using: &generator)
            try channel.writeInbound(stream.readSlice(length: n)!)
        }
        var got: [[UInt8]] = []
        while let frame = try channel.readInbound(as: ByteBuffer.self) { got.append(Array(frame.readableBytesView)) }
        #expect(got == payloads, "seed \(seed)")
        #expect(try channel.finish().isClean)
    }
}
