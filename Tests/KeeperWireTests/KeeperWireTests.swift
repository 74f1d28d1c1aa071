import Testing
@testable import KeeperWire
