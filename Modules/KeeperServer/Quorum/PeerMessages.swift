import KeeperModel
import KeeperWire
import KeeperZAB
import NIOCore

/// How the ZAB core's messages travel between SwiftKeeper servers: election notifications as
/// ZooKeeper's FastLeaderElection records, everything else as ZooKeeper's `QuorumPacket` of the
/// same name (ZooKeeper Internals; `Leader.java` packet types), with SwiftKeeper's payloads
/// where ZooKeeper's would be a Java serialization detail (a forwarded write, a SNAP stream).
enum PeerMessages {
    /// The learner's protocol version in LearnerInfo and the leader's in LEADERINFO
    /// (ZooKeeper's 0x10000).
    static let protocolVersion: Int32 = 0x10000

    static func notification(_ n: Notification) -> ElectionNotification {
        let state: ElectionNotification.ServerState =
            switch n.state {
            case .looking: .looking
            case .following: .following
            case .leading: .leading
            case .observing: .observing
            }
        return ElectionNotification(
            state: state, leader: Int64(bitPattern: n.vote.leader.rawValue), zxid: n.vote.zxid,
            electionEpoch: Int64(bitPattern: n.vote.electionEpoch), peerEpoch: Int64(n.vote.peerEpoch), version: 1, config: nil)
    }

    static func notification(_ e: ElectionNotification) throws -> Notification {
        guard e.peerEpoch >= 0, e.peerEpoch <= Int64(UInt32.max) else {
            throw PeerProtocolError("election notification: peer epoch \(e.peerEpoch) out of range")
        }
        let state: PeerState =
            switch e.state {
            case .looking: .looking
            case .following: .following
            case .leading: .leading
            case .observing: .observing
            }
        return Notification(
            vote: Vote(
                leader: ServerID(UInt64(bitPattern: e.leader)), zxid: e.zxid, electionEpoch: UInt64(bitPattern: e.electionEpoch),
                peerEpoch: UInt32(e.peerEpoch)),
            state: state)
    }

    /// The packet for a message on a leader-learner connection. `myID` fills LearnerInfo.
    /// A PROPOSAL's wire form (`QuorumPacket.write` of `packet(.proposal(p))`), written
    /// straight from the payload into one buffer the leader sends to every follower.
    static func encodedProposal(_ proposal: Proposal) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 24 + proposal.payload.count)
        buffer.writeJuteInt(QuorumPacketType.proposal.rawValue)
        buffer.writeJuteLong(proposal.zxid.rawValue)
        buffer.writeJuteBuffer(proposal.payload)
        buffer.writeJuteInt(-1)  // authinfo: a null vector
        return buffer
    }

    static func packet(_ message: Message, myID: ServerID) -> QuorumPacket {
        func bytes(_ b: [UInt8]) -> ByteBuffer {
            var buffer = ByteBuffer()
            buffer.writeBytes(b)
            return buffer
        }
        switch message {
        case .notification:
            preconditionFailure("notifications travel on the election channel")
        case .followerInfo(let epoch), .observerInfo(let epoch):
            var data = ByteBuffer()
            LearnerInfo(serverID: Int64(bitPattern: myID.rawValue), protocolVersion: protocolVersion, configVersion: -1)
                .write(to: &data)
            let type: QuorumPacketType = if case .followerInfo = message { .followerInfo } else { .observerInfo }
            return QuorumPacket(type: type, zxid: Zxid(epoch: epoch, counter: 0), data: data)
        case .leaderInfo(let epoch):
            var data = ByteBuffer()
            data.writeJuteInt(protocolVersion)
            return QuorumPacket(type: .leaderInfo, zxid: Zxid(epoch: epoch, counter: 0), data: data)
        case .ackEpoch(let currentEpoch, let lastZxid):
            var data = ByteBuffer()
            data.writeJuteInt(Int32(bitPattern: currentEpoch))
            return QuorumPacket(type: .ackEpoch, zxid: lastZxid, data: data)
        case .diff(let zxid): return QuorumPacket(type: .diff, zxid: zxid)
        case .trunc(let zxid): return QuorumPacket(type: .trunc, zxid: zxid)
        case .snap(let zxid): return QuorumPacket(type: .snap, zxid: zxid)
        case .newLeader(let epoch): return QuorumPacket(type: .newLeader, zxid: Zxid(epoch: epoch, counter: 0))
        case .upToDate: return QuorumPacket(type: .upToDate, zxid: .zero)
        case .proposal(let p): return QuorumPacket(type: .proposal, zxid: p.zxid, data: bytes(p.payload))
        case .ack(let zxid): return QuorumPacket(type: .ack, zxid: zxid)
        case .commit(let zxid): return QuorumPacket(type: .commit, zxid: zxid)
        case .inform(let p): return QuorumPacket(type: .inform, zxid: p.zxid, data: bytes(p.payload))
        case .ping: return QuorumPacket(type: .ping, zxid: .zero)
        case .request(let payload): return QuorumPacket(type: .request, zxid: .zero, data: bytes(payload))
        case .sync(let id, let zxid):
            var data = ByteBuffer()
            data.writeJuteLong(Int64(bitPattern: id.rawValue))
            return QuorumPacket(type: .sync, zxid: zxid, data: data)
        }
    }

    /// The core message a packet carries, or nil for a packet the driver handles itself
    /// (PING's session data, REVALIDATE, SNAP stream chunks are read by the caller first).
    static func message(_ packet: QuorumPacket) throws -> Message {
        func data(_ what: String) throws -> ByteBuffer {
            guard let d = packet.data else { throw PeerProtocolError("\(packet.type) packet without \(what)") }
            return d
        }
        func epoch() throws -> UInt32 {
            guard packet.zxid.counter == 0 else {
                throw PeerProtocolError("\(packet.type) packet: zxid \(packet.zxid) is not an epoch (counter must be 0)")
            }
            return packet.zxid.epoch
        }
        switch packet.type {
        case .followerInfo: return .followerInfo(acceptedEpoch: try epoch())
        case .observerInfo: return .observerInfo(acceptedEpoch: try epoch())
        case .leaderInfo: return .leaderInfo(newEpoch: try epoch())
        case .ackEpoch:
            var d = try data("current epoch")
            guard let e = d.readInteger(as: UInt32.self) else { throw PeerProtocolError("ACKEPOCH packet: data shorter than 4 bytes") }
            return .ackEpoch(currentEpoch: e, lastZxid: packet.zxid)
        case .diff: return .diff(lastZxid: packet.zxid)
        case .trunc: return .trunc(packet.zxid)
        case .snap: return .snap(packet.zxid)
        case .newLeader: return .newLeader(epoch: try epoch())
        case .upToDate: return .upToDate
        case .proposal:
            return .proposal(Proposal(zxid: packet.zxid, payload: Array(try data("txn").readableBytesView)))
        case .ack: return .ack(packet.zxid)
        case .commit: return .commit(packet.zxid)
        case .inform:
            return .inform(Proposal(zxid: packet.zxid, payload: Array(try data("txn").readableBytesView)))
        case .ping: return .ping
        case .request: return .request(Array(try data("request").readableBytesView))
        case .sync:
            var d = try data("sync id")
            guard let id = d.readInteger(as: UInt64.self) else { throw PeerProtocolError("SYNC packet: data shorter than 8 bytes") }
            return .sync(SyncID(id), packet.zxid)
        case .revalidate, .commitAndActivate, .informAndActivate:
            throw PeerProtocolError("\(packet.type) packets are not part of SwiftKeeper's peer protocol")
        }
    }
}
