import KeeperModel
import KeeperStore
import KeeperWire
import NIOCore

/// Reads, served on the connection's event loop from one LMDB read transaction, with ZooKeeper's
/// ACL checks and watch registration (FinalRequestProcessor's read cases).
enum Reads {
    static func run(
        _ request: Request, xid: Int32, watcher: WatcherID, authIds: [Id], session: SessionID, server: ServerContext,
        registered: () -> Void
    ) throws -> ByteBuffer {
        let request = rootingEmptyPaths(request)
        if let path = readPath(request), !ZNodePath.isValid(path) {
            // Reads never validate in ZooKeeper: a malformed path is a node that does not exist.
            var reply = ByteBuffer()
            reply.writeReply(ReplyHeader(xid: xid, zxid: server.replica.committedZxid, err: .noNode))
            return reply
        }
        var out = ByteBuffer()
        func fail(_ code: KeeperErrorCode, _ zxid: Zxid) -> ByteBuffer {
            out.writeReply(ReplyHeader(xid: xid, zxid: zxid, err: code))
            return out
        }
        func allowed(_ view: StoreView, _ path: String, _ perm: Permissions) throws -> Bool {
            guard let acl = try view.acl(at: path) else { return true }
            return Authentication.allows(acl.acl, perm, authIds: authIds)
        }
        switch request {
        case .ping:
            out.writeReply(ReplyHeader(xid: SpecialXid.ping, zxid: server.replica.committedZxid, err: .ok))
            return out

        case .exists(let r):
            if r.path.utf8.contains(0) { return fail(.badArguments, server.replica.committedZxid) }
            return try withWatch(r.watch, watcher: watcher, server: server, registered: registered) { view, zxid in
                guard let stat = try view.stat(at: r.path) else {
                    // exists on a missing node still leaves a watch for its creation.
                    return (fail(.noNode, zxid), .data(r.path))
                }
                out.writeReply(ReplyHeader(xid: xid, zxid: zxid, err: .ok), .stat(StatResponse(stat: stat)))
                return (out, .data(r.path))
            }

        case .getData(let r):
            return try withWatch(r.watch, watcher: watcher, server: server, registered: registered) { view, zxid in
                guard let node = try view.node(at: r.path) else { return (fail(.noNode, zxid), nil) }
                guard try allowed(view, r.path, .read) else { return (fail(.noAuth, zxid), nil) }
                if node.dataIsNull {
                    out.writeGetDataReply(xid: xid, zxid: zxid, data: nil, stat: node.stat)
                } else {
                    node.data.withUnsafeBytes { bytes in
                        out.writeGetDataReply(xid: xid, zxid: zxid, data: bytes, stat: node.stat)
                    }
                }
                return (out, .data(r.path))
            }

        case .getChildren(let r), .getChildren2(let r):
            let two: Bool
            if case .getChildren2 = request { two = true } else { two = false }
            return try withWatch(r.watch, watcher: watcher, server: server, registered: registered) { view, zxid in
                guard let (names, stat) = try view.children(of: r.path) else { return (fail(.noNode, zxid), nil) }
                guard try allowed(view, r.path, .read) else { return (fail(.noAuth, zxid), nil) }
                let header = ReplyHeader(xid: xid, zxid: zxid, err: .ok)
                if two {
                    out.writeReply(header, .children2(GetChildren2Response(children: names, stat: stat)))
                } else {
                    out.writeReply(header, .strings(StringListResponse(names)))
                }
                return (out, .children(r.path))
            }

        case .getACL(let r):
            return try server.store.read { view in
                let zxid = try view.lastAppliedZxid()
                guard let acl = try view.acl(at: r.path) else { return fail(.noNode, zxid) }
                let admin = Authentication.allows(acl.acl, .admin, authIds: authIds)
                guard admin || Authentication.allows(acl.acl, .read, authIds: authIds) else { return fail(.noAuth, zxid) }
                let shown = admin ? acl.acl : Authentication.redacted(acl.acl)
                out.writeReply(ReplyHeader(xid: xid, zxid: zxid, err: .ok), .getACL(GetACLResponse(acl: shown, stat: acl.stat)))
                return out
            }

        case .getEphemerals(let r):
            return try server.store.read { view in
                let zxid = try view.lastAppliedZxid()
                let prefix = r.path
                let all = try view.ephemerals(of: session)
                let matching = prefix == "/" ? all : all.filter { $0.hasPrefix(prefix) }
                out.writeReply(ReplyHeader(xid: xid, zxid: zxid, err: .ok), .strings(StringListResponse(matching.sorted())))
                return out
            }

        case .getAllChildrenNumber(let r):
            return try server.store.read { view in
                let zxid = try view.lastAppliedZxid()
                guard let n = try view.allChildrenNumber(of: r.path) else { return fail(.noNode, zxid) }
                guard try allowed(view, r.path, .read) else { return fail(.noAuth, zxid) }
                out.writeReply(ReplyHeader(xid: xid, zxid: zxid, err: .ok), .int(IntResponse(Int32(clamping: n))))
                return out
            }

        case .addWatch(let r):
            guard let mode = AddWatchMode(rawValue: r.mode) else { return fail(.badArguments, server.replica.committedZxid) }
            server.watches.register(.persistent(r.path, recursive: mode == .persistentRecursive), for: watcher)
            registered()
            out.writeReply(ReplyHeader(xid: xid, zxid: server.replica.committedZxid, err: .ok), .int(IntResponse(0)))
            return out

        case .checkWatches(let r), .removeWatches(let r):
            var remove = false
            if case .removeWatches = request { remove = true }
            let zxid = server.replica.committedZxid
            // ZooKeeper 3.8 knows only Children (1), Data (2) and Any (3) here.
            guard let type = WatcherType(rawValue: r.type), type == .children || type == .data || type == .any else {
                return fail(.marshallingError, zxid)
            }
            let had = server.watches.watches(r.path, type: type, watcher: watcher, remove: remove)
            return had ? { out.writeReply(ReplyHeader(xid: xid, zxid: zxid, err: .ok)); return out }() : fail(.noWatcher, zxid)

        case .setWatches(let w), .setWatches2(let w):
            return try setWatches(w, xid: xid, watcher: watcher, server: server, registered: registered)

        case .whoAmI:
            let infos = authIds.filter { $0.scheme != "super" }.map { ClientInfo(authScheme: $0.scheme, user: Authentication.userName(of: $0)) }
            out.writeReply(ReplyHeader(xid: xid, zxid: server.replica.committedZxid, err: .ok), .whoAmI(WhoAmIResponse(clientInfo: infos)))
            return out

        case .multiRead(let m):
            return try server.store.read { view in
                let zxid = try view.lastAppliedZxid()
                var results: [MultiResult] = []
                for op in m.ops {
                    switch op {
                    case .getData(let r):
                        if let node = try view.node(at: r.path) {
                            if try allowed(view, r.path, .read) {
                                var data = ByteBuffer()
                                data.writeBytes(node.data)
                                results.append(.getData(data: node.dataIsNull ? nil : data, stat: node.stat))
                            } else {
                                results.append(.error(.noAuth))
                            }
                        } else {
                            results.append(.error(.noNode))
                        }
                    case .getChildren(let r):
                        if let (names, _) = try view.children(of: r.path) {
                            results.append(try allowed(view, r.path, .read) ? .getChildren(names) : .error(.noAuth))
                        } else {
                            results.append(.error(.noNode))
                        }
                    case .create, .create2, .createContainer, .createTTL, .delete, .setData, .check:
                        return fail(.badArguments, zxid)
                    }
                }
                out.writeReply(ReplyHeader(xid: xid, zxid: zxid, err: .ok), .multi(MultiResponse(results: results)))
                return out
            }

        case .create, .create2, .createContainer, .createTTL, .delete, .setData, .setACL, .check, .multi, .sync,
            .reconfig, .auth, .sasl, .closeSession, .createSession:
            preconditionFailure("\(request.opCode) is not a read")
        }
    }

