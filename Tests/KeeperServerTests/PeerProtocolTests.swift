import KeeperModel
import KeeperWire
import KeeperZAB
import NIOCore
import Testing

@testable import KeeperServer

/// The peer protocol's encodings: every ZAB message and forwarded write survives the trip
/// through its packet, and damaged input is refused with a message naming what was wrong.
@Suite struct PeerProtocolTests {
    static let me = ServerID(3)

    static func wire(_ packet: QuorumPacket) throws -> QuorumPacket {
        var buffer = ByteBuffer()
        packet.write(to: &buffer)
        var decoder = QuorumPacketDecoder()
        return try #require(try decoder.next(from: &buffer))
    }

    @Test func everyMessageRoundTripsThroughItsQuorumPacket() throws {
        let proposal = Proposal(zxid: Zxid(epoch: 4, counter: 9), payload: [1, 2, 3, 255])
        let messages: [Message] = [
            .followerInfo(acceptedEpoch: 7), .observerInfo(acceptedEpoch: 2), .leaderInfo(newEpoch: 8),
            .ackEpoch(currentEpoch: 6, lastZxid: Zxid(epoch: 6, counter: 41)), .diff(lastZxid: Zxid(epoch: 1, counter: 2)),
            .trunc(Zxid(epoch: 5, counter: 1)), .snap(Zxid(epoch: 3, counter: 77)), .newLeader(epoch: 9), .upToDate,
            .proposal(proposal), .ack(Zxid(epoch: 9, counter: 0)), .commit(Zxid(epoch: 9, counter: 12)), .inform(proposal),
            .ping, .request([9, 8, 7]), .sync(SyncID(0xFFFF_0000_1234), Zxid(epoch: 2, counter: 3)),
        ]
        for message in messages {
            let packet = try Self.wire(PeerMessages.packet(message, myID: Self.me))
            #expect(try PeerMessages.message(packet) == message, "\(message)")
        }
    }

    /// The leader writes a broadcast PROPOSAL once, straight from its payload: those bytes must
    /// be exactly the QuorumPacket's, and decode back to the proposal.
    @Test func anEncodedProposalIsItsQuorumPacketsBytes() throws {
        for payload in [[], [7], [UInt8](repeating: 0xA5, count: 1024)] as [[UInt8]] {
            let proposal = Proposal(zxid: Zxid(epoch: 12, counter: 345), payload: payload)
            var expected = ByteBuffer()
            PeerMessages.packet(.proposal(proposal), myID: Self.me).write(to: &expected)
            var encoded = PeerMessages.encodedProposal(proposal)
            #expect(encoded == expected, "payload of \(payload.count) bytes")
            var decoder = QuorumPacketDecoder()
            let packet = try #require(try decoder.next(from: &encoded))
            #expect(try PeerMessages.message(packet) == .proposal(proposal))
            #expect(encoded.readableBytes == 0)
        }
    }

    @Test func learnerInfoNamesTheSender() throws {
        let packet = try Self.wire(PeerMessages.packet(.followerInfo(acceptedEpoch: 1), myID: Self.me))
        var reader = JuteReader(try #require(packet.data), maxLength: 1024)
        #expect(try LearnerInfo(jute: &reader).serverID == 3)
    }

    @Test func notificationsRoundTrip() throws {
        let n = Notification(
            vote: Vote(leader: ServerID(5), zxid: Zxid(epoch: 3, counter: 10), electionEpoch: 12, peerEpoch: 3), state: .following)
        var buffer = ByteBuffer()
        PeerMessages.notification(n).write(to: &buffer)
        #expect(try PeerMessages.notification(ElectionNotification(decoding: buffer)) == n)
    }

    @Test func packetsOutsideThePeerProtocolAreRefused() {
        #expect(throws: PeerProtocolError.self) { try PeerMessages.message(QuorumPacket(type: .commitAndActivate, zxid: .zero)) }
        #expect(throws: PeerProtocolError.self) { try PeerMessages.message(QuorumPacket(type: .proposal, zxid: .zero)) }
        // An epoch packet whose zxid is not an epoch.
        #expect(throws: PeerProtocolError.self) {
            try PeerMessages.message(QuorumPacket(type: .newLeader, zxid: Zxid(epoch: 1, counter: 1)))
        }
    }

    @Test func forwardedWritesRoundTrip() throws {
        let acl = [ACL(perms: .all, id: Id(scheme: "world", id: "anyone"))]
        let requests: [WriteRequest] = [
            .create(opCode: .create2, path: "/a/b", data: nil, acl: acl, flags: 3, ttl: -1),
            .create(opCode: .createTTL, path: "/t", data: [], acl: acl, flags: 5, ttl: 1000),
            .delete(opCode: .delete, path: "/a", version: -1), .setData(path: "/x", data: [0, 1], version: 4),
            .setACL(path: "/y", acl: acl, version: 0), .check(path: "/z", version: 2),
            .multi([.check(path: "/z", version: 2), .setData(path: "/x", data: nil, version: -1)]),
            .createSession(timeout: 30000), .closeSession, .malformed(.setData, .badArguments),
        ]
        let context = RequestContext(
            session: SessionID(0x0102_0304_0506_0708), cxid: 77, authIds: [Id(scheme: "digest", id: "u:h"), Id(scheme: "ip", id: "10.0.0.1")])
        for request in requests {
            let write = ForwardedWrite(origin: 2, context: context, request: request)
            let decoded = try ForwardedWrite(decoding: write.encode(), maxLength: 1 << 20)
            #expect(decoded == write, "\(request)")
        }
    }

    @Test func damagedForwardedWritesAreRefusedWithTheirOffset() throws {
        var bytes = ForwardedWrite(
            origin: 1, context: RequestContext(session: SessionID(1), cxid: 1, authIds: []), request: .closeSession
        ).encode()
        bytes[bytes.count - 1] = 99  // an unknown tag
        do {
            _ = try ForwardedWrite(decoding: bytes, maxLength: 1 << 20)
            Issue.record("an unknown tag was accepted")
        } catch let error as PeerProtocolError {
            #expect(error.description.contains("bad tag 99"), "\(error)")
            #expect(error.description.contains("offset"))
        }
        bytes[3] = 2  // an unknown version
        #expect(throws: PeerProtocolError.self) { try ForwardedWrite(decoding: bytes, maxLength: 1 << 20) }
        #expect(throws: (any Error).self) { try ForwardedWrite(decoding: Array(bytes.prefix(10)), maxLength: 1 << 20) }
    }

    @Test func snapshotChunksRoundTripAndDamageIsCaught() throws {
        let raw = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 7 / 3) }
        let chunk = raw.withUnsafeBytes { SnapshotStream.encodeChunk($0) }
        #expect(try SnapshotStream.decodeChunk(chunk) == raw)
        var damaged = chunk
        let at = damaged.readerIndex + 20
        damaged.setInteger(damaged.getInteger(at: at, as: UInt8.self)! ^ 0x5A, at: at)
        #expect(throws: PeerProtocolError.self) { try SnapshotStream.decodeChunk(damaged) }
        #expect(throws: PeerProtocolError.self) { try SnapshotStream.decodeChunk(ByteBuffer(bytes: [0, 0])) }
        var oversized = ByteBuffer()
        oversized.writeInteger(UInt32(SnapshotStream.chunkSize + 1))
        oversized.writeInteger(UInt32(0))
        #expect(throws: PeerProtocolError.self) { try SnapshotStream.decodeChunk(oversized) }
    }
}
