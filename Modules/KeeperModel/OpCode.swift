/// Request and txn types (ZooDefs.OpCode).
public enum OpCode: Int32, Sendable, CaseIterable {
    case notification = 0
    case create = 1
    case delete = 2
    case exists = 3
    case getData = 4
    case setData = 5
    case getACL = 6
    case setACL = 7
    case getChildren = 8
    case sync = 9
    case ping = 11
    case getChildren2 = 12
    case check = 13
    case multi = 14
    case create2 = 15
    case reconfig = 16
    case checkWatches = 17
    case removeWatches = 18
    case createContainer = 19
    case deleteContainer = 20
    case createTTL = 21
    case multiRead = 22
    case auth = 100
    case setWatches = 101
    case sasl = 102
    case getEphemerals = 103
    case getAllChildrenNumber = 104
    case setWatches2 = 105
    case addWatch = 106
    case whoAmI = 107
    case createSession = -10
    case closeSession = -11
    case error = -1

    /// Whether a request of this type changes state (goes through the write path).
    public var isWrite: Bool {
        switch self {
        case .create, .delete, .setData, .setACL, .check, .multi, .create2, .reconfig,
            .createContainer, .deleteContainer, .createTTL, .createSession, .closeSession, .error:
            return true
        case .notification, .exists, .getData, .getACL, .getChildren, .sync, .ping, .getChildren2,
            .checkWatches, .removeWatches, .multiRead, .auth, .setWatches, .sasl, .getEphemerals,
            .getAllChildrenNumber, .setWatches2, .addWatch, .whoAmI:
            return false
        }
    }
}
