import KeeperModel

/// Why a benchmark could not run or could not be trusted. Each case says what happened, where
/// (which server, which session, which znode) and what to do about it.
enum BenchError: Error, CustomStringConvertible {
    case invalidHostList(String, String)
    case connectFailed(HostPort, session: Int, underlying: String)
    case sessionRefused(HostPort, session: Int)
    case connectionClosed(HostPort, session: Int, inFlight: Int, phase: String)
    case protocolViolation(HostPort, session: Int, String)
    case noReply(HostPort, session: Int, inFlight: Int, seconds: Int64, phase: String)
    case errorReply(HostPort, session: Int, phase: String, path: String, code: Int32)
    case basePathExists(String, HostList)
    case cannotWriteJSON(String, underlying: String)
    case interrupted

    var description: String {
        switch self {
        case .invalidHostList(let text, let why):
            return "invalid host list '\(text)': \(why)"
        case .connectFailed(let server, let session, let underlying):
            return "session \(session): cannot connect to \(server): \(underlying). "
                + "Is a ZooKeeper-protocol server listening there, and does it accept this many "
                + "connections from one address (maxClientCnxns, 60 by default)?"
        case .sessionRefused(let server, let session):
            return "session \(session): \(server) refused to open a session (ConnectResponse with "
                + "timeOut 0 / sessionId 0). Check the server's log."
        case .connectionClosed(let server, let session, let inFlight, let phase):
            return "session \(session): \(server) closed the connection during \(phase) with "
                + "\(inFlight) request(s) unanswered. Over maxClientCnxns (ZooKeeper's default is 60 "
                + "per client address)? A crashed server? Check the server's log."
        case .protocolViolation(let server, let session, let what):
            return "session \(session): \(server) broke the ZooKeeper protocol: \(what)"
        case .noReply(let server, let session, let inFlight, let seconds, let phase):
            return "session \(session): \(server) left \(inFlight) request(s) unanswered for \(seconds) s "
                + "during \(phase); giving up. Raise \(phase.hasPrefix("the handshake") ? "--connect-timeout" : "--reply-timeout") "
                + "if the server is just slow."
        case .errorReply(let server, let session, let phase, let path, let code):
            return "session \(session): \(server) answered \(Self.name(of: code)) (\(code)) for \(path) "
                + "during \(phase)"
        case .basePathExists(let path, let hosts):
            return "\(path) already exists on \(hosts): left by an earlier run that did not finish? "
                + "Remove it (zkCli.sh deleteall \(path)) and run again."
        case .cannotWriteJSON(let file, let underlying):
            return "cannot write the JSON report to \(file): \(underlying)"
        case .interrupted:
            return "interrupted: the run's figures are incomplete and not reported"
        }
    }

    /// ZooKeeper's name for a result code ("NONODE"), or "error" for a code it does not define.
    static func name(of code: Int32) -> String { KeeperErrorCode(rawValue: code)?.name ?? "error" }
}
