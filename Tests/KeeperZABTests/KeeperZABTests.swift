import Testing
@testable import KeeperZAB
