// The `swiftkeeper` executable: argument parsing and service lifecycle only.
import ArgumentParser
import KeeperServer
import Logging
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif
#if canImport(CJemalloc)
    import CJemalloc
#endif

@main
struct SwiftKeeperCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftkeeper",
        abstract: "A ZooKeeper-compatible coordination service.",
        subcommands: [Serve.self],
        defaultSubcommand: Serve.self)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a server. Without arguments: standalone on 127.0.0.1:2181, data in ./swiftkeeper-data.")

    @Option(name: .long, help: "A ZooKeeper zoo.cfg file; the flags below override it.")
    var config: String?
    @Option(name: .customLong("data-dir"), help: "dataDir: the store (and the log unless --data-log-dir).")
    var dataDir: String?
    @Option(name: .customLong("data-log-dir"), help: "dataLogDir: the write-ahead log (a dedicated device helps).")
    var dataLogDir: String?
    @Option(name: .long, help: "clientPort.")
    var port: Int?
    @Option(name: .long, help: "clientPortAddress: the address to listen on.")
    var host: String?
    @Option(name: .customLong("admin-port"), help: "admin.serverPort (0 picks a free port).")
    var adminPort: Int?
    @Flag(name: .customLong("no-admin"), help: "admin.enableServer=false.")
    var noAdmin = false
    @Option(name: .customLong("tick-time"), help: "tickTime in milliseconds.")
    var tickTime: Int?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "swiftkeeper")
        var settings = ServerConfig()
        if let config {
            guard let text = Self.readFile(config) else {
                throw ValidationError("cannot read config file \(config): \(String(cString: strerror(errno)))")
            }
            do {
                let (parsed, report) = try ConfigParser(file: config).parse(text)
                settings = parsed
                for key in report.ignoredKeys { logger.warning("\(config): ignoring unknown key \(key)") }
            } catch {
                throw ValidationError("\(error)")
            }
        }
        if let dataDir { settings.dataDir = dataDir }
        if let dataLogDir { settings.dataLogDir = dataLogDir }
        if let port { settings.clientPort = port }
        if let host { settings.clientPortAddress = host }
        if let adminPort { settings.adminServerPort = adminPort }
        if noAdmin { settings.adminEnableServer = false }
        if let tickTime { settings.tickTime = tickTime }
        if !settings.servers.isEmpty {
            let path = settings.dataDir + "/myid"
            guard let text = Self.readFile(path), let id = Int(text.filter { !$0.isWhitespace }) else {
                throw ValidationError("\(path): missing or not a number; an ensemble member needs its myid")
            }
            settings.myid = id
            if settings.servers.count > 1 && settings.servers[id] == nil {
                throw ValidationError(
                    "\(path): myid \(id) has no server.\(id) line in \(config ?? "zoo.cfg") (ids: \(settings.servers.keys.sorted().map(String.init).joined(separator: ", ")))")
            }
        }
        logger.info("memory allocator: \(Allocator.name)")
        let server: KeeperServer
        do {
            server = try KeeperServer(config: settings, logger: logger)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        let group = ServiceGroup(
            services: [KeeperService(server: server)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }

    static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Runs the server until a graceful shutdown is requested (SIGTERM, SIGINT).
struct KeeperService: Service {
    let server: KeeperServer
    func run() async throws {
        try await gracefulShutdown()
        try server.shutdown()
    }
}

/// The process's memory allocator, named in the startup log.
enum Allocator {
    /// "jemalloc <version>" when the executable links jemalloc (Linux), else "the C library's
    /// malloc". Asking jemalloc for its version is also what keeps the linker from dropping a
    /// library whose symbols nothing else names.
    static var name: String {
        #if canImport(CJemalloc)
            var version: UnsafePointer<CChar>? = nil
            var size = MemoryLayout<UnsafePointer<CChar>?>.size
            guard mallctl("version", &version, &size, nil, 0) == 0, let version else {
                return "jemalloc (version unknown)"
            }
            return "jemalloc " + String(cString: version)
        #else
            return "the C library's malloc"
        #endif
    }
}
