import KeeperModel
import KeeperStore
import NIOCore

/// ZooKeeper's ContainerManager: deletes containers that had children and have none left, and
/// TTL nodes without children whose TTL has passed since their last change, through the write
/// path (a deleteContainer txn each, with the server's own authority).
enum ContainerReaper {
    static let serverContext = RequestContext(session: SessionID(0), cxid: 0, authIds: [Id(scheme: "super", id: "")])

    static func start(on loop: any EventLoop, replica: Replica, store: StoreSlot, interval: Int64) {
        loop.scheduleRepeatedTask(initialDelay: .milliseconds(interval), delay: .milliseconds(interval)) { _ in
            let now = Clock.wallMillis()
            let candidates: [String]
            do {
                candidates = try store.store.read { view in
                    var paths: [String] = []
                    for c in try view.containers() where c.numChildren == 0 && c.cversion > 0 { paths.append(c.path) }
                    for t in try view.ttlNodes() {
                        if let ttl = t.ttl, t.numChildren == 0, now - t.mtime > ttl { paths.append(t.path) }
                    }
                    return paths
                }
            } catch {
                replica.logger.error("container scan failed: \(error)")
                return
            }
            for path in candidates {
                replica.submit(.delete(opCode: .deleteContainer, path: path, version: -1), context: serverContext) { _ in }
            }
        }
    }
}
