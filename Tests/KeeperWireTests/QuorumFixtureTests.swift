import KeeperModel
import NIOCore
import Testing

@testable import KeeperWire

/// Peer traffic of a real 3-node ZooKeeper 3.8 ensemble (Fixtures/capture/capture_quorum.sh):
/// election connections and leader-learner connections decode and re-encode byte for byte.
@Suite struct QuorumFixtureTests {
    @Test func electionConnectionsRoundTrip() throws {
        let streams = try Fixtures.streams().filter { $0.name.hasPrefix("election") }
        #expect(streams.count >= 2)
        var notifications = 0
        for stream in streams {
            // The connecting side opens with its InitialMessage.
            var initiator = stream.initiator
            var reader = JuteReader(initiator)
            let header = try ElectionConnectionHeader(jute: &reader)
            #expect(header.protocolVersion == ElectionConnectionHeader.protocolVersion1)
            var again = ByteBuffer()
            header.write(to: &again)
            #expect(again == initiator.readSlice(length: again.readableBytes)!, "\(stream.name)")
            for var side in [initiator, stream.acceptor] {
                while let frame = try JuteFraming.nextFrame(in: &side, maxLength: ElectionNotification.maxMessageSize) {
                    let notification = try ElectionNotification(decoding: frame)
                    var out = ByteBuffer()
                    notification.write(to: &out)
                    #expect(out == frame, "\(stream.name)")
                    #expect(notification.version == 2 && notification.config != nil)
                    notifications += 1
                }
                #expect(side.readableBytes == 0, "\(stream.name): \(side.readableBytes) bytes of a cut frame")
            }
        }
        #expect(notifications > 0)
    }

    @Test func leaderLearnerConnectionsRoundTrip() throws {
        let streams = try Fixtures.streams().filter { $0.name.hasPrefix("quorum") }
        #expect(streams.count >= 2)
        var types: Set<QuorumPacketType> = []
        var txnTypes: Set<OpCode> = []
        var forwarded: Set<OpCode> = []
        let decoder = QuorumPacketDecoder()
        for stream in streams {
            for var side in [stream.initiator, stream.acceptor] {
                while let packet = try decoder.next(from: &side) {
                    types.insert(packet.type)
                    var out = ByteBuffer()
                    packet.write(to: &out)
                    // Re-encoded, the packet is the bytes just consumed.
                    var replay = out
                    #expect(try decoder.next(from: &replay) == packet)
                    switch packet.type {
                    case .followerInfo, .observerInfo:
                        let info = try LearnerInfo.decode(exactly: try #require(packet.data))
                        #expect(info.encoded() == packet.data)
                        #expect(info.protocolVersion == 0x10000)
                    case .proposal, .inform:
                        let data = try #require(packet.data)
                        let (entry, digest) = try TxnCodec.decode(data)
                        txnTypes.insert(entry.header.type)
                        #expect(entry.zxid == packet.zxid)
                        var txn = ByteBuffer()
                        TxnCodec.write(entry, digest: digest, to: &txn)
                        #expect(txn == data)
                    case .request:
                        let request = try ForwardedRequest(decoding: try #require(packet.data))
                        var body = JuteReader(request.body)
                        let decoded = try Request.decode(type: request.type, from: &body)
                        #expect(body.isAtEnd)
                        var again = ByteBuffer()
                        decoded.write(to: &again)
                        #expect(again == request.body)
                        forwarded.insert(decoded.opCode)
                    case .ack, .commit, .ping, .revalidate, .sync, .commitAndActivate, .newLeader, .upToDate,
                        .diff, .trunc, .snap, .leaderInfo, .ackEpoch, .informAndActivate:
                        break
                    }
                }
                #expect(side.readableBytes == 0, "\(stream.name): \(side.readableBytes) bytes left")
            }
        }
        let expected: Set<QuorumPacketType> = [.followerInfo, .leaderInfo, .ackEpoch, .diff, .newLeader, .ack, .upToDate, .proposal, .commit, .ping, .request]
        #expect(expected.subtracting(types).isEmpty, "not captured: \(expected.subtracting(types))")
        #expect(txnTypes.isSuperset(of: [.createSession, .create, .setData, .multi, .delete, .closeSession]), "\(txnTypes)")
        #expect(forwarded.isSuperset(of: [.createSession, .create, .setData, .multi, .delete, .closeSession]), "\(forwarded)")
    }
}
