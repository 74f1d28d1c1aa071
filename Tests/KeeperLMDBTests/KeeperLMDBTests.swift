import Testing
@testable import KeeperLMDB
