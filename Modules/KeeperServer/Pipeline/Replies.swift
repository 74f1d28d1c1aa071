import KeeperModel
import KeeperStore
import KeeperWire
import NIOCore

/// Turns applied txns into replies, as ZooKeeper's FinalRequestProcessor does.
enum Replies {
    /// Room for a reply header (16 bytes) plus the largest fixed reply record, a Create2Response's
    /// Stat (68 bytes) and path length: one allocation for nearly every reply.
    static let typicalReplyCapacity = 128

    static func write(xid: Int32, outcome: WriteOutcome, fallbackZxid: Zxid, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: typicalReplyCapacity)
        switch outcome {
        case .failed(let code):
            buffer.writeReply(ReplyHeader(xid: xid, zxid: fallbackZxid, err: code))
        case .applied(let entry, let result):
            let header = ReplyHeader(xid: xid, zxid: entry.zxid, err: .ok)
            if case .multi = entry.txn {
                // A multi is answered with OK and per-op results, even when an op failed.
                buffer.writeReply(header, .multi(MultiResponse(results: result.multi.map(multiResult))))
                return buffer
            }
            guard result.error == .ok else {
                buffer.writeReply(ReplyHeader(xid: xid, zxid: entry.zxid, err: result.error))
                return buffer
            }
            let stat = result.stat ?? Stat()
            switch entry.txn {
            case .create: buffer.writeReply(header, .create(CreateResponse(path: result.path ?? "")))
            case .create2, .createContainer, .createTTL:
                buffer.writeReply(header, .create2(Create2Response(path: result.path ?? "", stat: stat)))
            case .setData, .setACL, .check: buffer.writeReply(header, .stat(StatResponse(stat: stat)))
            case .delete, .deleteContainer, .closeSession, .createSession, .error:
                buffer.writeReply(header)
            case .multi:
                preconditionFailure("handled above")
            }
        }
        return buffer
    }

    static func multiResult(_ r: TxnResult) -> MultiResult {
        if r.error != .ok || r.type == .error { return .error(r.error) }
        switch r.type {
        // ZooKeeper 3.8 answers a create2 op inside a multi with a plain create result.
        case .create, .create2: return .create(path: r.path ?? "")
        case .createContainer, .createTTL: return .create2(path: r.path ?? "", stat: r.stat ?? Stat())
        case .delete, .deleteContainer: return .delete
        case .setData: return .setData(r.stat ?? Stat())
        case .check: return .check
        default: return .error(.runtimeInconsistency)
        }
    }
}
