import KeeperLog
import KeeperModel
import Synchronization

/// KeeperLog as the replica's log: durability events are forwarded to the handler the replica
/// installs when it starts (the log is opened, and recovered, before the replica exists).
final class KeeperLogAdapter: ReplicaLog, Sendable {
    let log: KeeperLog
    private let handler: HandlerSlot

    /// The replica's event handler, installed after the log is open. The closure lives in a
    /// final class: reading a closure out of a Mutex re-wraps it in one more reabstraction
    /// thunk on every call, which grew each durable event's cost and finally overflowed the
    /// stack under sustained load.
    final class Handler: Sendable {
        let call: @Sendable (LogEvent) -> Void
        init(_ call: @escaping @Sendable (LogEvent) -> Void) { self.call = call }
    }

    final class HandlerSlot: Sendable {
        let value = Mutex<Handler?>(nil)
    }

    init(configuration: LogConfiguration) throws {
        let handler = HandlerSlot()
        self.log = try KeeperLog.open(configuration) { event in
            handler.value.withLock { $0 }?.call(event)
        }
        self.handler = handler
    }

    func append(zxid: Zxid, payload: [UInt8]) throws { try log.append(zxid: zxid, payload: payload) }

    func start(onDurable: @escaping @Sendable (Zxid) -> Void, onFailure: @escaping @Sendable (any Error) -> Void) throws {
        let installed = Handler { event in
            switch event {
            case .durable(let zxid): onDurable(zxid)
            case .failed(_, let error): onFailure(error)
            }
        }
        handler.value.withLock { $0 = installed }
        // Anything that became durable before the handler was installed.
        onDurable(log.lastDurableZxid)
    }

    var lastZxid: Zxid { log.lastAppendedZxid }

    var oldestZxid: Zxid { log.segments().first?.previousZxid ?? log.lastAppendedZxid }

    func forEach(after zxid: Zxid, _ body: (Zxid, [UInt8]) throws -> Void) throws {
        guard let next = zxid.next else { return }
        let reader = log.read(from: next)
        while let record = try reader.next() {
            if record.zxid > zxid { try body(record.zxid, record.payload) }
        }
    }

    func close() throws { try log.close() }
}
