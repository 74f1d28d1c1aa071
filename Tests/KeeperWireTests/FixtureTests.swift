import KeeperModel
import NIOCore
import Testing

@testable import KeeperWire

/// Golden fixtures captured from real peers (kazoo, zkCli.sh, cli_mt, the Java client API)
/// talking to a real Apache ZooKeeper 3.8: every frame decodes, and re-encodes to the same bytes.
@Suite struct FixtureTests {
    @Test func fixturesArePresent() throws {
        let connections = try Fixtures.connections()
        #expect(connections.count >= 10)
        let clients = Set(connections.map { $0.name.split(separator: "-")[0] })
        #expect(clients == ["climt", "javaapi", "kazoo", "zkcli"])
    }

    @Test func everyClientFrameRoundTrips() throws {
        var seen: Set<OpCode> = []
        for connection in try Fixtures.connections() where connection.fourLetterBytes.isEmpty {
            let connect = try #require(connection.client.first, "\(connection.name): no ConnectRequest")
            let request = try ConnectRequest.decode(from: connect)
            #expect(request.encoded() == connect, "\(connection.name): ConnectRequest")
            for frame in connection.client.dropFirst() {
                let (header, decoded) = try Request.decode(frame: frame)
                seen.insert(decoded.opCode)
                #expect(header.type == decoded.opCode.rawValue)
                var again = ByteBuffer()
                header.write(to: &again)
                decoded.write(to: &again)
                #expect(again == frame, "\(connection.name): \(decoded.opCode) \(frame.hexDump)")
            }
        }
        // Every request type these clients can produce (check only appears inside a multi).
        let expected: Set<OpCode> = [
            .create, .delete, .exists, .getData, .setData, .getACL, .setACL, .getChildren, .sync, .ping,
            .getChildren2, .multi, .create2, .reconfig, .checkWatches, .removeWatches, .createContainer,
            .createTTL, .multiRead, .auth, .setWatches, .getEphemerals, .getAllChildrenNumber, .setWatches2, .addWatch,
            .whoAmI, .closeSession,
        ]
        #expect(expected.subtracting(seen).isEmpty, "not captured: \(expected.subtracting(seen))")
    }

    @Test func everyServerFrameRoundTrips() throws {
        var shapes: Set<String> = []
        for connection in try Fixtures.connections() where connection.fourLetterBytes.isEmpty {
            var opCodes: [Int32: OpCode] = [:]
            for frame in connection.client.dropFirst() {
                let (header, request) = try Request.decode(frame: frame)
                opCodes[header.xid] = request.opCode
            }
            let handshake = try #require(connection.server.first, "\(connection.name): no ConnectResponse")
            let response = try ConnectResponse.decode(exactly: handshake)
            #expect(response.encoded() == handshake)
            // ZooKeeper 3.8 always sends the readOnly byte (the 3.9.3 fix answers in kind).
            #expect(response.readOnly != nil)
            for frame in connection.server.dropFirst() {
                var reader = JuteReader(frame)
                let header = try ReplyHeader(jute: &reader)
                let opCode: OpCode
                switch header.xid {
                case SpecialXid.notification: opCode = .notification
                case SpecialXid.ping: opCode = .ping
                case SpecialXid.auth: opCode = .auth
                case SpecialXid.setWatches: opCode = .setWatches
                default: opCode = try #require(opCodes[header.xid], "\(connection.name): reply to unknown xid \(header.xid)")
                }
                let body = try Response.decode(for: opCode, header: header, from: &reader)
                #expect(reader.isAtEnd, "\(connection.name): \(opCode) left \(reader.remaining) bytes")
                shapes.insert("\(body)".prefix(while: { $0 != "(" }).description)
                var again = ByteBuffer()
                again.writeReply(header, body)
                var expected = ByteBuffer()
                expected.writeJuteFrame { $0.writeImmutableBuffer(frame) }
                #expect(again == expected, "\(connection.name): reply to \(opCode) \(frame.hexDump)")
            }
        }
        for shape in ["empty", "create", "create2", "stat", "getData", "getACL", "strings", "children2", "sync",
            "multi", "int", "whoAmI", "watchEvent"]
        {
            #expect(shapes.contains(shape), "no \(shape) reply captured")
        }
    }

