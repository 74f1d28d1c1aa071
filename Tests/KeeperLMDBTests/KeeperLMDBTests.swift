import CLMDB
import Foundation
import Testing

@testable import KeeperLMDB

/// A fresh temporary directory, removed when the test ends.
final class TemporaryDirectory: Sendable {
    let path: String
    init() throws {
        var template = Array((NSTemporaryDirectory() + "keeper-lmdb-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { throw LMDBError(code: errno, operation: "mkdtemp") }
        path = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
    }
    deinit {
        do { try FileManager.default.removeItem(atPath: path) } catch {
            print("warning: could not remove temporary directory \(path): \(error)")
        }
    }
}

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Runs `body` on a new thread and waits for it to end.
func onAnotherThread(_ body: @escaping @Sendable () -> Void) {
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        body()
        done.signal()
    }
    thread.start()
    done.wait()
}

@Suite struct KeeperLMDBTests {
    @Test func putGetDeleteAcrossTransactions() throws {
        let dir = try TemporaryDirectory()
        let env = try Environment(path: dir.path)
        let db = try env.openDatabase("t", flags: .create)
        try env.write { txn throws in
            try txn.put(db, key: bytes("a"), value: bytes("1"))
            try txn.put(db, key: bytes("b"), value: bytes("2"))
        }
        #expect(try env.read { try $0.get(db, key: bytes("a")) } == bytes("1"))
        let deleted = try env.write { txn in try txn.delete(db, key: bytes("a")) }
        #expect(deleted)
        let again = try env.write { txn in try txn.delete(db, key: bytes("a")) }
        #expect(!again)
        #expect(try env.read { try $0.get(db, key: bytes("a")) } == nil)
        #expect(try env.read { try $0.statistics(db).entries } == 1)
    }

    struct Boom: Error {}

    @Test func writeAbortsWhenTheClosureThrows() throws {
        let dir = try TemporaryDirectory()
        let env = try Environment(path: dir.path)
        let db = try env.openDatabase("t", flags: .create)
        #expect(throws: Boom.self) {
            try env.write { txn throws in
                try txn.put(db, key: bytes("k"), value: bytes("v"))
                throw Boom()
            }
        }
        #expect(try env.read { try $0.get(db, key: bytes("k")) } == nil)
    }

    @Test func readersSeeASnapshot() throws {
        let dir = try TemporaryDirectory()
        let env = try Environment(path: dir.path)
        let db = try env.openDatabase("t", flags: .create)
        try env.write { try $0.put(db, key: bytes("k"), value: bytes("old")) }
        try env.read { reader in
            // A write on another thread commits while this reader is open.
            onAnotherThread {
                do { try env.write { try $0.put(db, key: bytes("k"), value: bytes("new")) } } catch {
                    Issue.record("write failed: \(error)")
                }
            }
            let seen = try reader.get(db, key: bytes("k"))
            #expect(seen == bytes("old"))
        }
        #expect(try env.read { try $0.get(db, key: bytes("k")) } == bytes("new"))
    }

