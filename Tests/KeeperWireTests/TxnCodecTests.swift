import KeeperModel
import NIOCore
import Testing

@testable import KeeperWire

@Suite struct TxnCodecTests {
    static func header(_ type: OpCode, zxid: Int64 = 0x1_0000_0001) -> TxnHeader {
        TxnHeader(clientID: SessionID(0x1000_0001), cxid: 7, zxid: Zxid(zxid), time: 1_764_000_000_000, type: type)
    }

    static let everyTxn: [Txn] = [
        .create(CreateTxn(path: "/a", data: [1], acl: ACL.openUnsafe, kind: .persistent, parentCVersion: 1)),
        .create2(CreateTxn(path: "/e", data: [], acl: ACL.openUnsafe, kind: .ephemeral, parentCVersion: 2)),
        .createContainer(CreateTxn(path: "/c", data: [], acl: ACL.openUnsafe, kind: .container, parentCVersion: 3)),
        .createTTL(CreateTxn(path: "/t", data: [2], acl: ACL.openUnsafe, kind: .ttl(60_000), parentCVersion: 4)),
        .delete(DeleteTxn(path: "/a")),
        .deleteContainer(DeleteTxn(path: "/c")),
        .setData(SetDataTxn(path: "/a", data: [3, 4], version: 5)),
        .setACL(SetACLTxn(path: "/a", acl: ACL.readUnsafe, version: 1)),
        .check(CheckVersionTxn(path: "/a", version: 5)),
        .multi([
            .create(CreateTxn(path: "/m", data: [], acl: ACL.openUnsafe, kind: .persistent, parentCVersion: 5)),
            .check(CheckVersionTxn(path: "/m", version: 0)),
            .error(.ok), .error(.badVersion), .error(.runtimeInconsistency),
        ]),
        .multi([]),
        .createSession(CreateSessionTxn(timeOut: 30_000)),
        .closeSession(CloseSessionTxn(paths2Delete: ["/e"])),
        .closeSession(CloseSessionTxn(paths2Delete: [])),
        .closeSession(CloseSessionTxn(paths2Delete: nil)),
        .error(.noNode),
    ]

    @Test func everyTxnRoundTripsWithAndWithoutDigest() throws {
        for txn in Self.everyTxn {
            for digest in [nil, TxnDigest(version: 2, treeDigest: 0x1234_5678_9abc)] {
                let entry = TxnEntry(header: Self.header(txn.opCode), txn: txn)
                var out = ByteBuffer()
                TxnCodec.write(entry, digest: digest, to: &out)
                let (decoded, decodedDigest) = try TxnCodec.decode(out)
                #expect(decoded == entry, "\(txn)")
                #expect(decodedDigest == digest, "\(txn)")
            }
        }
    }

    @Test func createTxnBytesAreZooKeepers() throws {
        // CreateTxn{path "/a", data [1], acl world:anyone ALL, ephemeral true, parentCVersion 1}.
        var out = ByteBuffer()
        TxnCodec.write(.create2(CreateTxn(path: "/a", data: [1], acl: ACL.openUnsafe, kind: .ephemeral, parentCVersion: 1)), to: &out)
        #expect(out.hexDump == "000000022f610000000101" + "00000001" + "0000001f" + "00000005776f726c64" + "00000006616e796f6e65" + "01" + "00000001")
    }

    @Test func multiOpsAreTypePlusBuffer() throws {
        var out = ByteBuffer()
        TxnCodec.write(.multi([.delete(DeleteTxn(path: "/x")), .error(.noNode)]), to: &out)
        #expect(out.hexDump == "00000002" + "00000002" + "00000006" + "000000022f78" + "ffffffff" + "00000004" + "ffffff9b")
    }

