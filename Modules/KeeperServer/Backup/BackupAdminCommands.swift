import Foundation
import KeeperBackup
import KeeperModel
import KeeperStore
import NIOCore
import NIOHTTP1
import Synchronization

/// The admin server's backup commands:
///
/// - `GET /commands/backup`: the backup service's state (no authentication, like `monitor`).
/// - `GET /commands/snapshot` (alias `snap`): streams a `.store` backup file of a consistent
///   snapshot (see `OnlineBackupProtocol`). Authenticated.
/// - `GET /commands/txns?after=<zxid>`: streams a `.txns` backup file of the log records after
///   `after` up to the store's last applied zxid; 410 when they were purged. Authenticated.
/// - `GET /commands/purge`: purges the log now, as the scheduled purge does. Authenticated.
///
/// Authentication follows ZooKeeper 3.9's admin server: an `Authorization: digest
/// user:password` header; 401 when it is missing or not of the digest scheme, 403 when the
/// user may not. Authorized are the super user (`DigestAuthenticationProvider.superDigest`)
/// and digest users with ALL permission on `/`. Unlike ZooKeeper, world:anyone on `/` does not
/// authorize: a backup holds every znode, also those other ACLs hide.
///
/// Streams run on a thread of their own (the snapshot is copied and checked before the first
/// byte) and write one frame at a time, waiting for each write: the socket's pace bounds the
/// memory, never the store's size.
enum BackupAdminCommands {
    static let names: Set<String> = ["backup", "snapshot", "snap", "txns", "purge"]

    struct Refusal: Error {
        var status: HTTPResponseStatus
        var message: String
    }

    /// Answers `name`; the response is written to `channel` (now or from a stream's thread).
    static func handle(
        _ name: String, query: [String: String], headers: HTTPHeaders, server: ServerContext, channel: any Channel
    ) {
        let canonical = name == "snap" ? "snapshot" : name
        guard let service = BackupService.running(forDataDir: server.config.dataDir) else {
            respond(channel, .serviceUnavailable, canonical, error: "the backup service is not running on this server")
            return
        }
        if canonical == "backup" {
            respond(channel, .ok, canonical, fields: service.currentStatus.json)
            return
        }
        do {
            try authorize(headers, config: server.config, store: service.currentStore())
        } catch let refusal as Refusal {
            service.status.withLock { $0.onlineRefused += 1 }
            respond(channel, refusal.status, canonical, error: refusal.message)
            return
        } catch {
            respond(channel, .internalServerError, canonical, error: "authorization failed: \(error)")
            return
        }
        switch canonical {
        case "purge":
            let thread = Thread {
                let removed = service.purgeLog(now: service.wallClock())
                let status = service.currentStatus
                if let problem = status.lastPurgeError {
                    respond(channel, .internalServerError, canonical, error: problem)
                } else {
                    respond(channel, .ok, canonical, fields: [
                        ("removed_segments", .array(removed.map { .string($0.name) })),
                        ("purge_before_zxid", status.lastPurgeBefore.map { .string($0.description) } ?? .null),
                    ])
                }
            }
            thread.name = "swiftkeeper-admin-purge"
            thread.start()
        case "snapshot", "txns":
            guard service.config.backup.onlineEnabled else {
                respond(channel, .serviceUnavailable, canonical, error: "online backups are disabled (admin.snapshot.enabled=false)")
                return
            }
            var after = Zxid.zero
            if canonical == "txns" {
                guard let text = query["after"], let z = Zxid.parse(text) else {
                    respond(channel, .badRequest, canonical, error: "give after=<zxid> (hex 0x... or decimal): the zxid the backup chain ends at")
                    return
                }
                after = z
            }
            guard service.onlineSlots.add(1, ordering: .acquiringAndReleasing).newValue <= BackupService.maxOnlineStreams else {
                service.onlineSlots.subtract(1, ordering: .acquiringAndReleasing)
                respond(channel, .tooManyRequests, canonical, error: "another online backup is being streamed; try again when it ends")
                return
            }
            let from = after
            let thread = Thread {
                defer { service.streamEnded() }
                if canonical == "snapshot" {
                    streamSnapshot(service, channel: channel)
                } else {
                    streamTxns(service, after: from, channel: channel)
                }
            }
            thread.name = "swiftkeeper-admin-" + canonical
            thread.start()
        default:
            preconditionFailure("unhandled backup command \(canonical)")
        }
    }

    /// Checks the `Authorization: digest user:password` header (see the type's comment).
    static func authorize(_ headers: HTTPHeaders, config: ServerConfig, store: KeeperStore) throws {
        guard let value = headers.first(name: "Authorization") else {
            throw Refusal(status: .unauthorized, message: "Auth info is missing for the command: send Authorization: digest user:password")
        }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "digest", parts[1].contains(":") else {
            throw Refusal(status: .unauthorized, message: "Not authenticated: expected Authorization: digest user:password")
        }
        guard let ids = Authentication.authenticate(scheme: "digest", auth: Array(parts[1].utf8), superDigest: config.superDigest, remoteAddress: "") else {
            throw Refusal(status: .unauthorized, message: "Not authenticated")
        }
        if ids.contains(where: { $0.scheme == "super" }) { return }
        let acl = try store.read { try $0.acl(at: "/") }?.acl ?? []
        let allowed = acl.contains { entry in
            entry.perms.contains(.all) && entry.id.scheme == "digest" && ids.contains(entry.id)
        }
        guard allowed else {
            throw Refusal(status: .forbidden, message: "Not authorized: the user needs ALL permission on / through a digest ACL entry, or to be the super user")
        }
    }

    // MARK: Streams

    private static let scratchCounter = Mutex(0)

