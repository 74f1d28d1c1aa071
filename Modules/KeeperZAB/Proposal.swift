import KeeperModel

/// One entry of the replicated history: a zxid and the encoded txn it carries.
///
/// The core never looks inside `payload`; the server encodes the txn (TxnHeader + record) and
/// the core orders it. A PROPOSAL, an INFORM and a log record all carry one.
public struct Proposal: Hashable, Sendable {
    public var zxid: Zxid
    public var payload: [UInt8]
    public init(zxid: Zxid, payload: [UInt8]) {
        self.zxid = zxid
        self.payload = payload
    }
}

/// A client `sync` in flight: the server's own id for it, echoed back when it completes.
public struct SyncID: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
}
