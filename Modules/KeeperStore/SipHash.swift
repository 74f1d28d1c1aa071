/// SipHash-2-4 (Aumasson and Bernstein, 2012) with a fixed key: a strong 64-bit hash for the
/// tree digest and for ACL deduplication. The key is part of the on-disk format: changing it
/// changes every digest and ACL id.
struct SipHash24 {
    /// The fixed key: "SwiftKeeperDigst" read as two little-endian words.
    static let key0: UInt64 = 0x6565_4b74_6669_7753
    static let key1: UInt64 = 0x7473_6769_4472_6570

    private var v0: UInt64
    private var v1: UInt64
    private var v2: UInt64
    private var v3: UInt64
    private var tail: UInt64 = 0
    private var tailCount = 0
    private var length = 0

    init(key0: UInt64 = SipHash24.key0, key1: UInt64 = SipHash24.key1) {
        v0 = 0x736f_6d65_7073_6575 ^ key0
        v1 = 0x646f_7261_6e64_6f6d ^ key1
        v2 = 0x6c79_6765_6e65_7261 ^ key0
        v3 = 0x7465_6462_7974_6573 ^ key1
    }

    /// One SipRound on state passed in: the loops below keep the state in locals (registers)
    /// instead of loading and storing the struct's fields around every word, which cost a
    /// sixth of the hash at 1 KiB (the compiler could not keep `self`'s fields in registers
    /// across the loop).
    @inline(__always)
    private static func round(_ v0: inout UInt64, _ v1: inout UInt64, _ v2: inout UInt64, _ v3: inout UInt64) {
        v0 = v0 &+ v1
        v1 = (v1 << 13) | (v1 >> 51)
        v1 ^= v0
        v0 = (v0 << 32) | (v0 >> 32)
        v2 = v2 &+ v3
        v3 = (v3 << 16) | (v3 >> 48)
        v3 ^= v2
        v0 = v0 &+ v3
        v3 = (v3 << 21) | (v3 >> 43)
        v3 ^= v0
        v2 = v2 &+ v1
        v1 = (v1 << 17) | (v1 >> 47)
        v1 ^= v2
        v2 = (v2 << 32) | (v2 >> 32)
    }

    @inline(__always)
    private static func compress(_ m: UInt64, _ v0: inout UInt64, _ v1: inout UInt64, _ v2: inout UInt64, _ v3: inout UInt64) {
        v3 ^= m
        round(&v0, &v1, &v2, &v3)
        round(&v0, &v1, &v2, &v3)
        v0 ^= m
    }

    /// Feeds bytes; the message is the concatenation of everything fed. Whole 8-byte words
    /// are compressed straight from the input even when earlier updates left a partial word
    /// (the word is shifted into place), so a digest fed many small fields stays word-wise.
    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        length &+= n
        var i = 0
        var (a, b, c, d) = (v0, v1, v2, v3)
        if tailCount == 0 {
            while i + 8 <= n {
                Self.compress(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)), &a, &b, &c, &d)
                i += 8
            }
        } else {
            let shift = UInt64(8 * tailCount)
            var carried = tail
            while i + 8 <= n {
                let m = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                Self.compress(carried | (m << shift), &a, &b, &c, &d)
                carried = m >> (64 - shift)
                i += 8
            }
            tail = carried
        }
        while i < n {
            tail |= UInt64(bytes[i]) << (8 * UInt64(tailCount))
            tailCount += 1
            i += 1
            if tailCount == 8 {
                Self.compress(tail, &a, &b, &c, &d)
                tail = 0
                tailCount = 0
            }
        }
        (v0, v1, v2, v3) = (a, b, c, d)
    }

    mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// Feeds the value's 8 little-endian bytes.
    mutating func update(_ value: UInt64) {
        length &+= 8
        if tailCount == 0 {
            Self.compress(value, &v0, &v1, &v2, &v3)
        } else {
            let shift = UInt64(8 * tailCount)
            Self.compress(tail | (value << shift), &v0, &v1, &v2, &v3)
            tail = value >> (64 - shift)
        }
    }

    mutating func update(_ value: Int64) { update(UInt64(bitPattern: value)) }
    mutating func update(_ value: Int32) { update(UInt64(UInt32(bitPattern: value))) }

    mutating func finalize() -> UInt64 {
        let b = (UInt64(truncatingIfNeeded: length) << 56) | tail
        Self.compress(b, &v0, &v1, &v2, &v3)
        v2 ^= 0xff
        for _ in 0..<4 { Self.round(&v0, &v1, &v2, &v3) }
        return v0 ^ v1 ^ v2 ^ v3
    }

    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h = SipHash24()
        h.update(bytes)
        return h.finalize()
    }

    static func hash(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { hash($0) } }
}
