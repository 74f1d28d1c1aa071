import ArgumentParser

/// `keeperctl`: offline tools for a SwiftKeeper server's files. Each area is a subcommand
/// group (`log` today; backup, restore and export join as their own groups).
@main
struct KeeperCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keeperctl",
        abstract: "Inspect and maintain SwiftKeeper's data files.",
        subcommands: [LogCommand.self, BackupCommand.self, RestoreCommand.self, VerifyCommand.self, ExportCommand.self, ImportCommand.self])
}
