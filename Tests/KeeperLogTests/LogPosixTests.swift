import KeeperModel
import Testing

@testable import KeeperLog

#if canImport(Glibc)
import Glibc
#endif

/// The same log on real files: preallocation, fdatasync, directory sync and recovery of a
/// torn tail written by hand.
@Suite("KeeperLog on POSIX files")
struct LogPosixTests {
    func temporaryDirectory() throws -> String {
        // The system's temporary directory ($TMPDIR, else P_tmpdir's usual value).
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((base + "/keeperlog-test-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { throw KeeperLogError.io(operation: "mkdtemp", path: base, errno: errno) }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func removeTree(_ path: String) throws {
        let fileSystem = PosixLogFileSystem()
        for name in try fileSystem.contentsOfDirectory(path) { try fileSystem.remove(path + "/" + name) }
        guard rmdir(path) == 0 else { throw KeeperLogError.io(operation: "rmdir", path: path, errno: errno) }
    }

    @Test("records round-trip through real files; segments are preallocated in blocks")
    func roundTrip() async throws {
        let root = try temporaryDirectory()
        defer { #expect(throws: Never.self) { try removeTree(root + "/log"); try removeTree(root) } }
        let config = configuration(PosixLogFileSystem(), directory: root + "/log", preallocation: 64 * 1024, segmentRecords: 50)
        let log = try KeeperLog.open(config)
        for start in stride(from: 1, through: 91, by: 10) { try await appendDurably(log, start...(start + 9)) }
        let segments = log.segments()
        #expect(segments.count == 2)
        let active = try PosixLogFileSystem().open(segments[1].path, mode: .readOnly)
        let size = try active.size()
        try active.close()
        #expect(size % (64 * 1024) == 0 && size >= segments[1].byteCount, "preallocated size \(size)")
        try log.close()

        // A torn tail, by hand: half a record after the last one, on the zero-filled space.
        let file = try PosixLogFileSystem().open(segments[1].path, mode: .readWrite)
        var torn: [UInt8] = [0x53, 0x4B, 0x52, 0x31, 100, 0, 0, 0, 0x65]
        try torn.withUnsafeMutableBytes { raw in
            let vector = iovec(iov_base: raw.baseAddress, iov_len: raw.count)
            try withUnsafePointer(to: vector) { try file.write(UnsafeBufferPointer(start: $0, count: 1), at: segments[1].byteCount) }
        }
        try file.close()

        let reopened = try KeeperLog.open(config)
        guard case .tornTail(let offset, _, _) = reopened.recovery.tornTail else {
            Issue.record("expected a torn tail, got \(String(describing: reopened.recovery.tornTail))")
            try reopened.close()
            return
        }
        #expect(offset == segments[1].byteCount)
        let records = try readAll(reopened, from: zxid(40))
        #expect(records.map(\.zxid) == (40...100).map(zxid))
        #expect(records.allSatisfy { $0.payload == payload(Int($0.zxid.counter)) })
        try await appendDurably(reopened, 101...110)
        try reopened.close()
    }
}
