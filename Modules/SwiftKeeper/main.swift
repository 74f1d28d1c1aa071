// The `swiftkeeper` executable: argument parsing and service lifecycle only.
import KeeperServer
print("swiftkeeper: the server is not built yet (see the issues)")
