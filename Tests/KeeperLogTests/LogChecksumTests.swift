import Testing

@testable import KeeperLog

/// The log's CRC-32 takes the carry-less multiplication fold where the CPU has it: its values
/// must be zlib's, bit for bit, or every existing log would read as corrupt.
@Suite("KeeperLog checksums")
struct LogChecksumTests {
    /// Pseudo-random bytes, the same on every run.
    static let bytes: [UInt8] = {
        var generator = SeededGenerator(seed: 0x5EED)
        return (0..<70_000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
    }()

    @Test("every length from 0 to 1,100 bytes, at every alignment of 0 to 16, with varied seeds, matches zlib")
    func matchesZlibAcrossLengthsAndAlignments() {
        var generator = SeededGenerator(seed: 42)
        var mismatches: [String] = []
        Self.bytes.withUnsafeBytes { all in
            for length in 0...1_100 {
                for offset in 0...16 {
                    let slice = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                    let seed = length % 3 == 0 ? 0 : UInt32(truncatingIfNeeded: generator.next())
                    let fast = LogFormat.crc(slice, seed: seed)
                    let reference = LogFormat.zlibCRC(slice, seed: seed)
                    if fast != reference && mismatches.count < 5 {
                        mismatches.append("length \(length) offset \(offset) seed \(seed): \(fast) != \(reference)")
                    }
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
    }

    @Test("large buffers, and a CRC continued over pieces, match zlib")
    func matchesZlibForLargeAndPiecewiseInput() {
        Self.bytes.withUnsafeBytes { all in
            for length in [4_096, 65_536, 69_999] {
                let whole = UnsafeRawBufferPointer(rebasing: all[1..<(1 + length)])
                #expect(LogFormat.crc(whole) == LogFormat.zlibCRC(whole), "length \(length)")
            }
            // A record's CRC continues the payload's: pieces of any size compose.
            var crc: UInt32 = 0
            var at = 0
            for piece in [63, 64, 65, 1_024, 17, 4_000, 128, 1] {
                crc = LogFormat.crc(UnsafeRawBufferPointer(rebasing: all[at..<(at + piece)]), seed: crc)
                at += piece
            }
            #expect(crc == LogFormat.zlibCRC(UnsafeRawBufferPointer(rebasing: all[0..<at])))
        }
        // The standard check value of CRC-32/ISO-HDLC.
        let check = Array("123456789".utf8)
        #expect(check.withUnsafeBytes { LogFormat.crc($0) } == 0xCBF4_3926)
    }

    #if arch(x86_64)
        @Test("on x86-64 with PCLMULQDQ the fold is the path taken")
        func foldIsUsedWhereSupported() {
            // Every x86-64 CPU since 2010 has it; this machine's tests would otherwise never
            // exercise the fold at all.
            #expect(LogFormat.foldSupported)
        }
    #endif
}
