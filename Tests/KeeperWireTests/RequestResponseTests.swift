import KeeperModel
import NIOCore
import Testing

@testable import KeeperWire

/// Requests and replies the captured clients cannot produce, the typed request enum, and the
/// reply encoders the server uses.
@Suite struct RequestResponseTests {
    static let stat = Stat(
        czxid: 1, mzxid: 2, ctime: 3, mtime: 4, version: 5, cversion: 6, aversion: 7, ephemeralOwner: 8,
        dataLength: 9, numChildren: 10, pzxid: 11)

    /// One request of every opcode the enum has.
    static let everyRequest: [Request] = [
        .create(CreateRequest(path: "/c", data: ByteBuffer(bytes: [1, 2]), acl: ACL.openUnsafe, mode: .ephemeralSequential)),
        .delete(DeleteRequest(path: "/d", version: 3)),
        .exists(ExistsRequest(path: "/e", watch: true)),
        .getData(GetDataRequest(path: "/g", watch: false)),
        .setData(SetDataRequest(path: "/s", data: nil, version: -1)),
        .getACL(GetACLRequest(path: "/a")),
        .setACL(SetACLRequest(path: "/a", acl: ACL.creatorAll + ACL.readUnsafe, version: 2)),
        .getChildren(GetChildrenRequest(path: "/", watch: true)),
        .sync(SyncRequest(path: "/")),
        .ping,
        .getChildren2(GetChildren2Request(path: "/", watch: false)),
        .check(CheckVersionRequest(path: "/k", version: 1)),
        .multi(MultiRequest(ops: [
            .create(CreateRequest(path: "/m", data: nil, acl: ACL.openUnsafe, flags: 0)),
            .create2(CreateRequest(path: "/m2", data: ByteBuffer(), acl: ACL.openUnsafe, flags: 2)),
            .createContainer(CreateRequest(path: "/mc", data: nil, acl: ACL.openUnsafe, flags: 4)),
            .createTTL(CreateTTLRequest(path: "/mt", data: nil, acl: ACL.openUnsafe, flags: 5, ttl: 1000)),
            .setData(SetDataRequest(path: "/m", data: ByteBuffer(bytes: [9]), version: 0)),
            .check(CheckVersionRequest(path: "/m", version: 1)),
            .delete(DeleteRequest(path: "/m", version: -1)),
        ])),
        .create2(CreateRequest(path: "/c2", data: nil, acl: ACL.openUnsafe, mode: .persistent)),
        .reconfig(ReconfigRequest(joiningServers: "server.4=h:1:2;3", leavingServers: nil, newMembers: nil, curConfigID: -1)),
        .checkWatches(CheckWatchesRequest(path: "/w", type: .data)),
        .removeWatches(RemoveWatchesRequest(path: "/w", type: .any)),
        .createContainer(CreateRequest(path: "/cc", data: nil, acl: ACL.openUnsafe, mode: .container)),
        .createTTL(CreateTTLRequest(path: "/t", data: ByteBuffer(bytes: [0]), acl: ACL.openUnsafe, flags: 6, ttl: 60_000)),
        .multiRead(MultiRequest(ops: [.getData(GetDataRequest(path: "/", watch: false)), .getChildren(GetChildrenRequest(path: "/", watch: false))])),
        .auth(AuthPacket(scheme: "digest", auth: Array("u:p".utf8))),
        .setWatches(SetWatches(relativeZxid: Zxid(5), dataWatches: ["/d"], existWatches: [], childWatches: ["/c", "/"])),
        .sasl(GetSASLRequest(token: [1, 2, 3])),
        .getEphemerals(GetEphemeralsRequest(path: "/")),
        .getAllChildrenNumber(GetAllChildrenNumberRequest(path: "/")),
        .setWatches2(SetWatches(
            relativeZxid: Zxid(5), dataWatches: [], existWatches: ["/x"], childWatches: [], persistentWatches: ["/p"],
            persistentRecursiveWatches: ["/r"])),
        .addWatch(AddWatchRequest(path: "/p", mode: .persistentRecursive)),
        .whoAmI,
        .closeSession,
        .createSession(CreateSessionRequest(timeOut: 30_000)),
    ]

    @Test func everyOpcodeRoundTripsThroughAFrame() throws {
        #expect(Set(Self.everyRequest.map(\.opCode)) == Set(OpCode.allCases).subtracting([.notification, .deleteContainer, .error]))
        for (index, request) in Self.everyRequest.enumerated() {
            var out = ByteBuffer()
            request.writeFrame(xid: Int32(index), to: &out)
            let frame = try #require(try JuteFraming.nextFrame(in: &out, maxLength: 1_048_575))
            #expect(out.readableBytes == 0)
            let (header, decoded) = try Request.decode(frame: frame)
            #expect(header == RequestHeader(xid: Int32(index), type: request.opCode))
            #expect(decoded == request)
        }
    }

