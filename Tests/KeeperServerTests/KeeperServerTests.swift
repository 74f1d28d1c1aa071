import Testing
@testable import KeeperServer