    static func streamSnapshot(_ service: BackupService, channel: any Channel) {
        let parent = service.config.backup.tempDirectory ?? service.config.dataDir
        let n = scratchCounter.withLock { value in
            value += 1
            return value
        }
        let scratch = parent + "/" + BackupService.snapshotCopyPrefix + "\(getpid())-\(n)"
        var headSent = false
        do {
            try service.online("online-snapshot") { progress in
                defer { removeScratch(scratch, service: service) }
                let source = try service.source
                // The client recomputes the digest from the nodes it receives and compares.
                let snapshot = try LiveSnapshot.take(of: source.store, into: scratch, verify: false)
                var headers = streamHeaders(source, digest: snapshot.digest)
                headers.add(name: OnlineBackupProtocol.rawBytesHeader, value: String(snapshot.bytes))
                // ZooKeeper 3.9's snapshot command's headers, for tools that read them.
                headers.add(name: "last_zxid", value: snapshot.digest.zxid.description)
                headers.add(name: "snapshot_size", value: String(snapshot.bytes))
                if let time = try LiveBackup.time(of: snapshot.digest.zxid, in: source.log) {
                    headers.add(name: OnlineBackupProtocol.snapshotTimeHeader, value: String(time))
                }
                try send(channel, .head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
                headSent = true
                try snapshot.encode(emit: { bytes in try sendBody(channel, bytes) }, progress: { progress($0, snapshot.bytes) })
                try send(channel, .end(nil))
            }
            service.status.withLock { $0.snapshotsServed += 1 }
            channel.close(promise: nil)
        } catch {
            failStream(service, channel: channel, command: "snapshot", headSent: headSent, error: error)
        }
    }

    static func streamTxns(_ service: BackupService, after: Zxid, channel: any Channel) {
        var headSent = false
        do {
            try service.online("online-txns") { progress in
                let source = try service.source
                let target = try LiveBackup.committed(source.store)
                guard after <= target.zxid else {
                    throw Refusal(status: .conflict, message: "the backup chain ends at \(after), after this server's last applied zxid \(target.zxid): these backups are not of this server's history")
                }
                if after < target.zxid {
                    let segments = source.log.segments()
                    guard let oldest = segments.first?.previousZxid, oldest <= after else {
                        throw Refusal(status: .gone, message: "the log no longer holds the txns after \(after) (it starts after \(segments.first?.previousZxid.description ?? "nothing"))")
                    }
                }
                var headers = streamHeaders(source, digest: target)
                headers.add(name: OnlineBackupProtocol.previousZxidHeader, value: after.description)
                try send(channel, .head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
                headSent = true
                let encoder = try BackupFrameEncoder(content: .txns) { bytes in try sendBody(channel, bytes) }
                let total = Int64(target.zxid.epoch == after.epoch ? target.zxid.counter - after.counter : target.zxid.counter)
                var count: Int64 = 0
                try LiveBackup.forEachRecord(in: source.log, after: after, through: target.zxid) { zxid, payload in
                    try payload.withUnsafeBytes { try encoder.writeRecord(zxid: zxid, payload: $0) }
                    count += 1
                    if count % 1024 == 0 { progress(count, total) }
                }
                try encoder.finish()
                try send(channel, .end(nil))
            }
            service.status.withLock { $0.txnStreamsServed += 1 }
            channel.close(promise: nil)
        } catch {
            failStream(service, channel: channel, command: "txns", headSent: headSent, error: error)
        }
    }

    static func streamHeaders(_ source: LiveBackup.Source, digest: TreeDigest) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/octet-stream")
        headers.add(name: "Transfer-Encoding", value: "chunked")
        headers.add(name: OnlineBackupProtocol.databaseIDHeader, value: String(source.databaseID, radix: 16))
        headers.add(name: OnlineBackupProtocol.zxidHeader, value: digest.zxid.description)
        headers.add(name: OnlineBackupProtocol.digestHeader, value: String(digest.value, radix: 16))
        headers.add(name: OnlineBackupProtocol.nodeCountHeader, value: String(digest.nodeCount))
        return headers
    }

    /// Before the head: an error answer. After it: the stream is cut (no last chunk), which
    /// the client reports as a truncated backup; the error goes to the log and the status.
    static func failStream(_ service: BackupService, channel: any Channel, command: String, headSent: Bool, error: any Error) {
        if error is Refusal {
            service.logger.notice("online \(command) refused", metadata: ["reason": "\(error)"])
        } else {
            service.logger.error("online \(command) failed", metadata: ["error": "\(error)"])
        }
        if headSent {
            channel.close(promise: nil)
            return
        }
        if let refusal = error as? Refusal {
            respond(channel, refusal.status, command, error: refusal.message)
        } else {
            respond(channel, .internalServerError, command, error: "\(error)")
        }
    }

    static func removeScratch(_ path: String, service: BackupService) {
        do { try FileManager.default.removeItem(atPath: path) } catch {
            service.logger.warning("could not remove an online snapshot's scratch copy", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }

    static func send(_ channel: any Channel, _ part: HTTPServerResponsePart) throws {
        try channel.writeAndFlush(part).wait()
    }

    static func sendBody(_ channel: any Channel, _ bytes: [UInt8]) throws {
        try send(channel, .body(.byteBuffer(ByteBuffer(bytes: bytes))))
    }

    /// A complete JSON answer in ZooKeeper's admin shape (`command`, `error`).
    static func respond(
        _ channel: any Channel, _ status: HTTPResponseStatus, _ command: String, fields: [(String, JSON)] = [], error: String? = nil
    ) {
        let body = JSON.object(fields + [("command", .string(command)), ("error", error.map { .string($0) } ?? .null)]).text
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        if status == .unauthorized { headers.add(name: "WWW-Authenticate", value: "digest") }
        channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)), promise: nil)
        channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil)
        channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
    }
}
