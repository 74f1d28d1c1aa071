import KeeperModel

/// What the four-letter words and the admin commands report: one consistent picture of the
/// server, gathered by the server and formatted here exactly as ZooKeeper 3.8 prints it (tools
/// such as zkServer.sh status parse "Mode:" and "Zookeeper version:").
public struct ServerReport: Sendable {
    public struct Connection: Sendable {
        public var remote: String
        public var session: SessionID?
        public var queued: Int
        public var received: Int64
        public var sent: Int64
        public var timeout: Int32
        public var lastZxid: Int64
        public var lastOperation: String
        public var established: Int64
        public var minLatency: Int64
        public var avgLatency: Int64
        public var maxLatency: Int64
        public var lastLatency: Int64
        public var lastResponse: Int64
    }
    public var version: String
    public var mode: String
    public var stats: ServerStats.Snapshot
    public var connections: [Connection]
    public var outstanding: Int
    public var zxid: Int64
    public var nodeCount: Int
    public var ephemeralsBySession: [SessionID: [String]]
    public var sessionExpiry: [(session: SessionID, expiresAtMillis: Int64)]
    public var watches: (watchers: Int, paths: Int, watches: Int, total: Int)
    public var watchesByPath: [String: [WatcherID]]
    public var watchesByConnection: [WatcherID: [String]]
    public var sessionOfWatcher: [WatcherID: SessionID]
    public var config: ServerConfig
    public var dataDirSize: Int64
    public var dataLogDirSize: Int64
    public var approximateDataSize: Int64
    public var openFileDescriptors: Int
    public var maxFileDescriptors: Int
    public var environment: [(String, String)]
    public var extra: [(String, String)] = []

    static func hex(_ v: Int64) -> String { "0x" + String(UInt64(bitPattern: v), radix: 16) }

    static func number(_ d: Double) -> String {
        let scaled = (d * 10000).rounded() / 10000
        var s = String(scaled)
        if s.hasSuffix(".0") && d == 0 { s = "0.0" }
        return s
    }

    var srvr: String {
        """
        Zookeeper version: \(version)
        Latency min/avg/max: \(stats.minLatency)/\(Self.number(stats.avgLatency))/\(stats.maxLatency)
        Received: \(stats.received)
        Sent: \(stats.sent)
        Connections: \(connections.count)
        Outstanding: \(outstanding)
        Zxid: \(Self.hex(zxid))
        Mode: \(mode)
        Node count: \(nodeCount)

        """
    }

    func consLines(brief: Bool) -> String {
        var out = ""
        for c in connections {
            out += " /\(c.remote)[\(c.session == nil ? 0 : 1)](queued=\(c.queued),recved=\(c.received),sent=\(c.sent)"
            if !brief, let s = c.session {
                out += ",sid=\(s),lop=\(c.lastOperation),est=\(c.established),to=\(c.timeout),lzxid=\(Self.hex(c.lastZxid))"
                out += ",lresp=\(c.lastResponse),llat=\(c.lastLatency),minlat=\(c.minLatency),avglat=\(c.avgLatency),maxlat=\(c.maxLatency)"
            }
            out += ")\n"
        }
        return out
    }

    var stat: String {
        var out = "Zookeeper version: \(version)\nClients:\n" + consLines(brief: true) + "\n"
        out += srvr.split(separator: "\n", omittingEmptySubsequences: false).dropFirst().joined(separator: "\n")
        return out
    }

    var conf: String {
        """
        clientPort=\(config.clientPort)
        secureClientPort=-1
        dataDir=\(config.dataDir)
        dataDirSize=\(dataDirSize)
        dataLogDir=\(config.effectiveDataLogDir)
        dataLogSize=\(dataLogDirSize)
        tickTime=\(config.tickTime)
        maxClientCnxns=\(config.maxClientCnxns)
        minSessionTimeout=\(config.effectiveMinSessionTimeout)
        maxSessionTimeout=\(config.effectiveMaxSessionTimeout)
        clientPortListenBacklog=-1
        serverId=\(config.myid ?? 0)

        """
    }

