import Foundation
import KeeperModel
import KeeperStore

/// A digest as a manifest records it (`KeeperStore.TreeDigest`).
public struct DigestRecord: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The digest value, 16 hex digits.
    public var value: String
    public var nodeCount: Int64
    /// The zxid it was taken at, as ZooKeeper prints zxids (`0x100000003`).
    public var zxid: String

    public init(_ digest: TreeDigest) {
        value = String(digest.value, radix: 16)
        nodeCount = digest.nodeCount
        zxid = digest.zxid.description
    }

    public func matches(_ digest: TreeDigest) -> Bool { self == DigestRecord(digest) }
    public var description: String { "digest 0x\(value) over \(nodeCount) znodes at \(zxid)" }
}

/// The JSON manifest of one backup: what it holds, how to check it, where it sits in the chain.
/// Written last (atomically, by rename), so a backup without a manifest is an unfinished one.
public struct BackupManifest: Hashable, Sendable, Codable {
    public enum Kind: String, Hashable, Sendable, Codable {
        /// A store snapshot plus the log records after it.
        case full
        /// Log records after the previous backup's `zxid`.
        case incremental
    }

    /// "swiftkeeper-backup".
    public var format: String
    /// The manifest and file format version (`BackupManifest.currentVersion`).
    public var formatVersion: Int
    public var kind: Kind
    /// Position in the backup directory: files are named `<sequence, 6 digits>-<kind>.*`.
    public var sequence: Int
    /// The data directory's database id (16 hex digits), shared by the whole chain.
    public var databaseID: String
    /// Full: the snapshot's zxid. Incremental: the zxid of the backup it follows.
    public var previousZxid: String
    /// The zxid the backup restores to: its last record's, or the snapshot's.
    public var zxid: String
    /// The tree digest at `zxid` (computed by replaying the records onto the snapshot).
    public var digest: DigestRecord
    /// Full only: the digest of the snapshot itself (at `previousZxid`).
    public var snapshotDigest: DigestRecord?
    /// Full only: the TxnHeader.time of the snapshot's last txn (ms since the epoch), when the
    /// log still held it; 0 for a store with no txns. Used by `--to-time`.
    public var snapshotTime: Int64?
    /// The records held, first and last zxid (nil when none).
    public var firstRecordZxid: String?
    public var lastRecordZxid: String?
    public var recordCount: Int
    /// TxnHeader.time of the first and last record (ms since the epoch).
    public var firstRecordTime: Int64?
    public var lastRecordTime: Int64?
    /// The data files with sizes and CRC32s: `store` (full only), then `txns`.
    public var files: [BackupFileSummary]
    public var toolVersion: String
    /// When the backup was taken (ISO 8601, UTC).
    public var createdAt: String

    public static let currentVersion = 1
    public static let formatName = "swiftkeeper-backup"
    /// The version of this program written into manifests.
    public static let toolVersion = "swiftkeeper-keeperctl 0.1 (KeeperBackup format 1)"

    public var zxidValue: Zxid { Zxid.parse(zxid) ?? .zero }
    public var previousZxidValue: Zxid { Zxid.parse(previousZxid) ?? .zero }

    /// The manifest's file name for `sequence` and `kind`.
    public static func fileName(sequence: Int, kind: Kind) -> String { baseName(sequence: sequence, kind: kind) + ".json" }
    static func baseName(sequence: Int, kind: Kind) -> String {
        let digits = String(sequence)
        return String(repeating: "0", count: max(0, 6 - digits.count)) + digits + "-" + kind.rawValue
    }

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// Reads and checks a manifest file.
    public static func load(_ path: String) throws -> BackupManifest {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw BackupError.badManifest(file: path, detail: "cannot be read: \(error)")
        }
        let manifest: BackupManifest
        do { manifest = try JSONDecoder().decode(BackupManifest.self, from: data) } catch {
            throw BackupError.badManifest(file: path, detail: "not a backup manifest: \(error)")
        }
        guard manifest.format == formatName, manifest.formatVersion == currentVersion else {
            throw BackupError.badManifest(file: path, detail: "format \(manifest.format) version \(manifest.formatVersion); this program reads \(formatName) version \(currentVersion)")
        }
        guard Zxid.parse(manifest.zxid) != nil, Zxid.parse(manifest.previousZxid) != nil else {
            throw BackupError.badManifest(file: path, detail: "zxid fields are not hex zxids")
        }
        let expectedFiles = manifest.kind == .full ? 2 : 1
        guard manifest.files.count == expectedFiles else {
            throw BackupError.badManifest(file: path, detail: "\(manifest.files.count) files listed, a \(manifest.kind.rawValue) backup has \(expectedFiles)")
        }
        for file in manifest.files where file.name.contains("/") || file.name.hasPrefix(".") {
            throw BackupError.badManifest(file: path, detail: "file name \(file.name) is not a plain name")
        }
        return manifest
    }
}

extension Zxid {
    /// Parses `0x...` hex (as ZooKeeper prints zxids) or decimal.
    public static func parse(_ text: String) -> Zxid? {
        if text.lowercased().hasPrefix("0x") {
            return UInt64(text.dropFirst(2), radix: 16).map { Zxid(Int64(bitPattern: $0)) }
        }
        return Int64(text).map { Zxid($0) }
    }
}