    @Test func nestedTransactionRollsBackAlone() throws {
        let dir = try TemporaryDirectory()
        let env = try Environment(path: dir.path)
        let db = try env.openDatabase("t", flags: .create)
        try env.write { txn throws in
            try txn.put(db, key: bytes("outer"), value: bytes("1"))
            #expect(throws: Boom.self) {
                try txn.nested { child in
                    try child.put(db, key: bytes("inner"), value: bytes("2"))
                    throw Boom()
                }
            }
            try txn.nested { child in try child.put(db, key: bytes("kept"), value: bytes("3")) }
        }
        try env.read { txn throws in
            #expect(try txn.get(db, key: bytes("outer")) == bytes("1"))
            #expect(try txn.get(db, key: bytes("inner")) == nil)
            #expect(try txn.get(db, key: bytes("kept")) == bytes("3"))
        }
    }

    @Test func prefixAndRangeScansAreOrderedAndBounded() throws {
        let dir = try TemporaryDirectory()
        let env = try Environment(path: dir.path)
        let db = try env.openDatabase("t", flags: .create)
        try env.write { txn throws in
            for k in ["a", "b/1", "b/2", "b/3", "ba", "c"] { try txn.put(db, key: bytes(k), value: bytes(k)) }
        }
        var seen: [String] = []
        try env.read { txn throws in
            try txn.forEach(db, prefix: bytes("b/")) { k, _ in
                seen.append(String(decoding: k, as: UTF8.self))
                return true
            }
        }
        #expect(seen == ["b/1", "b/2", "b/3"])
        seen = []
        try env.read { txn throws in
            try txn.forEach(db, from: bytes("b/2"), to: bytes("c")) { k, _ in
                seen.append(String(decoding: k, as: UTF8.self))
                return true
            }
        }
        #expect(seen == ["b/2", "b/3", "ba"])
        seen = []
        try env.read { txn throws in
            try txn.forEach(db, prefix: []) { k, _ in
                seen.append(String(decoding: k, as: UTF8.self))
                return seen.count < 2
            }
        }
        #expect(seen == ["a", "b/1"])
    }

    @Test func duplicateSortKeepsSortedValues() throws {
        let dir = try TemporaryDirectory()
        let env = try Environment(path: dir.path)
        let db = try env.openDatabase("d", flags: [.create, .duplicateSort])
        try env.write { txn throws in
            for v in ["z", "a", "m"] { try txn.put(db, key: bytes("k"), value: bytes(v)) }
            try txn.put(db, key: bytes("l"), value: bytes("x"))
            let removed = try bytes("k").withUnsafeBytes { k in
                try bytes("m").withUnsafeBytes { v in try txn.delete(db, key: k, value: v) }
            }
            #expect(removed)
        }
        var values: [String] = []
        try env.read { txn throws in
            try txn.forEach(db, prefix: bytes("k")) { _, v in
                values.append(String(decoding: v, as: UTF8.self))
                return true
            }
        }
        #expect(values == ["a", "z"])
    }

    @Test func mapFullIsATypedErrorAndGrowingRecovers() throws {
        let dir = try TemporaryDirectory()
        let env = try Environment(path: dir.path, configuration: .init(mapSize: 256 * 1024))
        let db = try env.openDatabase("t", flags: .create)
        let value = [UInt8](repeating: 7, count: 4096)
        func fill() throws {
            try env.write { txn throws in
                for i in 0..<200 { try txn.put(db, key: bytes("key\(i)"), value: value) }
            }
        }
        do {
            try fill()
            Issue.record("a 256 KiB map took 800 KiB")
        } catch let error as LMDBError {
            #expect(error.isMapFull)
            #expect(error.code == MDB_MAP_FULL)
            #expect(error.description.contains("MDB_MAP_FULL"))
            #expect(error.description.contains("grow the map"))
        }
        // Nothing of the failed transaction is visible; grow and retry.
        #expect(try env.read { try $0.statistics(db).entries } == 0)
        try env.setMapSize(8 << 20)
        try fill()
        #expect(try env.read { try $0.statistics(db).entries } == 200)
        #expect(try env.info().mapSize == 8 << 20)
    }

    @Test func oversizedKeyIsATypedError() throws {
        let dir = try TemporaryDirectory()
        let env = try Environment(path: dir.path)
        let db = try env.openDatabase("t", flags: .create)
        let key = [UInt8](repeating: 1, count: env.maxKeySize + 1)
        do {
            try env.write { txn in try txn.put(db, key: key, value: [1]) }
            Issue.record("an oversized key was accepted")
        } catch let error as LMDBError {
            #expect(error.isBadValueSize)
            #expect(error.operation == "mdb_put")
        }
    }

    @Test func openingAMissingDatabaseWithoutCreateFails() throws {
        let dir = try TemporaryDirectory()
        let env = try Environment(path: dir.path)
        do {
            _ = try env.openDatabase("absent")
            Issue.record("opened a database that does not exist")
        } catch let error as LMDBError {
            #expect(error.isNotFound)
        }
    }

    @Test func openingAMissingDirectoryNamesThePath() throws {
        do {
            _ = try Environment(path: "/nonexistent-keeper-lmdb-dir/x")
            Issue.record("opened an environment in a missing directory")
        } catch {
            #expect(error.code == ENOENT)
            #expect(error.description.contains("/nonexistent-keeper-lmdb-dir/x"))
        }
    }

    @Test func compactCopyThroughAPipeOpensAsAnEnvironment() throws {
        let dir = try TemporaryDirectory()
        let env = try Environment(path: dir.path)
        let db = try env.openDatabase("t", flags: .create)
        try env.write { txn throws in
            for i in 0..<1000 { try txn.put(db, key: bytes(String(format: "k%05d", i)), value: bytes("v\(i)")) }
        }
        // Delete half so that compaction has free pages to drop.
        try env.write { txn throws in
            for i in stride(from: 0, to: 1000, by: 2) { try txn.delete(db, key: bytes(String(format: "k%05d", i))) }
        }
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let (readEnd, writeEnd) = (fds[0], fds[1])
        let copyDir = try TemporaryDirectory()
        let copyPath = copyDir.path + "/data.mdb"
        // The copy is written into the pipe on another thread while this one drains it.
        let writer = Thread {
            do { try env.copy(toFileDescriptor: writeEnd, compact: true) } catch {
                Issue.record("copy failed: \(error)")
            }
            close(writeEnd)
        }
        writer.start()
        let out = open(copyPath, O_WRONLY | O_CREAT, 0o640)
        #expect(out >= 0)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            #expect(n >= 0)
            if n <= 0 { break }
            let w = buffer.withUnsafeBytes { write(out, $0.baseAddress, n) }
            #expect(w == n)
        }
        close(out)
        close(readEnd)
        let copy = try Environment(path: copyDir.path)
        let copyDB = try copy.openDatabase("t")
        try copy.read { txn throws in
            #expect(try txn.statistics(copyDB).entries == 500)
            #expect(try txn.get(copyDB, key: bytes("k00001")) == bytes("v1"))
            #expect(try txn.get(copyDB, key: bytes("k00000")) == nil)
        }
    }

    /// A resize waits for the open reader, keeps waiting while that reader opens a nested
    /// read (which must not deadlock), and runs once the reader is done.
    @Test func resizeWaitsForReadersWithoutStarvingOrDeadlocking() throws {
        let dir = try TemporaryDirectory()
        let env = try Environment(path: dir.path, configuration: .init(mapSize: 1 << 20))
        let db = try env.openDatabase("t", flags: .create)
        try env.write { try $0.put(db, key: [1], value: [2]) }
        let readerIn = DispatchSemaphore(value: 0)
        let readerGo = DispatchSemaphore(value: 0)
        let readerDone = DispatchSemaphore(value: 0)
        let resized = DispatchSemaphore(value: 0)
        Thread {
            do {
                try env.read { txn in
                    readerIn.signal()
                    readerGo.wait()
                    let nested = try env.read { try $0.get(db, key: [1]) }
                    #expect(nested == [2])
                    #expect(try txn.get(db, key: [1]) == [2])
                }
            } catch { Issue.record("reader failed: \(error)") }
            readerDone.signal()
        }.start()
        readerIn.wait()
        Thread {
            do { try env.setMapSize(4 << 20) } catch { Issue.record("resize failed: \(error)") }
            resized.signal()
        }.start()
        // Wait (with a deadline) until the resize is pending behind the reader.
        let deadline = ContinuousClock.now + .seconds(10)
        while !env.gate.isResizePending && ContinuousClock.now < deadline { sched_yield() }
        #expect(env.gate.isResizePending)
        #expect(try env.info().mapSize == 1 << 20)
        readerGo.signal()
        readerDone.wait()
        resized.wait()
        #expect(!env.gate.isResizePending)
        #expect(try env.info().mapSize == 4 << 20)
    }

    @Test func resizingFromInsideATransactionCrashes() async throws {
        // The child process dies before any cleanup: it works in a directory named after
        // this (its parent) process, which is removed here afterwards.
        await #expect(processExitsWith: .failure) {
            let path = NSTemporaryDirectory() + "keeper-lmdb-exit-\(getppid())"
            precondition(mkdir(path, 0o700) == 0 || errno == EEXIST, "mkdir \(path) failed")
            let env = try Environment(path: path)
            try env.read { _ in try env.setMapSize(2 << 30) }
        }
        let path = NSTemporaryDirectory() + "keeper-lmdb-exit-\(getpid())"
        #expect(FileManager.default.fileExists(atPath: path))
        try FileManager.default.removeItem(atPath: path)
    }

    @Test func syncAndInfoWork() throws {
        let dir = try TemporaryDirectory()
        let env = try Environment(path: dir.path, configuration: .init(flags: [.noThreadLocalStorage, .noSync]))
        let db = try env.openDatabase("t", flags: .create)
        try env.write { try $0.put(db, key: [1], value: [2]) }
        try env.sync(force: true)
        let info = try env.info()
        #expect(info.pageSize > 0)
        #expect(info.usedBytes > 0)
        #expect(info.lastTransactionID >= 2)
    }
}
