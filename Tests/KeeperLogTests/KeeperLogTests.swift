import Testing
@testable import KeeperLog
