import Foundation
import KeeperModel
import KeeperStore

/// The online backup protocol between a SwiftKeeper admin server and `keeperctl backup
/// --server`: two GET commands whose bodies are backup files (`BackupFileFormat`) exactly as
/// they are stored, and headers saying what they hold.
///
/// - `GET /commands/snapshot` (alias `snap`, as ZooKeeper 3.9 names its streaming snapshot
///   command): a `.store` file of the store's consistent snapshot.
/// - `GET /commands/txns?after=<zxid>`: a `.txns` file of the log records after `after` up to
///   the store's last applied zxid; HTTP 410 when the log no longer holds the record after
///   `after` (purged).
///
/// Both need `Authorization: digest user:password` (ZooKeeper 3.9's admin authentication):
/// 401 without credentials or with wrong ones, 403 when the user lacks ALL permission on `/`.
public enum OnlineBackupProtocol {
    public static let snapshotPath = "/commands/snapshot"
    public static let txnsPath = "/commands/txns"

    /// The data directory's database id, 16 hex digits.
    public static let databaseIDHeader = "X-SwiftKeeper-Database-Id"
    /// The zxid the body reaches: the snapshot's, or the last record's (`0x...`).
    public static let zxidHeader = "X-SwiftKeeper-Zxid"
    /// Txns: the zxid the records follow (the request's `after`).
    public static let previousZxidHeader = "X-SwiftKeeper-Previous-Zxid"
    /// The tree digest at `zxidHeader`'s zxid (hex) and the node count it covers.
    public static let digestHeader = "X-SwiftKeeper-Digest"
    public static let nodeCountHeader = "X-SwiftKeeper-Node-Count"
    /// Snapshot: TxnHeader.time of the snapshot's txn (ms), when the log still holds it.
    public static let snapshotTimeHeader = "X-SwiftKeeper-Snapshot-Time"
    /// Snapshot: the content bytes the body decodes to (the compacted store's size).
    public static let rawBytesHeader = "X-SwiftKeeper-Raw-Bytes"

    /// What a response's headers promise.
    public struct Head: Sendable {
        public var databaseID: UInt64
        public var digest: TreeDigest
        public var previousZxid: Zxid?
        public var snapshotTime: Int64?
        public var rawBytes: Int64?

        init(_ response: AdminResponse) throws {
            func header(_ name: String) throws -> String {
                guard let value = response.headers[name.lowercased()] else {
                    throw BackupError.badServer(url: response.endpoint, detail: "no \(name) header (not a SwiftKeeper server, or an older one)")
                }
                return value
            }
            func bad(_ name: String, _ value: String) -> BackupError {
                BackupError.badServer(url: response.endpoint, detail: "header \(name): \(value.prefix(40)) is not valid")
            }
            let idText = try header(databaseIDHeader)
            guard let id = UInt64(idText, radix: 16) else { throw bad(databaseIDHeader, idText) }
            let zxidText = try header(zxidHeader)
            guard let zxid = Zxid.parse(zxidText) else { throw bad(zxidHeader, zxidText) }
            let digestText = try header(digestHeader)
            guard let value = UInt64(digestText, radix: 16) else { throw bad(digestHeader, digestText) }
            let countText = try header(nodeCountHeader)
            guard let count = Int64(countText) else { throw bad(nodeCountHeader, countText) }
            databaseID = id
            digest = TreeDigest(value: value, nodeCount: count, zxid: zxid)
            if let text = response.headers[previousZxidHeader.lowercased()] {
                guard let z = Zxid.parse(text) else { throw bad(previousZxidHeader, text) }
                previousZxid = z
            }
            if let text = response.headers[snapshotTimeHeader.lowercased()] {
                guard let t = Int64(text) else { throw bad(snapshotTimeHeader, text) }
                snapshotTime = t
            }
            if let text = response.headers[rawBytesHeader.lowercased()] {
                guard let n = Int64(text) else { throw bad(rawBytesHeader, text) }
                rawBytes = n
            }
        }
    }
}

/// Online backups of a running server through its admin server: `keeperctl backup full
/// --server` and `backup incremental --server`. The files and manifests are the offline
/// backups' (`Backup`), so `restore` and `verify` read them unchanged. Every received frame's
/// CRC32s are checked on the way; a full backup's snapshot is also rebuilt in a scratch
/// directory and its digest recomputed and compared with the one the server sent.
public enum RemoteBackup {
    /// Takes a full backup of the server at `endpoint` into `directory` (created if missing).
    public static func full(
        from endpoint: AdminEndpoint, to directory: String, progress: LiveBackup.Progress = { _, _ in }
    ) throws -> Backup.Report {
        let started = DispatchTime.now().uptimeNanoseconds
        let response = try endpoint.get(OnlineBackupProtocol.snapshotPath + "?streaming=true")
        guard response.status == 200 else {
            throw BackupError.refused(url: response.endpoint, status: response.status, message: response.errorMessage())
        }
        let head = try OnlineBackupProtocol.Head(response)
        let slot = try ChainSlot(directory: directory, kind: .full)
        return try slot.run { work, created in
            let scratch = work + "/store"
            try FileSystem.makeDirectory(scratch)
            let name = slot.base + ".store"
            let file = try BackupFileWriter.Sink.create(directory + "/" + name)
            created.append(name)
            let storeFile = try BackupFileWriter.Sink.create(scratch + "/" + KeeperStore.dataFileName)
            let decoder = BackupFrameDecoder(name: response.endpoint, content: .store)
            let total = head.rawBytes ?? 0
            while let block = try response.nextBlock() {
                try file.write(block)
                try decoder.feed(block) { chunk in try storeFile.write(chunk) }
                progress(decoder.rawBytes, max(total, decoder.rawBytes))
            }
            try decoder.finish()
            try file.finish()
            try storeFile.finish()
            let summary = BackupFileSummary(name: name, bytes: file.bytesWritten, rawBytes: decoder.rawBytes, crc32: file.crc)
            let found: TreeDigest
            do { found = try KeeperStore(directory: scratch).verifyDigest() }
            guard found == head.digest else {
                throw BackupError.digestMismatch(at: head.digest.zxid, expected: DigestRecord(head.digest).description, found: DigestRecord(found).description)
            }
            let txnsWriter = try BackupFileWriter(directory: directory, name: slot.base + ".txns", content: .txns)
            created.append(txnsWriter.name)
            let txnsSummary = try txnsWriter.finish()
            let manifest = BackupManifest(
                format: BackupManifest.formatName, formatVersion: BackupManifest.currentVersion, kind: .full,
                sequence: slot.sequence, databaseID: String(head.databaseID, radix: 16),
                previousZxid: found.zxid.description, zxid: found.zxid.description,
                digest: DigestRecord(found), snapshotDigest: DigestRecord(found), snapshotTime: head.snapshotTime,
                firstRecordZxid: nil, lastRecordZxid: nil, recordCount: 0, firstRecordTime: nil, lastRecordTime: nil,
                files: [summary, txnsSummary], toolVersion: BackupManifest.toolVersion, createdAt: Backup.iso8601(Date()))
            return try slot.commit(manifest, created: &created, started: started)
        }
    }

