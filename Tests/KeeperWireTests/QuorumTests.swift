import KeeperModel
import NIOCore
import NIOEmbedded
import Testing

@testable import KeeperWire

@Suite struct QuorumTests {
    @Test func packetTypesAreZooKeepers() throws {
        #expect(QuorumPacketType.allCases.map(\.rawValue) == Array(1...19))
        #expect(QuorumPacketType.informAndActivate.rawValue == 19 && QuorumPacketType.followerInfo.rawValue == 11)
    }

    @Test func unframedPacketStreamSplitsAtAnyChunking() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        var g = SeededGenerator(seed: seed)
        var txn = ByteBuffer()
        TxnCodec.write(TxnEntry(
            header: TxnHeader(clientID: SessionID(1), cxid: 1, zxid: Zxid(epoch: 1, counter: 1), time: 5, type: .delete),
            txn: .delete(DeleteTxn(path: "/x"))), to: &txn)
        let packets: [QuorumPacket] = [
            QuorumPacket(type: .followerInfo, zxid: Zxid(epoch: 1, counter: 0), data: LearnerInfo(serverID: 2, configVersion: 0x1_0000_0000).encoded()),
            QuorumPacket(type: .leaderInfo, zxid: Zxid(epoch: 2, counter: 0), data: ByteBuffer(bytes: [0, 1, 0, 0])),
            QuorumPacket(type: .proposal, zxid: Zxid(epoch: 1, counter: 1), data: txn),
            QuorumPacket(type: .ack, zxid: Zxid(epoch: 1, counter: 1)),
            QuorumPacket(type: .commit, zxid: Zxid(epoch: 1, counter: 1)),
            QuorumPacket(type: .ping, zxid: Zxid(0), data: nil, authInfo: [Id(scheme: "digest", id: "u:h")]),
        ]
        var stream = ByteBuffer()
        for p in packets { p.write(to: &stream) }
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(QuorumPacketDecoder()))
        while stream.readableBytes > 0 {
            try channel.writeInbound(stream.readSlice(length: Int.random(in: 1...min(9, stream.readableBytes), using: &g))!)
        }
        var got: [QuorumPacket] = []
        while let p = try channel.readInbound(as: QuorumPacket.self) { got.append(p) }
        #expect(got == packets, "seed \(seed)")
        #expect(try channel.finish().isClean)
        #expect(try LearnerInfo.decode(exactly: got[0].data!) == LearnerInfo(serverID: 2, configVersion: 0x1_0000_0000))
        #expect(try TxnCodec.decode(got[2].data!).entry.txn == .delete(DeleteTxn(path: "/x")))
    }

    @Test func absurdPacketLengthFailsInsteadOfWaiting() throws {
        var b = ByteBuffer()
        b.writeJuteInt(QuorumPacketType.snap.rawValue)
        b.writeJuteLong(0)
        b.writeJuteInt(Int32.max)
        #expect(throws: JuteDecodingError(record: "QuorumPacket", field: "data", offset: 12, reason: .lengthAboveLimit(length: Int(Int32.max), limit: 1_048_575))) {
            var copy = b
            _ = try QuorumPacketDecoder().next(from: &copy)
        }
        var unknown = ByteBuffer()
        unknown.writeJuteInt(42)
        #expect(throws: JuteDecodingError(record: "QuorumPacket", field: "type", offset: 0, reason: .unknownType(42))) {
            _ = try QuorumPacketDecoder().next(from: &unknown)
        }
    }

    @Test func forwardedRequestCarriesTheRawRequest() throws {
        var body = ByteBuffer()
        Request.setData(SetDataRequest(path: "/a", data: ByteBuffer(bytes: [1]), version: -1)).write(to: &body)
        let forwarded = ForwardedRequest(sessionID: SessionID(0x77), cxid: 3, type: OpCode.setData.rawValue, body: body)
        var data = ByteBuffer()
        forwarded.write(to: &data)
        let decoded = try ForwardedRequest(decoding: data)
        #expect(decoded == forwarded)
        var reader = JuteReader(decoded.body)
        #expect(try Request.decode(type: decoded.type, from: &reader) == .setData(SetDataRequest(path: "/a", data: ByteBuffer(bytes: [1]), version: -1)))
    }

    @Test func electionNotificationLayouts() throws {
        let config = Array("server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\nversion=100000000".utf8)
        let v2 = ElectionNotification(
            state: .looking, leader: 1, zxid: Zxid(epoch: 1, counter: 3), electionEpoch: 2, peerEpoch: 1, config: config)
        var out = ByteBuffer()
        v2.write(to: &out)
        #expect(out.readableBytes == 44 + config.count)
        #expect(try ElectionNotification(decoding: out) == v2)

        // The 40-byte layout (no config; ZooKeeper ignores its version int).
        var old = ByteBuffer()
        ElectionNotification(state: .following, leader: 3, zxid: Zxid(7), electionEpoch: 2, peerEpoch: 1, version: 1, config: nil).write(to: &old)
        #expect(old.readableBytes == 40)
        #expect(try ElectionNotification(decoding: old).config == nil)

        // The 28-byte layout: peerEpoch is the epoch of the zxid.
        var oldest = ByteBuffer()
        oldest.writeJuteInt(2)
        oldest.writeJuteLong(3)
        oldest.writeJuteLong(Zxid(epoch: 5, counter: 1).rawValue)
        oldest.writeJuteLong(9)
        let n = try ElectionNotification(decoding: oldest)
        #expect(n.state == .leading && n.peerEpoch == 5 && n.config == nil)

        #expect(throws: JuteDecodingError.self) { try ElectionNotification(decoding: ByteBuffer(bytes: [UInt8](repeating: 0, count: 27))) }
        // A config length beyond the message.
        var lying = ByteBuffer()
        ElectionNotification(state: .looking, leader: 1, zxid: Zxid(1), electionEpoch: 1, peerEpoch: 1, config: [1, 2]).write(to: &lying)
        lying.setInteger(Int32(500), at: 40)
        #expect(throws: JuteDecodingError(record: "Notification", field: "config", offset: 40, reason: .lengthAboveLimit(length: 500, limit: 46))) {
            try ElectionNotification(decoding: lying)
        }
    }

    @Test func electionConnectionHeader() throws {
        let header = ElectionConnectionHeader(serverID: 3, addresses: "127.0.0.1:3888|127.0.0.2:3888")
        var out = ByteBuffer()
        header.write(to: &out)
        var reader = JuteReader(out)
        #expect(try ElectionConnectionHeader(jute: &reader) == header)
        var bad = ByteBuffer()
        bad.writeJuteLong(3)  // the pre-3.5 form (just the sid) is not spoken
        var badReader = JuteReader(bad)
        #expect(throws: JuteDecodingError(record: "InitialMessage", field: "protocolVersion", offset: 0, reason: .invalidValue(3))) {
            try ElectionConnectionHeader(jute: &badReader)
        }
    }
}
