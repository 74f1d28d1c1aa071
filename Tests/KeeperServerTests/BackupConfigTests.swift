import KeeperModel
import Testing

@testable import KeeperServer

@Suite struct BackupConfigTests {
    let parser = ConfigParser(file: "zoo.cfg")

    @Test func backupAndPurgeKeys() throws {
        let text = """
            dataDir=/var/lib/swiftkeeper
            backup.dir=/backups/sk
            backup.fullIntervalSeconds=43200
            backup.incrementalIntervalSeconds=600
            backup.retainCount=3
            backup.retainDays=14
            backup.archiveLog=true
            backup.archiveCheckIntervalMs=250
            backup.tempDir=/scratch
            admin.snapshot.enabled=false
            autopurge.snapRetainCount=5
            autopurge.purgeInterval=2
            """
        let (config, report) = try parser.parse(text)
        #expect(report.ignoredKeys.isEmpty)
        #expect(config.backup.directory == "/backups/sk")
        #expect(config.backup.fullIntervalSeconds == 43_200)
        #expect(config.backup.incrementalIntervalSeconds == 600)
        #expect(config.backup.retainCount == 3)
        #expect(config.backup.retainDays == 14)
        #expect(config.backup.archiveLog)
        #expect(config.backup.archiveCheckIntervalMs == 250)
        #expect(config.backup.tempDirectory == "/scratch")
        #expect(!config.backup.onlineEnabled)
        #expect(config.autopurgeSnapRetainCount == 5)
        #expect(config.logPurgeIntervalSeconds == 7_200)
        let (seconds, _) = try parser.parse("autopurge.purgeInterval=2\nautopurge.purgeIntervalSeconds=30\n")
        #expect(seconds.logPurgeIntervalSeconds == 30)
    }

    @Test func defaultsTakeNoBackupsAndNeverPurge() throws {
        let (config, _) = try parser.parse("")
        #expect(config.backup.directory == nil)
        #expect(config.logPurgeIntervalSeconds == 0)
        #expect(config.backup.onlineEnabled)
    }

    @Test func badValuesNameTheKey() {
        #expect(throws: ConfigError.self) { try parser.parse("backup.retainCount=0\n") }
        #expect(throws: ConfigError.self) { try parser.parse("backup.archiveLog=maybe\n") }
        #expect(throws: ConfigError.self) { try parser.parse("backup.dir=\n") }
        do {
            _ = try parser.parse("backup.fullIntervalSeconds=-5\n")
            Issue.record("a negative interval was accepted")
        } catch {
            #expect(error.key == "backup.fullIntervalSeconds")
            #expect(error.line == 1)
        }
    }
}