    @Test func failedMultiReportsEveryOpAsAnError() throws {
        // javaapi: the second multi fails on its check; ZooKeeper answers 0 for the op before,
        // BadVersion for the check, RuntimeInconsistency after it.
        let connection = try #require(try Fixtures.connections().first { $0.name.hasPrefix("javaapi") })
        var multiXids: [Int32] = []
        for frame in connection.client.dropFirst() {
            let (header, request) = try Request.decode(frame: frame)
            if request.opCode == .multi { multiXids.append(header.xid) }
        }
        let failed = try #require(multiXids.dropFirst().first)
        let reply = try #require(connection.server.first { frame in
            frame.getInteger(at: frame.readerIndex, as: Int32.self) == failed
        })
        var reader = JuteReader(reply)
        let header = try ReplyHeader(jute: &reader)
        guard case .multi(let results) = try Response.decode(for: .multi, header: header, from: &reader) else {
            Issue.record("not a multi reply")
            return
        }
        #expect(results.results == [.error(0), .error(.badVersion), .error(.runtimeInconsistency)])
    }

    @Test func fourLetterWordConnectionsAreRecognised() throws {
        var words: [FourLetterWord] = []
        for connection in try Fixtures.connections() where !connection.fourLetterBytes.isEmpty {
            var decoder = ClientFrameDecoder()
            var buffer = ByteBuffer(bytes: connection.fourLetterBytes)
            guard case .fourLetterWord(let word, nil) = try decoder.next(from: &buffer) else {
                Issue.record("\(connection.name): not recognised as a four-letter word")
                continue
            }
            words.append(word)
            #expect(!connection.fourLetterAnswer.isEmpty)
        }
        #expect(Set(words) == [.ruok, .srvr, .stat, .mntr, .isro])
    }

    @Test func clientStreamsSplitIntoTheSameFramesAtAnyChunking() throws {
        var generator = SeededGenerator(seed: 0x5eed_f00d)
        for connection in try Fixtures.connections() where connection.fourLetterBytes.isEmpty {
            var stream = ByteBuffer()
            for frame in connection.client { stream.writeJuteFrame { $0.writeImmutableBuffer(frame) } }
            var decoder = ClientFrameDecoder()
            var pending = ByteBuffer()
            var frames: [ByteBuffer] = []
            while stream.readableBytes > 0 {
                let chunk = Int.random(in: 1...min(97, stream.readableBytes), using: &generator)
                var slice = stream.readSlice(length: chunk)!
                pending.writeBuffer(&slice)
                while let next = try decoder.next(from: &pending) {
                    guard case .frame(let frame) = next else {
                        Issue.record("unexpected four-letter word (seed \(generator.seed))")
                        return
                    }
                    frames.append(frame)
                }
            }
            #expect(frames == connection.client, "\(connection.name) (seed \(generator.seed))")
            #expect(pending.readableBytes == 0)
        }
    }

    @Test func zookeeperTxnLogEntriesRoundTrip() throws {
        let txns = try Fixtures.txns()
        #expect(txns.count > 50)
        var nullData = 0
        var types: Set<OpCode> = []
        for bytes in txns {
            let (entry, digest) = try TxnCodec.decode(bytes)
            types.insert(entry.header.type)
            if case .multi(let ops) = entry.txn { for op in ops { types.insert(op.opCode) } }
            // ZooKeeper 3.8 writes a digest after every txn but error txns.
            #expect((digest == nil) == (entry.header.type == .error), "\(bytes.hexDump)")
            var again = ByteBuffer()
            TxnCodec.write(entry, digest: digest, to: &again)
            #expect(again == bytes, "\(entry.header.type): \(bytes.hexDump)")
            if case .create(let create) = entry.txn, create.dataIsNull { nullData += 1 }
        }
        let expected: Set<OpCode> = [
            .createSession, .create, .create2, .createContainer, .createTTL, .delete, .setData, .setACL, .check,
            .multi, .closeSession, .error,
        ]
        #expect(expected.subtracting(types).isEmpty, "not in the log: \(expected.subtracting(types))")
        // A null data buffer stays null (zkCli's create without data, setquota's node, Java's null).
        #expect(nullData == 3)
    }
}
