import Testing
@testable import KeeperStore