    var mntrPairs: [(String, String)] {
        var pairs: [(String, String)] = [
            ("zk_version", version),
            ("zk_server_state", mode),
            ("zk_ephemerals_count", String(ephemeralsBySession.values.reduce(0) { $0 + $1.count })),
            ("zk_num_alive_connections", String(connections.count)),
            ("zk_avg_latency", Self.number(stats.avgLatency)),
            ("zk_outstanding_requests", String(outstanding)),
            ("zk_znode_count", String(nodeCount)),
            ("zk_global_sessions", String(sessionExpiry.count)),
            ("zk_packets_sent", String(stats.sent)),
            ("zk_packets_received", String(stats.received)),
            ("zk_watch_count", String(watches.total)),
            ("zk_auth_failed_count", String(stats.authFailed)),
            ("zk_min_latency", String(stats.minLatency)),
            ("zk_max_latency", String(stats.maxLatency)),
            ("zk_max_file_descriptor_count", String(maxFileDescriptors)),
            ("zk_open_file_descriptor_count", String(openFileDescriptors)),
            ("zk_approximate_data_size", String(approximateDataSize)),
            ("zk_uptime", String(stats.uptimeMillis)),
            ("zk_large_requests_rejected", String(stats.largeRequestsRejected)),
            ("zk_connection_rejected", String(stats.connectionRejected)),
            ("zk_last_proposal_size", "-1"),
        ]
        pairs += extra
        // The backup service's lines, when one runs for this server (BackupService).
        pairs += BackupService.running(forDataDir: config.dataDir)?.currentStatus.mntrPairs ?? []
        return pairs
    }

    var mntr: String { mntrPairs.map { "\($0.0)\t\($0.1)\n" }.joined() }

    var envi: String {
        "Environment:\n" + environment.map { "\($0.0)=\($0.1)\n" }.joined()
    }

    var dirs: String { "datadir_size: \(dataDirSize)\nlogdir_size: \(dataLogDirSize)\n" }

    var wchs: String {
        "\(watches.watchers) connections watching \(watches.paths) paths\nTotal watches:\(watches.watches)\n"
    }

    var wchc: String {
        var out = ""
        for (watcher, paths) in watchesByConnection.sorted(by: { $0.key < $1.key }) {
            out += (sessionOfWatcher[watcher].map { Self.hex($0.rawValue) } ?? "0x0") + "\n"
            for p in paths { out += "\t\(p)\n" }
        }
        return out + "\n"
    }

    var wchp: String {
        var out = ""
        for (path, watchers) in watchesByPath.sorted(by: { $0.key < $1.key }) {
            out += "\(path)\n"
            for w in watchers { out += "\t" + (sessionOfWatcher[w].map { Self.hex($0.rawValue) } ?? "0x0") + "\n" }
        }
        return out + "\n"
    }

    var dump: String {
        var out = "SessionTracker dump:\nSession Sets (\(sessionExpiry.count))/(\(sessionExpiry.count)):\n"
        for (session, expires) in sessionExpiry.sorted(by: { $0.expiresAtMillis < $1.expiresAtMillis }) {
            out += "1 expire at \(expires):\n\t\(Self.hex(session.rawValue))\n"
        }
        out += "ephemeral nodes dump:\nSessions with Ephemerals (\(ephemeralsBySession.count)):\n"
        for (session, paths) in ephemeralsBySession.sorted(by: { $0.key < $1.key }) {
            out += "\(Self.hex(session.rawValue)):\n"
            for p in paths.sorted() { out += "\t\(p)\n" }
        }
        out += "Connections dump:\nConnections Sets (\(connections.isEmpty ? 0 : 1))/(\(connections.count)):\n"
        for c in connections {
            out += "\tip: /\(c.remote) sessionId: \(c.session.map { Self.hex($0.rawValue) } ?? "0x0")\n"
        }
        return out
    }

    /// The text a four-letter word answers, or nil for a word that is not enabled (ZooKeeper
    /// then answers "<word> is not executed because it is not in the whitelist.").
    public func answer(_ word: String, whitelist: Set<String>) -> String {
        guard whitelist.contains(word) else { return "\(word) is not executed because it is not in the whitelist.\n" }
        switch word {
        case "ruok": return "imok"
        case "srvr": return srvr
        case "stat": return stat
        case "conf": return conf
        case "cons": return consLines(brief: false) + "\n"
        case "mntr": return mntr
        case "envi": return envi
        case "dirs": return dirs
        case "wchs": return wchs
        case "wchc": return wchc
        case "wchp": return wchp
        case "dump": return dump
        case "isro": return "rw"
        case "srst": return "Server stats reset.\n"
        case "crst": return "Connection stats reset.\n"
        case "hash": return "Digest not available\n"
        case "gtmk": return "0\n"
        case "stmk": return "0\n"
        default: return ""
        }
    }
}
