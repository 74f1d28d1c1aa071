/// A log-linear histogram of latencies in nanoseconds (the HdrHistogram layout with 2^7 linear
/// sub-buckets per power of two): recording is a few integer operations and no allocation, so a
/// session can record every reply on its event loop; any value from 1 ns to 2^63 ns fits; every
/// reported percentile is within 1/128 (0.8 %) of the true value. Sessions keep their own
/// histograms and the run merges them at the end, so no lock is ever taken while measuring.
struct LatencyHistogram: Sendable {
    /// log2 of the linear sub-buckets per power of two: 7 bits = 128 sub-buckets, 0.8 % precision.
    static let subBucketBits = 7
    static let subBucketCount = 1 << subBucketBits
    /// Buckets for every UInt64 value: exact below 256, then 128 per power of two up to 2^63.
    static let bucketCount = (64 - subBucketBits + 1) * subBucketCount

    private(set) var counts: [UInt64]
    private(set) var totalCount: UInt64 = 0
    private(set) var minValue: UInt64 = .max
    private(set) var maxValue: UInt64 = 0
    private(set) var sum: UInt64 = 0

    init() {
        counts = [UInt64](repeating: 0, count: Self.bucketCount)
    }

    /// The bucket of `value`: values below 2^(bits+1) map to themselves; above, the exponent
    /// picks a group and the `subBucketBits` bits after the leading one pick the sub-bucket.
    static func bucketIndex(of value: UInt64) -> Int {
        if value < UInt64(2 * subBucketCount) { return Int(value) }
        let exponent = 63 - value.leadingZeroBitCount  // >= subBucketBits + 1
        let shift = exponent - subBucketBits
        let mantissa = Int(value >> UInt64(shift))  // in [subBucketCount, 2 * subBucketCount)
        return (shift + 1) * subBucketCount + (mantissa - subBucketCount)
    }

    /// The largest value that lands in bucket `index` (HdrHistogram's "highest equivalent value").
    static func highestValue(inBucket index: Int) -> UInt64 {
        precondition(index >= 0 && index < bucketCount, "bucket \(index) out of range")
        if index < 2 * subBucketCount { return UInt64(index) }
        let shift = index / subBucketCount - 1
        let mantissa = UInt64(index % subBucketCount + subBucketCount)
        let lowest = mantissa << UInt64(shift)
        return lowest + ((1 << UInt64(shift)) - 1)
    }

    mutating func record(_ nanoseconds: UInt64) {
        counts[Self.bucketIndex(of: nanoseconds)] &+= 1
        totalCount &+= 1
        sum &+= nanoseconds
        if nanoseconds < minValue { minValue = nanoseconds }
        if nanoseconds > maxValue { maxValue = nanoseconds }
    }

    mutating func merge(_ other: LatencyHistogram) {
        guard other.totalCount > 0 else { return }
        for index in 0..<Self.bucketCount where other.counts[index] != 0 {
            counts[index] &+= other.counts[index]
        }
        totalCount &+= other.totalCount
        sum &+= other.sum
        minValue = Swift.min(minValue, other.minValue)
        maxValue = Swift.max(maxValue, other.maxValue)
    }

    /// The value at `percentile` (0...100): the smallest bucket whose cumulative count reaches
    /// ceil(percentile% of all values), reported as that bucket's highest value but never above
    /// the largest value recorded. Nil when nothing was recorded.
    func value(atPercentile percentile: Double) -> UInt64? {
        precondition(percentile >= 0 && percentile <= 100, "a percentile is within 0...100")
        guard totalCount > 0 else { return nil }
        let wanted = Swift.max(1, UInt64((percentile / 100 * Double(totalCount)).rounded(.up)))
        var seen: UInt64 = 0
        for index in 0..<Self.bucketCount {
            seen &+= counts[index]
            if seen >= wanted { return Swift.min(Self.highestValue(inBucket: index), maxValue) }
        }
        return maxValue
    }

    /// The arithmetic mean in nanoseconds; nil when nothing was recorded.
    var mean: Double? { totalCount == 0 ? nil : Double(sum) / Double(totalCount) }
}