    @Test func unknownOpcodesAreTypedErrorsTheServerCanAnswer() throws {
        for type: Int32 in [0, 10, 20, 23, 99, 108, -1, -12, Int32.max] {
            var b = ByteBuffer()
            RequestHeader(xid: 42, type: type).write(to: &b)
            #expect(throws: JuteDecodingError(record: "RequestHeader", field: "type", offset: 4, reason: .unknownType(type))) {
                try Request.decode(frame: b)
            }
            // The header alone still decodes, so the xid can be answered.
            var r = JuteReader(b)
            #expect((try? RequestHeader(jute: &r))?.xid == 42)
        }
    }

    @Test func opsThatMayNotBeInAMultiAreRefused() throws {
        var b = ByteBuffer()
        RequestHeader(xid: 1, type: .multi).write(to: &b)
        MultiOp.getData(GetDataRequest(path: "/", watch: false)).write(to: &b)
        MultiHeader.end.write(to: &b)
        #expect(throws: JuteDecodingError(record: "MultiRequest", field: "type", offset: 8, reason: .invalidMultiOp(4))) {
            try Request.decode(frame: b)
        }
        var r = ByteBuffer()
        RequestHeader(xid: 1, type: .multiRead).write(to: &r)
        MultiOp.delete(DeleteRequest(path: "/", version: -1)).write(to: &r)
        MultiHeader.end.write(to: &r)
        #expect(throws: JuteDecodingError(record: "MultiReadRequest", field: "type", offset: 8, reason: .invalidMultiOp(2))) {
            try Request.decode(frame: r)
        }
    }

    @Test func badClientEnumsArePreservedForTheServerToAnswer() throws {
        var b = ByteBuffer()
        RequestHeader(xid: 1, type: .create).write(to: &b)
        CreateRequest(path: "/x", data: nil, acl: ACL.openUnsafe, flags: 77).write(to: &b)
        let (_, request) = try Request.decode(frame: b)
        guard case .create(let create) = request else {
            Issue.record("not a create")
            return
        }
        #expect(create.flags == 77 && create.createMode == nil)
        #expect(WatchesRequest(path: "/", rawType: 9).watcherType == nil)
        #expect(AddWatchRequest(path: "/", rawMode: 2).addWatchMode == nil)
    }

    @Test func trailingBytesAfterARequestAreIgnoredAsZooKeeperDoes() throws {
        var b = ByteBuffer()
        RequestHeader(xid: 1, type: .ping).write(to: &b)
        b.writeJuteInt(12345)
        #expect(try Request.decode(frame: b).request == .ping)
    }

    @Test func getDataReplyIsWrittenInPlace() throws {
        var out = ByteBuffer()
        let data: [UInt8] = [0x68, 0x69]
        data.withUnsafeBytes { out.writeGetDataReply(xid: 7, zxid: Zxid(0x1_0000_0002), data: $0, stat: Self.stat) }
        out.writeGetDataReply(xid: 8, zxid: Zxid(3), data: nil, stat: Self.stat)
        var frame = try #require(try JuteFraming.nextFrame(in: &out, maxLength: 1 << 20))
        #expect(frame.readableBytes == 16 + 4 + 2 + 68)
        var reader = JuteReader(frame)
        #expect(try ReplyHeader(jute: &reader) == ReplyHeader(xid: 7, zxid: Zxid(0x1_0000_0002), err: .ok))
        #expect(try Response.decode(for: .getData, header: ReplyHeader(xid: 7, zxid: Zxid(0), err: .ok), from: &reader)
            == .getData(GetDataResponse(data: ByteBuffer(bytes: data), stat: Self.stat)))
        frame = try #require(try JuteFraming.nextFrame(in: &out, maxLength: 1 << 20))
        reader = JuteReader(frame)
        _ = try ReplyHeader(jute: &reader)
        #expect(try GetDataResponse(jute: &reader).data == nil)
    }

    @Test func everyReplyShapeRoundTrips() throws {
        let cases: [(OpCode, Response)] = [
            (.delete, .empty),
            (.create, .create(CreateResponse(path: "/a"))),
            (.createTTL, .create2(Create2Response(path: "/t", stat: Self.stat))),
            (.check, .stat(StatResponse(stat: Self.stat))),
            (.reconfig, .getData(GetDataResponse(data: ByteBuffer(string: "server.1=..."), stat: Self.stat))),
            (.getACL, .getACL(GetACLResponse(acl: ACL.openUnsafe, stat: Self.stat))),
            (.getEphemerals, .strings(StringListResponse(["/e1", "/e2"]))),
            (.getChildren2, .children2(GetChildren2Response(children: [], stat: Self.stat))),
            (.sync, .sync(SyncResponse(path: "/"))),
            (.multi, .multi(MultiResponse(results: [
                .create(path: "/a"), .create2(path: "/b", stat: Self.stat), .delete, .setData(Self.stat), .check,
                .error(.noNode),
            ]))),
            (.multiRead, .multi(MultiResponse(results: [.getData(data: nil, stat: Self.stat), .getChildren(["x"]), .error(.noAuth)]))),
            (.sasl, .sasl(SetSASLResponse(token: nil))),
            (.getAllChildrenNumber, .int(IntResponse(12))),
            (.whoAmI, .whoAmI(WhoAmIResponse(clientInfo: [ClientInfo(authScheme: "ip", user: "127.0.0.1")]))),
        ]
        for (opCode, response) in cases {
            var out = ByteBuffer()
            let header = ReplyHeader(xid: 3, zxid: Zxid(9), err: .ok)
            out.writeReply(header, response)
            let frame = try #require(try JuteFraming.nextFrame(in: &out, maxLength: 1 << 20))
            var reader = JuteReader(frame)
            let header2 = try ReplyHeader(jute: &reader)
            #expect(header2 == header)
            #expect(try Response.decode(for: opCode, header: header2, from: &reader) == response, "\(opCode)")
            #expect(reader.isAtEnd)
        }
    }

    @Test func errorRepliesHaveNoBody() throws {
        var out = ByteBuffer()
        out.writeReply(ReplyHeader(xid: 4, zxid: Zxid(1), err: .noNode))
        let frame = try #require(try JuteFraming.nextFrame(in: &out, maxLength: 1 << 20))
        #expect(frame.readableBytes == 16)
        var reader = JuteReader(frame)
        let header = try ReplyHeader(jute: &reader)
        #expect(header.code == .noNode)
        #expect(try Response.decode(for: .getData, header: header, from: &reader) == .empty)
    }

    @Test func notificationsUseXidMinusOne() throws {
        var out = ByteBuffer()
        out.writeNotification(WatchEvent(type: .nodeDataChanged, state: .syncConnected, path: "/w"))
        let frame = try #require(try JuteFraming.nextFrame(in: &out, maxLength: 1 << 20))
        var reader = JuteReader(frame)
        let header = try ReplyHeader(jute: &reader)
        #expect(header == ReplyHeader(xid: -1, zxid: Zxid(-1), err: .ok))
        #expect(try Response.decode(for: .getData, header: header, from: &reader)
            == .watchEvent(WatchEvent(type: .nodeDataChanged, state: .syncConnected, path: "/w")))
    }

    @Test func unknownWatchEventTypeIsATypedError() throws {
        var b = ByteBuffer()
        b.writeJuteInt(99)
        b.writeJuteInt(3)
        b.writeJuteString("/")
        var r = JuteReader(b)
        #expect(throws: JuteDecodingError(record: "WatcherEvent", field: "type", offset: 0, reason: .unknownEnumValue(99))) {
            try WatchEvent(jute: &r)
        }
    }

    @Test func connectResponseCarriesReadOnlyOnlyWhenTheClientSentIt() throws {
        for readOnly: Bool? in [nil, false, true] {
            let request = ConnectRequest(
                lastZxidSeen: Zxid(0), timeOut: 30_000, sessionID: .none, passwd: [UInt8](repeating: 0, count: 16),
                readOnly: readOnly)
            let bytes = request.encoded()
            #expect(bytes.readableBytes == (readOnly == nil ? 44 : 45))
            let decoded = try ConnectRequest.decode(from: bytes)
            #expect(decoded == request)
            let answer = ConnectResponse(
                timeOut: 30_000, sessionID: SessionID(0x1234), passwd: [UInt8](repeating: 7, count: 16),
                readOnly: decoded.readOnly.map { _ in false })
            #expect(answer.encoded().readableBytes == (readOnly == nil ? 36 : 37))
            let expired = ConnectResponse.expired(answering: decoded)
            #expect(expired.timeOut == 0 && expired.sessionID == .none && expired.passwd == [UInt8](repeating: 0, count: 16))
            #expect((expired.readOnly == nil) == (readOnly == nil))
        }
    }
}
