import KeeperModel
import NIOCore
import Testing

@testable import KeeperWire

/// A null data buffer (length -1) survives the txn codec as null, apart from an empty one.
@Suite struct NullDataTxnTests {
    @Test(arguments: [true, false])
    func nullAndEmptyDataRoundTrip(_ isNull: Bool) throws {
        let txns: [Txn] = [
            .create(CreateTxn(path: "/n", data: [], dataIsNull: isNull, acl: ACL.openUnsafe, kind: .persistent)),
            .createContainer(CreateTxn(path: "/c", data: [], dataIsNull: isNull, acl: ACL.openUnsafe, kind: .container)),
            .setData(SetDataTxn(path: "/n", data: [], dataIsNull: isNull, version: 1)),
        ]
        for txn in txns {
            let entry = TxnEntry(
                header: TxnHeader(clientID: SessionID(1), cxid: 1, zxid: Zxid(5), time: 0, type: txn.opCode), txn: txn)
            var out = ByteBuffer()
            TxnCodec.write(entry, to: &out)
            // The data field follows the TxnHeader (32 bytes) and the path (4 + 2 bytes).
            #expect(out.getInteger(at: 32 + 6, as: Int32.self) == (isNull ? -1 : 0))
            let (decoded, _) = try TxnCodec.decode(out)
            #expect(decoded == entry)
        }
    }
}
