import KeeperModel
import Testing

@testable import KeeperServer

@Suite struct ConfigParserTests {
    let parser = ConfigParser(file: "zoo.cfg")

    @Test func zooKeeperSampleConfig() throws {
        let text = """
            # The number of milliseconds of each tick
            tickTime=2000
            initLimit=10
            syncLimit=5
            dataDir=/var/lib/zookeeper
            dataLogDir = /var/log/zk-txn
            clientPort=2181
            maxClientCnxns=100
            4lw.commands.whitelist=ruok, stat ,mntr
            forceSync=no
            preAllocSize=1024
            server.1=zoo1:2888:3888
            server.2=zoo2:2888:3888:observer;127.0.0.1:2182
            server.3=zoo3:2888:3888;2183
            autopurge.purgeInterval=1
            metricsProvider.className=org.example.Foo
            metricsProvider.className=org.example.Foo
            """
        let (config, report) = try parser.parse(text)
        #expect(config.tickTime == 2000)
        #expect(config.dataDir == "/var/lib/zookeeper")
        #expect(config.effectiveDataLogDir == "/var/log/zk-txn")
        #expect(config.maxClientCnxns == 100)
        #expect(config.fourLetterWords == ["ruok", "stat", "mntr", "srvr"])
        #expect(config.forceSync == false)
        #expect(config.preAllocSizeKB == 1024)
        #expect(config.servers.count == 3)
        #expect(config.servers[2]?.role == .observer)
        #expect(config.servers[2]?.clientAddress == "127.0.0.1")
        #expect(config.servers[2]?.clientPort == 2182)
        #expect(config.servers[3]?.clientPort == 2183)
        #expect(config.servers[1]?.quorumPort == 2888 && config.servers[1]?.electionPort == 3888)
        #expect(config.effectiveMinSessionTimeout == 4000)
        #expect(config.effectiveMaxSessionTimeout == 40000)
        #expect(report.ignoredKeys == ["metricsProvider.className"])
    }

    @Test func starWhitelistEnablesEveryWord() throws {
        let (config, _) = try parser.parse("4lw.commands.whitelist=*")
        #expect(config.fourLetterWords == ServerConfig.allFourLetterWords)
    }

    @Test(arguments: [
        ("tickTime=fast", 1, "tickTime", "'fast' is not an integer"),
        ("\n\nclientPort=70000", 3, "clientPort", "70000 is out of range 0...65535"),
        ("forceSync=maybe", 1, "forceSync", "'maybe' is not a boolean (true/false/yes/no)"),
        ("server.1=zoo1:2888", 1, "server.1", "expected host:quorumPort:electionPort[:participant|observer][;[clientAddress:]clientPort]"),
        ("server.x=zoo1:2888:3888", 1, "server.x", "server id must be an integer in 0...254 (myid)"),
        ("4lw.commands.whitelist=ruok,rm", 1, "4lw.commands.whitelist", "unknown four-letter word 'rm'"),
        ("peerType=leader", 1, "peerType", "'leader' is not participant or observer"),
    ])
    func invalidValuesNameKeyAndLine(_ text: String, _ line: Int, _ key: String, _ message: String) {
        #expect(throws: ConfigError(file: "zoo.cfg", line: line, key: key, message: message)) {
            try parser.parse(text)
        }
    }

    @Test func minAboveMaxIsRefused() {
        #expect(throws: ConfigError.self) { try parser.parse("minSessionTimeout=9000\nmaxSessionTimeout=5000") }
    }

    @Test func flagsOverrideTheFile() throws {
        var base = ServerConfig()
        base.clientPort = 1234
        let (config, _) = try parser.parse("tickTime=100", over: base)
        #expect(config.clientPort == 1234 && config.tickTime == 100)
    }
}
