/// One server address of a host list.
struct HostPort: Hashable, Sendable, CustomStringConvertible {
    var host: String
    var port: Int

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A ZooKeeper connect string without a chroot: `host:port[,host:port...]`, as every ZooKeeper
/// client takes it. Sessions are spread over its servers in turn (session i uses server
/// i mod count), so a list of an ensemble's servers loads all of them.
struct HostList: Hashable, Sendable, CustomStringConvertible {
    /// ZooKeeper's default client port, used when an entry has none.
    static let defaultPort = 2181

    var servers: [HostPort]

    /// Parses `text`; an IPv6 address is written in brackets (`[::1]:2181`).
    init(parsing text: String) throws(BenchError) {
        var servers: [HostPort] = []
        for rawEntry in text.split(separator: ",", omittingEmptySubsequences: false) {
            let entry = rawEntry.trimmingSpaces
            guard !entry.isEmpty else {
                throw .invalidHostList(text, "an empty entry; write host:port[,host:port...]")
            }
            if entry.contains("/") {
                throw .invalidHostList(text, "a chroot ('/...') is not supported; give host:port entries only")
            }
            servers.append(try Self.parseEntry(entry, in: text))
        }
        self.servers = servers
    }

    private static func parseEntry(_ entry: Substring, in text: String) throws(BenchError) -> HostPort {
        let host: Substring
        let portText: Substring?
        if entry.hasPrefix("[") {
            guard let close = entry.firstIndex(of: "]") else {
                throw .invalidHostList(text, "'\(entry)' opens '[' without closing it")
            }
            host = entry[entry.index(after: entry.startIndex)..<close]
            let rest = entry[entry.index(after: close)...]
            if rest.isEmpty {
                portText = nil
            } else if rest.hasPrefix(":") {
                portText = rest.dropFirst()
            } else {
                throw .invalidHostList(text, "'\(entry)': expected ':port' after ']'")
            }
        } else if let colon = entry.lastIndex(of: ":") {
            host = entry[..<colon]
            portText = entry[entry.index(after: colon)...]
            if host.contains(":") {
                throw .invalidHostList(text, "'\(entry)': write an IPv6 address in brackets, [::1]:2181")
            }
        } else {
            host = entry
            portText = nil
        }
        guard !host.isEmpty else { throw .invalidHostList(text, "'\(entry)' has no host") }
        var port = defaultPort
        if let portText {
            guard let value = Int(portText), (1...65_535).contains(value) else {
                throw .invalidHostList(text, "'\(entry)': the port must be a number in 1...65535")
            }
            port = value
        }
        return HostPort(host: String(host), port: port)
    }

    /// The server session `index` connects to.
    func server(forSession index: Int) -> HostPort { servers[index % servers.count] }

    var description: String { servers.map(\.description).joined(separator: ",") }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var result = self
        while result.first == " " { result = result.dropFirst() }
        while result.last == " " { result = result.dropLast() }
        return result
    }
}
