import KeeperModel

/// One member of an ensemble, from a `server.N=host:quorumPort:electionPort[:role][;[clientAddr:]clientPort]` line.
public struct PeerAddress: Hashable, Sendable {
    public enum Role: String, Hashable, Sendable { case participant, observer }
    public var id: Int
    public var host: String
    public var quorumPort: Int
    public var electionPort: Int
    public var role: Role
    public var clientAddress: String?
    public var clientPort: Int?
}

/// The server's configuration: ZooKeeper's zoo.cfg keys with ZooKeeper's defaults, except the
/// data directory and the client address, which default to `./swiftkeeper-data` and 127.0.0.1 so
/// that a bare `swiftkeeper serve` is safe to run anywhere.
public struct ServerConfig: Hashable, Sendable {
    /// `tickTime` in milliseconds: the unit of session timeouts and of initLimit/syncLimit.
    public var tickTime = 2000
    public var dataDir = "swiftkeeper-data"
    /// `dataLogDir`: where the write-ahead log lives (a dedicated device helps); nil = dataDir.
    public var dataLogDir: String?
    public var clientPort = 2181
    public var clientPortAddress = "127.0.0.1"
    /// `maxClientCnxns`: concurrent connections per client address; 0 = unlimited.
    public var maxClientCnxns = 60
    /// nil = 2 x tickTime (ZooKeeper's default).
    public var minSessionTimeout: Int?
    /// nil = 20 x tickTime (ZooKeeper's default).
    public var maxSessionTimeout: Int?
    public var globalOutstandingLimit = 1000
    /// `jute.maxbuffer`: the largest frame accepted from a client.
    public var juteMaxBuffer = Limits.default.maxBuffer
    /// `preAllocSize` in kilobytes, as ZooKeeper reads it (default 64 MiB).
    public var preAllocSizeKB = 65536
    public var snapCount = 100_000
    /// `forceSync`: false is an explicit, unsafe mode (writes acknowledged before fdatasync).
    public var forceSync = true
    public var autopurgeSnapRetainCount = 3
    /// Hours between purges; 0 disables.
    public var autopurgePurgeInterval = 0
    /// `4lw.commands.whitelist`; ZooKeeper always adds `srvr`.
    public var fourLetterWords: Set<String> = ["srvr"]
    public var adminEnableServer = true
    public var adminServerAddress = "127.0.0.1"
    public var adminServerPort = 8080
    /// `extendedTypesEnabled`: TTL nodes are refused (Unimplemented) unless enabled.
    public var extendedTypesEnabled = false
    /// `DigestAuthenticationProvider.superDigest` (`super:<base64 sha1>`), as ZooKeeper's
    /// `zookeeper.DigestAuthenticationProvider.superDigest` system property.
    public var superDigest: String?
    public var servers: [Int: PeerAddress] = [:]
    public var peerType: PeerAddress.Role = .participant
    public var initLimit = 10
    public var syncLimit = 5
    /// `znode.container.checkIntervalMs`: how often empty containers and expired TTL nodes are
    /// looked for (ZooKeeper's default: one minute).
    public var containerCheckIntervalMs = 60_000
    /// From `dataDir/myid` when servers are configured.
    public var myid: Int?
    /// Scheduled backups, the online backup admin commands, and the log purge period
    /// (`backup.*`, `admin.snapshot.enabled`, `autopurge.purgeIntervalSeconds`).
    public var backup = BackupSettings()

    public init() {}

    public var effectiveDataLogDir: String { dataLogDir ?? dataDir }
    public var containerCheckInterval: Int64 { Int64(containerCheckIntervalMs) }
    public var effectiveMinSessionTimeout: Int { minSessionTimeout ?? 2 * tickTime }
    public var effectiveMaxSessionTimeout: Int { maxSessionTimeout ?? 20 * tickTime }
    public var isStandalone: Bool { servers.count <= 1 }
    /// Seconds between log purges (0: never): `autopurge.purgeIntervalSeconds`, else
    /// `autopurge.purgeInterval` hours.
    public var logPurgeIntervalSeconds: Int {
        backup.purgeIntervalSeconds > 0 ? backup.purgeIntervalSeconds : autopurgePurgeInterval * 3600
    }

    /// Every four-letter word ZooKeeper knows.
    public static let allFourLetterWords: Set<String> = [
        "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srst", "srvr", "stat",
        "wchc", "wchp", "wchs", "mntr", "isro", "hash",
    ]
}

/// A configuration problem, naming the key and the line.
public struct ConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var key: String
    public var message: String
    public var description: String {
        line > 0 ? "\(file):\(line): \(key): \(message)" : "\(file): \(key): \(message)"
    }
}