    /// The path a read looks up, for the reads that answer NoNode on a malformed path.
    static func readPath(_ request: Request) -> String? {
        switch request {
        case .getData(let r), .getChildren(let r), .getChildren2(let r): return r.path
        case .exists(let r): return r.path.utf8.contains(0) ? nil : r.path
        case .getACL(let r), .getAllChildrenNumber(let r): return r.path
        default: return nil
        }
    }

    /// ZooKeeper keys the root as "" internally, so reads of "" are reads of "/".
    static func rootingEmptyPaths(_ request: Request) -> Request {
        switch request {
        case .exists(let r) where r.path.isEmpty: return .exists(PathWatchRequest(path: "/", watch: r.watch))
        case .getData(let r) where r.path.isEmpty: return .getData(PathWatchRequest(path: "/", watch: r.watch))
        case .getChildren(let r) where r.path.isEmpty: return .getChildren(PathWatchRequest(path: "/", watch: r.watch))
        case .getChildren2(let r) where r.path.isEmpty: return .getChildren2(PathWatchRequest(path: "/", watch: r.watch))
        case .getACL(let r) where r.path.isEmpty: return .getACL(PathRecord(path: "/"))
        default: return request
        }
    }

    /// Runs a read; when `watch` is set, registers what it returns atomically with the read.
    static func withWatch(
        _ watch: Bool, watcher: WatcherID, server: ServerContext, registered: () -> Void,
        _ body: (StoreView, Zxid) throws -> (ByteBuffer, WatchRegistration?)
    ) throws -> ByteBuffer {
        if !watch {
            return try server.store.read { view in try body(view, try view.lastAppliedZxid()).0 }
        }
        var didRegister = false
        let reply = try server.watches.withRegistration(for: watcher) {
            let (reply, registration) = try server.store.read { view in try body(view, try view.lastAppliedZxid()) }
            didRegister = registration != nil
            return (reply, registration)
        }
        if didRegister { registered() }
        return reply
    }

