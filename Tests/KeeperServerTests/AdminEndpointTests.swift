import KeeperBackup
import Testing

@Suite struct AdminEndpointTests {
    @Test func parsesHostAndPort() throws {
        let plain = try AdminEndpoint(url: "http://127.0.0.1:8080/", auth: "super:x")
        #expect(plain.host == "127.0.0.1" && plain.port == 8080 && plain.auth == "super:x")
        let v6 = try AdminEndpoint(url: "http://[::1]:9090")
        #expect(v6.host == "::1" && v6.port == 9090)
        #expect(v6.description == "http://[::1]:9090")
    }

    @Test func refusesWhatItCannotSpeak() {
        for url in ["https://h:1", "h:8080", "http://h", "http://h:0", "http://h:70000", "http://:8080"] {
            #expect(throws: BackupError.self, "\(url)") { _ = try AdminEndpoint(url: url) }
        }
    }

    @Test func refusalsSayWhatToDo() {
        let unauthorized = BackupError.refused(url: "http://h:1/commands/snapshot", status: 401, message: "Auth info is missing")
        #expect(unauthorized.description.contains("--auth"))
        let gone = BackupError.refused(url: "http://h:1/commands/txns", status: 410, message: "purged")
        #expect(gone.description.contains("full backup"))
    }
}
