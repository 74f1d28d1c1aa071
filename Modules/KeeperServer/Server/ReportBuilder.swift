import KeeperModel
import KeeperStore

#if canImport(Glibc)
    import Glibc
#endif

/// Gathers the picture the four-letter words and admin commands print.
enum ReportBuilder {
    static let version = "3.9.3-SwiftKeeper-0.1.0, built on 2026-11-25 00:00 UTC"

    static func build(
        config: ServerConfig, store: KeeperStore, replica: Replica, watches: WatchManager, registry: ConnectionRegistry,
        stats: ServerStats
    ) -> ServerReport {
        var zxid: Int64 = 0
        var nodeCount = 0
        var ephemerals: [SessionID: [String]] = [:]
        var sessionIDs: [SessionID] = []
        do {
            try store.read { view in
                zxid = try view.lastAppliedZxid().rawValue
                // ZooKeeper's node map holds the root twice ("" and "/"), and so does its count.
                nodeCount = Int(try view.digest().nodeCount) + 1
                for s in try view.sessions() {
                    sessionIDs.append(s.sessionID)
                    let paths = try view.ephemerals(of: s.sessionID)
                    if !paths.isEmpty { ephemerals[s.sessionID] = paths }
                }
            }
        } catch {
            replica.logger.error("report: store unreadable: \(error)")
        }
        let published = replica.lastPublished
        // Sessions as committed (the store), with the expiry the replica published at its last tick.
        let expiry = Dictionary(published.sessions.map { ($0.session, $0.expiresAtMillis) }, uniquingKeysWith: max)
        let connections = registry.all().map { e in
            let session = e.session.load(ordering: .relaxed)
            return ServerReport.Connection(
                remote: e.remote, session: session == 0 ? nil : SessionID(session), queued: e.queued.load(ordering: .relaxed),
                received: e.received.load(ordering: .relaxed), sent: e.sent.load(ordering: .relaxed), timeout: 0,
                lastZxid: zxid, lastOperation: "NA", established: e.established, minLatency: 0, avgLatency: 0, maxLatency: 0,
                lastLatency: 0, lastResponse: 0)
        }
        var sessionOfWatcher: [WatcherID: SessionID] = [:]
        for e in registry.all() { sessionOfWatcher[e.id] = SessionID(e.session.load(ordering: .relaxed)) }
        let dataSize = directorySize(config.dataDir + "/store")
        let logSize = directorySize(config.effectiveDataLogDir + "/log")
        let mode: String
        var extra: [(String, String)] = []
        switch published.role {
        case .leading:
            mode = replica.ensemble.isStandalone ? "standalone" : "leader"
            if !replica.ensemble.isStandalone {
                let voters = published.learners.filter { !$0.observer }
                extra = [
                    ("zk_learners", String(published.learners.count)),
                    ("zk_followers", String(voters.count)),
                    ("zk_synced_followers", String(voters.filter(\.synced).count)),
                    ("zk_synced_non_voting_followers", "0"),
                    ("zk_synced_observers", String(published.learners.filter { $0.observer && $0.synced }.count)),
                    ("zk_pending_syncs", "0"),
                ]
            }
        case .following: mode = "follower"
        case .observing: mode = "observer"
        case .looking: mode = "looking"
        }
        if !replica.ensemble.isStandalone {
            let state: String =
                switch published.role {
                case .leading: "leading - broadcast"
                case .following: "following - broadcast"
                case .observing: "observing - broadcast"
                case .looking: "looking"
                }
            extra.append(("zk_peer_state", state))
        }
        var report = ServerReport(
            version: version, mode: mode, stats: stats.snapshot(), connections: connections,
            outstanding: published.inFlight, zxid: zxid, nodeCount: nodeCount, ephemeralsBySession: ephemerals,
            sessionExpiry: sessionIDs.map { id in (id, expiry[id] ?? 0) },
            watches: watches.summary(), watchesByPath: watches.byPath(), watchesByConnection: watches.byWatcher(),
            sessionOfWatcher: sessionOfWatcher, config: config, dataDirSize: dataSize, dataLogDirSize: logSize,
            approximateDataSize: dataSize, openFileDescriptors: openFileDescriptors(),
            maxFileDescriptors: maxFileDescriptors(), environment: environment(config))
        report.extra += extra
        return report
    }

    static func directorySize(_ path: String) -> Int64 {
        guard let dir = opendir(path) else { return 0 }
        defer { closedir(dir) }
        var total: Int64 = 0
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name == "." || name == ".." { continue }
            var st = stat()
            if stat(path + "/" + name, &st) == 0 { total += Int64(st.st_size) }
        }
        return total
    }

    static func openFileDescriptors() -> Int {
        guard let dir = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(dir) }
        var n = -2
        while readdir(dir) != nil { n += 1 }
        return max(0, n)
    }

    static func maxFileDescriptors() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        return Int(limit.rlim_cur)
    }

    static func environment(_ config: ServerConfig) -> [(String, String)] {
        func text(_ chars: [CChar]) -> String {
            String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        var cwd = [CChar](repeating: 0, count: 4096)
        let dir = getcwd(&cwd, 4096) != nil ? text(cwd) : "?"
        let user = getpwuid(geteuid())
        var uts = utsname()
        uname(&uts)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        }
        return [
            ("zookeeper.version", version),
            ("host.name", text(host)),
            ("os.name", field(uts.sysname)),
            ("os.arch", field(uts.machine)),
            ("os.version", field(uts.release)),
            ("user.name", user.map { String(cString: $0.pointee.pw_name) } ?? "?"),
            ("user.home", user.map { String(cString: $0.pointee.pw_dir) } ?? "?"),
            ("user.dir", dir),
            ("swiftkeeper.dataDir", config.dataDir),
            ("swiftkeeper.dataLogDir", config.effectiveDataLogDir),
        ]
    }
}