    /// Takes an incremental backup of the server at `endpoint`: the log records after the
    /// last backup in `directory`. Returns nil when the server holds nothing newer.
    public static func incremental(
        from endpoint: AdminEndpoint, to directory: String, progress: LiveBackup.Progress = { _, _ in }
    ) throws -> Backup.Report? {
        let started = DispatchTime.now().uptimeNanoseconds
        let chain = try BackupChain.load(directory)
        guard let last = chain.manifests.last else {
            throw BackupError.badManifest(file: directory, detail: "no backup to continue: take a full backup first")
        }
        try chain.checkLinks()
        let after = last.zxidValue
        let response = try endpoint.get(OnlineBackupProtocol.txnsPath + "?after=\(after)")
        guard response.status == 200 else {
            let message = response.errorMessage()
            if response.status == 410 {
                throw BackupError.gap(after: after, through: nil, detail: "\(response.endpoint): \(message)")
            }
            throw BackupError.refused(url: response.endpoint, status: response.status, message: message)
        }
        let head = try OnlineBackupProtocol.Head(response)
        guard String(head.databaseID, radix: 16) == last.databaseID else {
            throw BackupError.inconsistentSource(detail: "the server is database \(String(head.databaseID, radix: 16)), the backups in \(directory) are of database \(last.databaseID): take a full backup (a restored data directory gets a new database id)")
        }
        guard head.previousZxid == after else {
            throw BackupError.badServer(url: response.endpoint, detail: "asked for the txns after \(after), got those after \(head.previousZxid.map { "\($0)" } ?? "?")")
        }
        guard try LiveBackup.checkTarget(head.digest, after: last) else {
            _ = try response.readBody()
            return nil
        }
        let target = head.digest.zxid
        let slot = try ChainSlot(directory: directory, kind: .incremental)
        return try slot.run { _, created in
            let name = slot.base + ".txns"
            let file = try BackupFileWriter.Sink.create(directory + "/" + name)
            created.append(name)
            let decoder = BackupFrameDecoder(name: response.endpoint, content: .txns)
            let parser = TxnRecordParser(name: response.endpoint)
            var previous = after
            var count = 0
            var first: Zxid?
            var firstTime: Int64?
            var lastTime: Int64?
            let total = Int64(target.epoch == after.epoch ? target.counter - after.counter : target.counter)
            while let block = try response.nextBlock() {
                try file.write(block)
                try decoder.feed(block) { chunk in
                    try parser.feed(chunk) { zxid, payload in
                        guard zxid > previous, zxid <= target else {
                            throw BackupError.corrupt(file: response.endpoint, offset: decoder.rawBytes, detail: "record \(zxid) after \(previous) (the stream ends at \(target))")
                        }
                        let entry = try Backup.decode(payload, zxid: zxid, file: response.endpoint, offset: decoder.rawBytes)
                        if first == nil {
                            first = zxid
                            firstTime = entry.header.time
                        }
                        lastTime = entry.header.time
                        previous = zxid
                        count += 1
                    }
                }
                progress(Int64(count), max(total, Int64(count)))
            }
            try decoder.finish()
            try parser.finish()
            guard previous == target else {
                throw BackupError.truncated(file: response.endpoint, offset: decoder.rawBytes, detail: "the records end at \(previous), the server promised \(target)")
            }
            try file.finish()
            let summary = BackupFileSummary(name: name, bytes: file.bytesWritten, rawBytes: decoder.rawBytes, crc32: file.crc)
            let manifest = BackupManifest(
                format: BackupManifest.formatName, formatVersion: BackupManifest.currentVersion, kind: .incremental,
                sequence: slot.sequence, databaseID: last.databaseID, previousZxid: last.zxid, zxid: target.description,
                digest: DigestRecord(head.digest), snapshotDigest: nil, snapshotTime: nil,
                firstRecordZxid: first?.description, lastRecordZxid: previous.description, recordCount: count,
                firstRecordTime: firstTime, lastRecordTime: lastTime, files: [summary],
                toolVersion: BackupManifest.toolVersion, createdAt: Backup.iso8601(Date()))
            return try slot.commit(manifest, created: &created, started: started)
        }
    }
}
