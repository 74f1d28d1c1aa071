import Foundation
import KeeperBackup
import KeeperLog
import KeeperModel
import KeeperStore
import Logging
import Testing

@testable import KeeperServer

/// Online backups end to end: a real server (client port, admin HTTP server), its backup
/// service, and keeperctl's client side (`RemoteBackup`) over HTTP.
@Suite(.serialized) struct OnlineBackupTests {
    static let superUser = "super:backup-secret"

    /// Starts a server on `data`'s directory (its store and log must be closed) with the
    /// backup service, as the server's start does once wired.
    static func startServer(_ data: LiveData) throws -> (KeeperServer, BackupService, AdminEndpoint) {
        var config = data.config
        config.clientPort = 0
        config.adminServerPort = 0
        config.backup.directory = nil  // online commands only: no scheduled backups here
        config.snapCount = 10
        config.autopurgeSnapRetainCount = 0
        config.superDigest = Authentication.digest(OnlineBackupTests.superUser)
        let server = try KeeperServer(config: config, logger: Logger(label: "test-server"))
        // The server's own service once KeeperServer starts one; until then, the test's.
        let service: BackupService
        if let running = BackupService.running(forDataDir: config.dataDir) {
            service = running
        } else {
            let slot = server.storeSlot
            let adapter = server.log
            service = try BackupService.start(
                config: config, store: { slot.store }, log: { adapter.log }, logger: Logger(label: "test-backup"))
        }
        let endpoint = try AdminEndpoint(url: "http://127.0.0.1:\(server.adminAddress!.port!)", auth: OnlineBackupTests.superUser)
        return (server, service, endpoint)
    }

    static func stop(_ server: KeeperServer, _ service: BackupService) throws {
        try server.shutdown()
        service.stop()  // a second stop (the server's own service) returns at once
    }

    @Test func fullAndIncrementalThroughTheAdminServerRestoreTheServersTree() async throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        let data = try LiveData(seed: seed, segmentMaxRecords: 10)
        try await data.write(50)
        try data.close()
        let chainA = data.root.path + "/chain-a"
        let chainB = data.root.path + "/chain-b"

        var (server, service, endpoint) = try OnlineBackupTests.startServer(data)
        // Authentication: none, then a user without ALL on / (the root ACL is world:anyone).
        var anonymous = endpoint
        anonymous.auth = nil
        do {
            _ = try RemoteBackup.full(from: anonymous, to: chainA)
            Issue.record("a backup without credentials was served")
        } catch BackupError.refused(_, let status, _) {
            #expect(status == 401)
        }
        var stranger = endpoint
        stranger.auth = "bob:pw"
        do {
            _ = try RemoteBackup.full(from: stranger, to: chainA)
            Issue.record("a backup for a user without ALL on / was served")
        } catch BackupError.refused(_, let status, _) {
            #expect(status == 403)
        }
        #expect(try BackupChain.load(chainA).manifests.isEmpty, "a refused backup leaves nothing")

        let full = try RemoteBackup.full(from: endpoint, to: chainA)
        #expect(full.manifest.zxidValue == data.zxid, "seed \(seed)")
        #expect(full.manifest.digest.matches(try server.store.digest()))
        _ = try RemoteBackup.full(from: endpoint, to: chainB)
        #expect(try RemoteBackup.incremental(from: endpoint, to: chainA) == nil, "nothing new yet")
        try OnlineBackupTests.stop(server, service)

        // More writes while the server is down, then again online.
        try data.open()
        try await data.write(30)
        try data.close()
        (server, service, endpoint) = try OnlineBackupTests.startServer(data)
        defer {
            do { try OnlineBackupTests.stop(server, service) } catch { Issue.record("server stop: \(error)") }
        }
        let incremental = try #require(try RemoteBackup.incremental(from: endpoint, to: chainA))
        #expect(incremental.manifest.recordCount == 30, "seed \(seed)")
        #expect(incremental.manifest.zxidValue == data.zxid)

        // The status command and mntr report the streams.
        let response = try endpoint.get("/commands/backup")
        #expect(response.status == 200)
        let status = try JSONSerialization.jsonObject(with: Data(try response.readBody())) as! [String: Any]
        #expect((status["online"] as? [String: Any])?["txn_streams_served"] as? Int == 1)
        let mntr = Dictionary(uniqueKeysWithValues: server.context.report().mntrPairs)
        #expect(mntr["zk_backup_online_txn_streams"] == "1")

        // Restore and verify what came over HTTP: the server's tree, digest for digest.
        let restored = try restoredDigest(chainA, root: data.root.path)
        #expect(restored == (try server.store.digest()), "seed \(seed)")
        _ = try Restore.verify(chainA, scratchParent: data.root.path)

        // Purge the log through the admin command; chain B (ending at the first run's zxid)
        // can then no longer be continued: a gap, never a silent skip.
        let purge = try endpoint.get("/commands/purge")
        #expect(purge.status == 200, "\(purge.errorMessage())")
        do {
            _ = try RemoteBackup.incremental(from: endpoint, to: chainB)
            Issue.record("an incremental across purged txns was served")
        } catch BackupError.gap {}
    }

    @Test func aCutStreamIsRefusedAndLeavesNothing() throws {
        // The client's decoder refuses a stream cut anywhere, naming the stream and offset.
        var encoded: [UInt8] = []
        let encoder = try BackupFrameEncoder(content: .store) { encoded += $0 }
        var rng = SplitMix(state: 7)
        try encoder.write((0..<(3 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next() % 7) })
        try encoder.finish()
        for cut in [0, 10, 16, 40, encoded.count / 2, encoded.count - 1] {
            let decoder = BackupFrameDecoder(name: "stream", content: .store)
            var raw = 0
            try decoder.feed(Array(encoded[..<cut])) { raw += $0.count }
            #expect(throws: BackupError.self) { try decoder.finish() }
        }
        var damaged = encoded
        damaged[encoded.count / 3] ^= 0x40
        let decoder = BackupFrameDecoder(name: "stream", content: .store)
        #expect(throws: BackupError.self) {
            for block in stride(from: 0, to: damaged.count, by: 1000) {
                try decoder.feed(Array(damaged[block..<min(damaged.count, block + 1000)])) { _ in }
            }
            try decoder.finish()
        }
        // Whole, in any block size: the same bytes back.
        let whole = BackupFrameDecoder(name: "stream", content: .store)
        var out: [UInt8] = []
        for block in stride(from: 0, to: encoded.count, by: 4099) {
            try whole.feed(Array(encoded[block..<min(encoded.count, block + 4099)])) { out += $0 }
        }
        try whole.finish()
        #expect(out.count == 3 << 20)
    }
}
