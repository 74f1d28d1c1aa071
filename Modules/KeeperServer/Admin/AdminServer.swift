import NIOCore
import NIOHTTP1
import NIOPosix

/// ZooKeeper's AdminServer over HTTP: `GET /commands/<name>` answers JSON, and `/metrics`
/// answers Prometheus' text format with the names mntr uses (`zk_` prefix dropped, as
/// ZooKeeper's Prometheus provider does).
final class AdminServer: Sendable {
    let channel: any Channel
    var address: SocketAddress? { channel.localAddress }

    init(group: any EventLoopGroup, host: String, port: Int, server: ServerContext) throws {
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(AdminHandler(server: server))
                }
            }
            .bind(host: host, port: port).wait()
    }

    func close() throws {
        do { try channel.close().wait() } catch ChannelError.alreadyClosed {}
    }
}

final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let server: ServerContext
    var uri = ""
    var headers = HTTPHeaders()
    /// A `restore` upload being received (see `RestoreCommand`).
    var upload: RestoreUpload?
    /// The request was answered already (a refused restore): its body is ignored.
    var answered = false

    init(server: ServerContext) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            uri = head.uri
            headers = head.headers
            upload = nil
            answered = false
            if uri.split(separator: "?", maxSplits: 1).first == "/commands/restore" {
                do {
                    upload = try RestoreCommand.begin(method: head.method, headers: head.headers, server: server)
                } catch let failure as RestoreCommand.Failure {
                    answered = true
                    BackupAdminCommands.respond(context.channel, failure.status, "restore", error: failure.message)
                } catch {
                    answered = true
                    BackupAdminCommands.respond(context.channel, .internalServerError, "restore", error: "\(error)")
                }
            }
        case .body(let buffer):
            guard let upload else { return }
            do { try upload.append(buffer) } catch {
                upload.discard()
                self.upload = nil
                answered = true
                BackupAdminCommands.respond(context.channel, .internalServerError, "restore", error: "cannot store the upload: \(error)")
                context.close(promise: nil)
            }
        case .end:
            if answered { return }
            if let upload {
                self.upload = nil
                RestoreCommand.finish(upload, headers: headers, server: server, channel: context.channel)
                return
            }
            if let (name, query) = Self.backupCommand(uri) {
                // Backups stream from threads of their own and need the request's headers.
                BackupAdminCommands.handle(name, query: query, headers: headers, server: server, channel: context.channel)
                return
            }
            let (status, type, body) = respond(to: uri)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
            buffer.writeString(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    func respond(to uri: String) -> (HTTPResponseStatus, String, String) {
        let path = String(uri.split(separator: "?", maxSplits: 1).first ?? "")
        if path == "/metrics" {
            return (.ok, "text/plain; version=0.0.4", server.metrics.exposition(server.report()))
        }
        let prefix = "/commands/"
        guard path.hasPrefix(prefix) else {
            return (.notFound, "application/json", JSON.object([("error", .string("unknown path \(path)"))]).text)
        }
        let name = String(path.dropFirst(prefix.count))
        guard let json = Self.command(name, server: server) else {
            // ZooKeeper answers an unknown command with 200 and the error in the body.
            return (.ok, "application/json", JSON.object([("command", .string(name)), ("error", .string("Unknown command: \(name)"))]).text)
        }
        return (.ok, "application/json", json.text)
    }

    /// The name and query of a backup command (`BackupAdminCommands`), or nil.
    static func backupCommand(_ uri: String) -> (String, [String: String])? {
        let halves = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let prefix = "/commands/"
        guard let path = halves.first, path.hasPrefix(prefix) else { return nil }
        let name = String(path.dropFirst(prefix.count))
        guard BackupAdminCommands.names.contains(name) else { return nil }
        var query: [String: String] = [:]
        if halves.count == 2 {
            for pair in halves[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                query[String(kv[0])] = kv.count == 2 ? String(kv[1]) : ""
            }
        }
        return (name, query)
    }

    static let commands = [
        "ruok", "srvr", "server_stats", "stats", "stat", "monitor", "mntr", "conf", "configuration", "cons", "connections",
        "dump", "dirs", "wchs", "watch_summary", "envi", "environment", "is_read_only", "isro",
    ]

    static func command(_ name: String, server: ServerContext) -> JSON? {
        let report = server.report()
        func done(_ canonical: String, _ fields: [(String, JSON)]) -> JSON {
            .object(fields + [("command", .string(canonical)), ("error", .null)])
        }
        switch name {
        case "ruok": return done("ruok", [])
        case "srvr", "server_stats":
            return done("server_stats", serverStats(report))
        case "stats", "stat":
            return done("stats", serverStats(report) + [("connections", connections(report))])
        case "monitor", "mntr":
            return done("monitor", report.mntrPairs.map { key, value in
                (String(key.dropFirst(3)), Int64(value).map { .int($0) } ?? Double(value).map { .double($0) } ?? .string(value))
            })
        case "conf", "configuration":
            let c = report.config
            return done("configuration", [
                ("client_port", .int(Int64(c.clientPort))), ("data_dir", .string(c.dataDir)),
                ("data_log_dir", .string(c.effectiveDataLogDir)), ("tick_time", .int(Int64(c.tickTime))),
                ("max_client_cnxns", .int(Int64(c.maxClientCnxns))),
                ("min_session_timeout", .int(Int64(c.effectiveMinSessionTimeout))),
                ("max_session_timeout", .int(Int64(c.effectiveMaxSessionTimeout))), ("server_id", .int(Int64(c.myid ?? 0))),
            ])
        case "cons", "connections":
            return done("connections", [("connections", connections(report))])
        case "dump":
            return done("dump", [
                ("expiry_time_to_session_ids", .object(report.sessionExpiry.map { (String($0.expiresAtMillis), .array([.int($0.session.rawValue)])) })),
                ("session_id_to_ephemeral_paths", .object(report.ephemeralsBySession.map { (String($0.key.rawValue), .array($0.value.map { .string($0) })) })),
            ])
        case "dirs":
            return done("dirs", [("datadir_size", .int(report.dataDirSize)), ("logdir_size", .int(report.dataLogDirSize))])
        case "wchs", "watch_summary":
            return done("watch_summary", [
                ("num_connections", .int(Int64(report.watches.watchers))), ("num_paths", .int(Int64(report.watches.paths))),
                ("num_total_watches", .int(Int64(report.watches.watches))),
            ])
        case "envi", "environment":
            return done("environment", report.environment.map { ($0.0, .string($0.1)) })
        case "srst", "stat_reset":
            server.stats.reset()
            return done("stat_reset", [])
        case "crst", "connection_stat_reset":
            for e in server.registry.all() { e.resetStats() }
            return done("connection_stat_reset", [])
        case "wchc", "watches":
            return done("watches", [("session_id_to_watched_paths", .object(report.watchesByConnection.map { w, paths in
                (String(report.sessionOfWatcher[w]?.rawValue ?? 0), .array(paths.map { .string($0) }))
            }))])
        case "wchp", "watches_by_path":
            return done("watches_by_path", [("path_to_session_ids", .object(report.watchesByPath.map { path, ws in
                (path, .array(ws.map { .int(report.sessionOfWatcher[$0]?.rawValue ?? 0) }))
            }))])
        case "is_read_only", "isro":
            return done("is_read_only", [("read_only", .bool(false))])
        default:
            return nil
        }
    }

    static func serverStats(_ r: ServerReport) -> [(String, JSON)] {
        [
            ("version", .string(r.version)), ("read_only", .bool(false)),
            ("server_stats", .object([
                ("packets_sent", .int(r.stats.sent)), ("packets_received", .int(r.stats.received)),
                ("max_latency", .int(r.stats.maxLatency)), ("min_latency", .int(r.stats.minLatency)),
                ("avg_latency", .double(r.stats.avgLatency)), ("outstanding_requests", .int(Int64(r.outstanding))),
                ("last_processed_zxid", .int(r.zxid)), ("num_alive_client_connections", .int(Int64(r.connections.count))),
                ("server_state", .string(r.mode)), ("uptime", .int(r.stats.uptimeMillis)),
                ("auth_failed_count", .int(r.stats.authFailed)),
            ])),
            ("node_count", .int(Int64(r.nodeCount))),
        ]
    }

    static func connections(_ r: ServerReport) -> JSON {
        .array(r.connections.map { c in
            .object([
                ("remote_socket_address", .string(c.remote)), ("interest_ops", .int(1)),
                ("outstanding_requests", .int(Int64(c.queued))), ("packets_received", .int(c.received)),
                ("packets_sent", .int(c.sent)), ("session_id", c.session.map { .string($0.description) } ?? .null),
            ])
        })
    }
}

/// A small JSON value with ordered objects, enough for the admin commands.
enum JSON {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    var text: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return d.isFinite ? String(d) : "null"
        case .string(let s): return JSON.quote(s)
        case .array(let a): return "[" + a.map(\.text).joined(separator: ",") + "]"
        case .object(let o): return "{" + o.map { JSON.quote($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