    /// setWatches (ZooKeeper's DataTree.setWatches): a watch whose node changed after
    /// `relativeZxid` fires at once instead of being registered.
    static func setWatches(
        _ w: SetWatches, xid: Int32, watcher: WatcherID, server: ServerContext, registered: () -> Void
    ) throws -> ByteBuffer {
        var events: [WatchEvent] = []
        let relative = w.relativeZxid.rawValue
        try server.watches.withRegistrations(for: watcher) { () throws -> ((), [WatchRegistration]) in
            var registrations: [WatchRegistration] = []
            try server.store.read { view in
                for path in w.dataWatches {
                    if let stat = try view.stat(at: path) {
                        if stat.mzxid > relative {
                            events.append(WatchEvent(type: .nodeDataChanged, state: .syncConnected, path: path))
                        } else {
                            registrations.append(.data(path))
                        }
                    } else {
                        events.append(WatchEvent(type: .nodeDeleted, state: .syncConnected, path: path))
                    }
                }
                for path in w.existWatches {
                    if try view.stat(at: path) != nil {
                        events.append(WatchEvent(type: .nodeCreated, state: .syncConnected, path: path))
                    } else {
                        registrations.append(.data(path))
                    }
                }
                for path in w.childWatches {
                    if let stat = try view.stat(at: path) {
                        if stat.pzxid > relative {
                            events.append(WatchEvent(type: .nodeChildrenChanged, state: .syncConnected, path: path))
                        } else {
                            registrations.append(.children(path))
                        }
                    } else {
                        events.append(WatchEvent(type: .nodeDeleted, state: .syncConnected, path: path))
                    }
                }
                for path in w.persistentWatches { registrations.append(.persistent(path, recursive: false)) }
                for path in w.persistentRecursiveWatches {
                    registrations.append(.persistent(path, recursive: true))
                }
            }
            return ((), registrations)
        }
        registered()
        var out = ByteBuffer()
        for e in events { out.writeNotification(e) }
        out.writeReply(ReplyHeader(xid: xid, zxid: server.replica.committedZxid, err: .ok))
        return out
    }
}
