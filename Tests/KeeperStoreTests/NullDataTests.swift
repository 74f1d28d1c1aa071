import KeeperModel
import Testing

@testable import KeeperStore

/// ZooKeeper keeps a null data buffer (zkCli's `create /x` without data) apart from an empty
/// one; so does the store, across reopening, with dataLength 0 either way.
@Suite struct NullDataTests {
    @Test func nullDataIsKeptApartFromEmptyData() throws {
        let h = try Harness()
        try h.apply(.create(CreateTxn(path: "/null", data: [], dataIsNull: true, acl: ACL.openUnsafe, kind: .persistent)))
        try h.create("/empty")
        try h.create("/parent")
        try h.apply(.create(CreateTxn(path: "/parent/kid", data: [], dataIsNull: true, acl: ACL.openUnsafe, kind: .persistent)))
        func node(_ p: String) throws -> ZNode? { try h.store.read { try $0.node(at: p) } }
        #expect(try node("/null")?.dataIsNull == true)
        #expect(try node("/empty")?.dataIsNull == false)
        #expect(try node("/null")?.stat.dataLength == 0)
        // The flag shares its field with numChildren on disk: a parent's count is unaffected.
        #expect(try node("/parent")?.stat.numChildren == 1)
        let digestBefore = try h.store.verifyDigest()

        try h.apply(.setData(SetDataTxn(path: "/null", data: [7], version: 1)))
        #expect(try node("/null")?.dataIsNull == false)
        try h.apply(.setData(SetDataTxn(path: "/empty", data: [], dataIsNull: true, version: 1)))
        #expect(try node("/empty")?.dataIsNull == true)
        #expect(try h.store.verifyDigest() != digestBefore)

        h.store = try KeeperStore(directory: h.dir.store)
        #expect(try node("/empty")?.dataIsNull == true)
        #expect(try node("/parent/kid")?.dataIsNull == true)
        _ = try h.store.verifyDigest()
    }
}
