import KeeperModel

/// Reads ZooKeeper's zoo.cfg (Java properties: `key=value` or `key value`, `#`/`!` comments).
public struct ConfigParser {
    /// What parsing noticed but did not refuse: keys SwiftKeeper ignores, reported once each.
    public struct Report: Hashable, Sendable {
        public var ignoredKeys: [String] = []
    }

    public var file: String

    public init(file: String) { self.file = file }

    /// Parses `text` over `base` (so flags given on the command line can be applied after).
    public func parse(_ text: String, over base: ServerConfig = ServerConfig()) throws(ConfigError) -> (ServerConfig, Report) {
        var config = base
        var report = Report()
        var seenIgnored = Set<String>()
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNo = index + 1
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("!") { continue }
            guard let sep = line.firstIndex(where: { $0 == "=" || $0 == ":" || $0 == " " || $0 == "\t" }) else {
                throw ConfigError(file: file, line: lineNo, key: String(line), message: "no value (expected key=value)")
            }
            let key = String(line[..<sep]).trimmingWhitespace()
            var value = String(line[line.index(after: sep)...]).trimmingWhitespace()
            if let first = value.first, first == "=" || first == ":" {
                value = String(value.dropFirst()).trimmingWhitespace()
            }
            func fail(_ message: String) -> ConfigError {
                ConfigError(file: file, line: lineNo, key: key, message: message)
            }
            func int(_ range: ClosedRange<Int>) throws(ConfigError) -> Int {
                guard let v = Int(value) else { throw fail("'\(value)' is not an integer") }
                guard range.contains(v) else { throw fail("\(v) is out of range \(range.lowerBound)...\(range.upperBound)") }
                return v
            }
            func bool() throws(ConfigError) -> Bool {
                switch value.lowercased() {
                case "true", "yes": return true
                case "false", "no": return false
                default: throw fail("'\(value)' is not a boolean (true/false/yes/no)")
                }
            }
            func path() throws(ConfigError) -> String {
                guard !value.isEmpty else { throw fail("empty path") }
                return value
            }
            switch key {
            case "tickTime": config.tickTime = try int(1...Int(Int32.max))
            case "dataDir": config.dataDir = try path()
            case "dataLogDir": config.dataLogDir = try path()
            case "clientPort": config.clientPort = try int(0...65535)
            case "clientPortAddress":
                guard !value.isEmpty else { throw fail("empty address") }
                config.clientPortAddress = value
            case "maxClientCnxns": config.maxClientCnxns = try int(0...Int(Int32.max))
            case "minSessionTimeout": config.minSessionTimeout = try int(-1...Int(Int32.max)).nonNegative
            case "maxSessionTimeout": config.maxSessionTimeout = try int(-1...Int(Int32.max)).nonNegative
            case "globalOutstandingLimit": config.globalOutstandingLimit = try int(1...Int(Int32.max))
            case "jute.maxbuffer": config.juteMaxBuffer = try int(1024...Int(Int32.max))
            case "preAllocSize": config.preAllocSizeKB = try int(1...(1 << 30))
            case "snapCount": config.snapCount = try int(2...Int(Int32.max))
            case "forceSync": config.forceSync = try bool()
            case "autopurge.snapRetainCount": config.autopurgeSnapRetainCount = try int(3...Int(Int32.max))
            case "autopurge.purgeInterval": config.autopurgePurgeInterval = try int(0...Int(Int32.max))
            case "4lw.commands.whitelist":
                var words: Set<String> = ["srvr"]
                for word in value.split(separator: ",").map({ String($0).trimmingWhitespace() }) where !word.isEmpty {
                    if word == "*" {
                        words.formUnion(ServerConfig.allFourLetterWords)
                    } else if ServerConfig.allFourLetterWords.contains(word) {
                        words.insert(word)
                    } else {
                        throw fail("unknown four-letter word '\(word)'")
                    }
                }
                config.fourLetterWords = words
            case "admin.enableServer": config.adminEnableServer = try bool()
            case "admin.serverAddress":
                guard !value.isEmpty else { throw fail("empty address") }
                config.adminServerAddress = value
            case "admin.serverPort": config.adminServerPort = try int(0...65535)
            case "extendedTypesEnabled": config.extendedTypesEnabled = try bool()
            case "DigestAuthenticationProvider.superDigest", "zookeeper.DigestAuthenticationProvider.superDigest":
                guard value.hasPrefix("super:"), value.count > 6 else {
                    throw fail("expected super:<base64 sha1 digest>")
                }
                config.superDigest = value
            case "znode.container.checkIntervalMs", "zookeeper.znode.container.checkIntervalMs":
                config.containerCheckIntervalMs = try int(10...Int(Int32.max))
            case "peerType":
                guard let role = PeerAddress.Role(rawValue: value) else {
                    throw fail("'\(value)' is not participant or observer")
                }
                config.peerType = role
            case "initLimit": config.initLimit = try int(1...Int(Int32.max))
            case "backup.dir": config.backup.directory = try path()
            case "backup.fullIntervalSeconds": config.backup.fullIntervalSeconds = try int(0...Int(Int32.max))
            case "backup.incrementalIntervalSeconds": config.backup.incrementalIntervalSeconds = try int(0...Int(Int32.max))
            case "backup.retainCount": config.backup.retainCount = try int(BackupSettings.minimumRetainCount...Int(Int32.max))
            case "backup.retainDays": config.backup.retainDays = try int(0...Int(Int32.max))
            case "backup.archiveLog": config.backup.archiveLog = try bool()
            case "backup.archiveCheckIntervalMs": config.backup.archiveCheckIntervalMs = try int(10...Int(Int32.max))
            case "backup.tempDir": config.backup.tempDirectory = try path()
            case "admin.snapshot.enabled", "zookeeper.admin.snapshot.enabled": config.backup.onlineEnabled = try bool()
            case "autopurge.purgeIntervalSeconds": config.backup.purgeIntervalSeconds = try int(0...Int(Int32.max))
            case "syncLimit": config.syncLimit = try int(1...Int(Int32.max))
            default:
                if key.hasPrefix("server.") {
                    guard let id = Int(key.dropFirst("server.".count)), id >= 0, id <= 254 else {
                        throw fail("server id must be an integer in 0...254 (myid)")
                    }
                    config.servers[id] = try Self.peer(id: id, value, fail: fail)
                } else if seenIgnored.insert(key).inserted {
                    report.ignoredKeys.append(key)
                }
            }
        }
        if let min = config.minSessionTimeout, let max = config.maxSessionTimeout, min > max {
            throw ConfigError(
                file: file, line: 0, key: "minSessionTimeout",
                message: "minSessionTimeout \(min) is larger than maxSessionTimeout \(max)")
        }
        return (config, report)
    }

    /// `host:quorumPort:electionPort[:participant|observer][;[clientAddress:]clientPort]`.
    static func peer(id: Int, _ value: String, fail: (String) -> ConfigError) throws(ConfigError) -> PeerAddress {
        let halves = value.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)
        let parts = halves[0].split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3 || parts.count == 4 else {
            throw fail("expected host:quorumPort:electionPort[:participant|observer][;[clientAddress:]clientPort]")
        }
        guard !parts[0].isEmpty else { throw fail("empty host") }
        guard let qp = Int(parts[1]), (1...65535).contains(qp) else { throw fail("bad quorum port '\(parts[1])'") }
        guard let ep = Int(parts[2]), (1...65535).contains(ep) else { throw fail("bad election port '\(parts[2])'") }
        var role = PeerAddress.Role.participant
        if parts.count == 4 {
            guard let r = PeerAddress.Role(rawValue: parts[3]) else { throw fail("'\(parts[3])' is not participant or observer") }
            role = r
        }
        var clientAddress: String?
        var clientPort: Int?
        if halves.count == 2 {
            let client = halves[1].split(separator: ":").map(String.init)
            let portText = client.last ?? ""
            guard let p = Int(portText), (1...65535).contains(p) else { throw fail("bad client port '\(portText)'") }
            clientPort = p
            if client.count == 2 { clientAddress = client[0] }
        }
        return PeerAddress(
            id: id, host: parts[0], quorumPort: qp, electionPort: ep, role: role,
            clientAddress: clientAddress, clientPort: clientPort)
    }
}

extension Int {
    /// ZooKeeper treats -1 as "unset" for the session timeout bounds.
    fileprivate var nonNegative: Int? { self < 0 ? nil : self }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}