    @Test func unknownTxnTypesAndErrorCodesAreTypedErrors() throws {
        var b = ByteBuffer()
        b.writeJuteLong(1)
        b.writeJuteInt(1)
        b.writeJuteLong(1)
        b.writeJuteLong(1)
        b.writeJuteInt(55)
        #expect(throws: JuteDecodingError(record: "TxnHeader", field: "type", offset: 28, reason: .unknownType(55))) {
            try TxnCodec.decode(b)
        }
        var e = ByteBuffer()
        Self.header(.error).write(to: &e)
        e.writeJuteInt(-9999)
        #expect(throws: JuteDecodingError(record: "ErrorTxn", field: "err", offset: 32, reason: .unknownEnumValue(-9999))) {
            try TxnCodec.decode(e)
        }
    }

    @Test func nestedMultiIsRefusedWithTheOffsetInTheEntry() throws {
        var b = ByteBuffer()
        Self.header(.multi).write(to: &b)
        b.writeJuteInt(1)
        b.writeJuteInt(OpCode.multi.rawValue)
        b.writeJuteBuffer([0, 0, 0, 0] as [UInt8])
        #expect(throws: JuteDecodingError(record: "Txn", field: "type", offset: 36, reason: .invalidMultiOp(14))) {
            try TxnCodec.decode(b)
        }
    }

    @Test func trailingGarbageIsRefused() throws {
        var b = ByteBuffer()
        TxnCodec.write(TxnEntry(header: Self.header(.delete), txn: .delete(DeleteTxn(path: "/a"))), to: &b)
        b.writeInteger(UInt8(1))
        #expect(throws: JuteDecodingError(record: "TxnEntry", field: "end", offset: 38, reason: .trailingBytes(1))) {
            try TxnCodec.decode(b)
        }
    }

    @Test func seededRandomTxnsRoundTrip() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        var g = SeededGenerator(seed: seed)
        func string() -> String {
            let scalars: [Character] = ["a", "/", "é", "中", "🦊", "z", "0"]
            return "/" + String((0..<Int.random(in: 0...12, using: &g)).map { _ in scalars.randomElement(using: &g)! })
        }
        func bytes() -> [UInt8] { (0..<Int.random(in: 0...40, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) } }
        func acl() -> [ACL] {
            (0..<Int.random(in: 0...3, using: &g)).map { _ in
                ACL(perms: Permissions(rawValue: Int32.random(in: 0...31, using: &g)), id: Id(scheme: string(), id: string()))
            }
        }
        func simple() -> Txn {
            switch Int.random(in: 0..<10, using: &g) {
            case 0: .create(CreateTxn(path: string(), data: bytes(), acl: acl(), kind: Bool.random(using: &g) ? .ephemeral : .persistent, parentCVersion: .random(in: -1...100, using: &g)))
            case 1: .createTTL(CreateTxn(path: string(), data: bytes(), acl: acl(), kind: .ttl(.random(in: 1...EphemeralOwner.maxTTL, using: &g)), parentCVersion: 0))
            case 2: .createContainer(CreateTxn(path: string(), data: bytes(), acl: acl(), kind: .container, parentCVersion: 9))
            case 3: .delete(DeleteTxn(path: string()))
            case 4: .setData(SetDataTxn(path: string(), data: bytes(), version: .random(in: 0...Int32.max, using: &g)))
            case 5: .setACL(SetACLTxn(path: string(), acl: acl(), version: 3))
            case 6: .check(CheckVersionTxn(path: string(), version: -1))
            case 7: .error(KeeperErrorCode.allCases.randomElement(using: &g)!)
            case 8: .create2(CreateTxn(path: string(), data: bytes(), acl: acl(), kind: .persistent, parentCVersion: 1))
            default: .deleteContainer(DeleteTxn(path: string()))
            }
        }
        for _ in 0..<2000 {
            let txn: Txn = Int.random(in: 0..<5, using: &g) == 0 ? .multi((0..<Int.random(in: 0...5, using: &g)).map { _ in simple() }) : simple()
            let entry = TxnEntry(header: Self.header(txn.opCode, zxid: .random(in: 0...Int64.max, using: &g)), txn: txn)
            var out = ByteBuffer()
            TxnCodec.write(entry, to: &out)
            #expect(try TxnCodec.decode(out).entry == entry, "seed \(seed)")
        }
    }
}
