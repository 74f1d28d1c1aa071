import Foundation
import KeeperBackup
import KeeperModel
import KeeperStore
import Logging
import NIOCore
import NIOHTTP1

/// `POST /commands/restore`: replaces a standalone server's whole tree with a snapshot, in the
/// spirit of ZooKeeper 3.9's `restore` admin command. The body is a `.store` backup file, as
/// `GET /commands/snapshot` streams it or a backup chain's full backup holds it; when the
/// request carries the snapshot's `X-SwiftKeeper-Digest` and `X-SwiftKeeper-Node-Count`
/// headers the restored tree must match them. Authenticated like the other backup commands.
///
/// The upload is written to a file as it arrives (never held in memory), decoded and checked
/// on a thread of its own (every frame's CRC32, the end frame, then the tree digest recomputed
/// from every node), and only then handed to the replica, which swaps it in. A damaged or
/// truncated upload is refused with the offset of the damage, and the server keeps its tree.
final class RestoreUpload: @unchecked Sendable {
    // @unchecked Sendable: the admin connection's handler writes to it on its event loop while
    // the body arrives; at the request's end it hands it over to the restore thread, which is
    // its only user from then on.
    let path: String
    let work: String
    private let handle: FileHandle
    private(set) var bytes: Int64 = 0

    init(dataDir: String) throws {
        work = dataDir + "/.restore-upload-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: false)
        path = work + "/upload.store"
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw RestoreCommand.Failure(status: .internalServerError, message: "cannot create \(path)")
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    }

    func append(_ buffer: ByteBuffer) throws {
        try handle.write(contentsOf: Data(buffer.readableBytesView))
        bytes += Int64(buffer.readableBytes)
    }

    func close() throws { try handle.close() }

    func discard() {
        do { try handle.close() } catch { RestoreCommand.logger.debug("closing \(path): \(error)") }
        RestoreCommand.remove(work)
    }
}

enum RestoreCommand {
    static let logger = Logger(label: "swiftkeeper.admin.restore")

    /// Removes a scratch file or directory; a failure is logged (the leftover is harmless:
    /// the next restore clears `store.incoming`, and uploads live under a unique name).
    static func remove(_ path: String) {
        guard FileManager.default.fileExists(atPath: path) else { return }
        do { try FileManager.default.removeItem(atPath: path) } catch {
            logger.warning("could not remove \(path): \(error)")
        }
    }

    struct Failure: Error {
        var status: HTTPResponseStatus
        var message: String
    }

    /// Checks the request before its body is read: POST, authorized, a standalone server.
    static func begin(method: HTTPMethod, headers: HTTPHeaders, server: ServerContext) throws -> RestoreUpload {
        guard method == .POST else {
            throw Failure(status: .methodNotAllowed, message: "restore takes the snapshot as the body of a POST")
        }
        do {
            try BackupAdminCommands.authorize(headers, config: server.config, store: server.store)
        } catch let refusal as BackupAdminCommands.Refusal {
            throw Failure(status: refusal.status, message: refusal.message)
        }
        guard server.config.servers.count <= 1 else {
            throw Failure(
                status: .conflict,
                message: "restore is refused on an ensemble member: stop the ensemble, restore one server with keeperctl restore, wipe the others' data directories (keep myid) and start them all; they synchronize from it")
        }
        return try RestoreUpload(dataDir: server.config.dataDir)
    }

    /// Decodes, checks and installs the upload on a thread of its own, then answers.
    static func finish(_ upload: RestoreUpload, headers: HTTPHeaders, server: ServerContext, channel: any Channel) {
        let thread = Thread {
            defer { upload.discard() }
            do {
                try upload.close()
                let prepared = server.config.dataDir + "/store.restore"
                let digest = try prepare(upload, headers: headers, into: prepared)
                defer { remove(prepared) }
                let done = DispatchSemaphore(value: 0)
                let result = ResultBox()
                server.replica.restore(from: prepared, to: digest.zxid) { outcome in
                    result.set(outcome)
                    done.signal()
                }
                done.wait()
                let zxid = try result.get().get()
                BackupAdminCommands.respond(channel, .ok, "restore", fields: [
                    ("zxid", .string(zxid.description)), ("digest", .string(String(digest.value, radix: 16))),
                    ("node_count", .int(digest.nodeCount)), ("bytes_received", .int(upload.bytes)),
                ])
            } catch let failure as Failure {
                BackupAdminCommands.respond(channel, failure.status, "restore", error: failure.message)
            } catch {
                BackupAdminCommands.respond(channel, .unprocessableEntity, "restore", error: "\(error)")
            }
            channel.close(promise: nil)
        }
        thread.name = "swiftkeeper-admin-restore"
        thread.start()
    }

    /// Decodes the upload into `directory/data.mdb` (synced), checks it, and returns its
    /// digest. Startup ignores and removes this directory: only the replica, after emptying
    /// the log, moves it to `store.incoming`, which startup finishes installing.
    static func prepare(_ upload: RestoreUpload, headers: HTTPHeaders, into directory: String) throws -> TreeDigest {
        let incoming = directory
        remove(incoming)
        try FileManager.default.createDirectory(atPath: incoming, withIntermediateDirectories: false)
        let target = incoming + "/" + KeeperStore.dataFileName
        guard FileManager.default.createFile(atPath: target, contents: nil) else {
            throw Failure(status: .internalServerError, message: "cannot create \(target)")
        }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: target))
        let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: upload.path))
        let decoder = BackupFrameDecoder(name: "the uploaded snapshot", content: .store)
        do {
            while let block = try input.read(upToCount: 1 << 20), !block.isEmpty {
                try decoder.feed(Array(block)) { raw in try out.write(contentsOf: raw) }
            }
            try decoder.finish()
            try out.synchronize()
            try out.close()
            try input.close()
        } catch {
            do { try out.close() } catch { logger.debug("closing \(target): \(error)") }
            do { try input.close() } catch { logger.debug("closing \(upload.path): \(error)") }
            remove(incoming)
            throw Failure(status: .unprocessableEntity, message: "\(error)")
        }
        let digest: TreeDigest
        do {
            var configuration = StoreConfiguration()
            configuration.readOnly = true
            digest = try KeeperStore(directory: incoming, configuration: configuration).verifyDigest()
        } catch {
            remove(incoming)
            throw Failure(status: .unprocessableEntity, message: "the uploaded snapshot is not a consistent store: \(error)")
        }
        if let expected = headers.first(name: OnlineBackupProtocol.digestHeader) {
            let count = headers.first(name: OnlineBackupProtocol.nodeCountHeader).flatMap { Int64($0) }
            guard UInt64(expected, radix: 16) == digest.value, count == nil || count == digest.nodeCount else {
                remove(incoming)
                throw Failure(
                    status: .unprocessableEntity,
                    message: "the uploaded snapshot's tree (\(digest)) does not match the digest \(expected) its headers promise")
            }
        }
        return digest
    }
}

/// Carries the replica's answer to the admin thread waiting for it.
private final class ResultBox: @unchecked Sendable {
    // @unchecked Sendable: written once by the replica's completion before it signals the
    // semaphore, read once by the waiting thread after the wait returns (the semaphore orders
    // the two).
    private var value: Result<Zxid, any Error>?
    func set(_ result: Result<Zxid, any Error>) { value = result }
    func get() -> Result<Zxid, any Error> { value! }
}
