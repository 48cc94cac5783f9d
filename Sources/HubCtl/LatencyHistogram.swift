/// Latencies in microseconds, in log-linear buckets: exact below 256 µs, then 128 buckets per power of two
/// (under 0.8% error), up to about 2^40 µs. 35 KiB each, so every subscriber of a benchmark keeps its own and
/// they are merged at the end, with no shared counter on the delivery path.
struct LatencyHistogram: Sendable {
    private static let exact = 256
    private static let perPower = 128
    private static let bucketCount = exact + 33 * perPower

    private(set) var counts: [UInt64]
    private(set) var total: UInt64 = 0
    private(set) var max: UInt64 = 0

    init() { counts = [UInt64](repeating: 0, count: Self.bucketCount) }

    static func bucket(of micros: UInt64) -> Int {
        if micros < UInt64(exact) { return Int(micros) }
        let power = 63 - micros.leadingZeroBitCount  // >= 8
        let shift = power - 7                         // keeps the top 8 bits: 128...255
        let sub = Int(micros >> UInt64(shift)) - perPower
        return Swift.min(exact + (power - 8) * perPower + sub, bucketCount - 1)
    }

    /// The largest value that falls into `bucket`.
    static func upperBound(of bucket: Int) -> UInt64 {
        if bucket < exact { return UInt64(bucket) }
        let power = (bucket - exact) / perPower + 8
        let sub = UInt64((bucket - exact) % perPower + perPower)
        let shift = UInt64(power - 7)
        return ((sub + 1) << shift) - 1
    }

    mutating func record(micros: UInt64) {
        counts[Self.bucket(of: micros)] += 1
        total += 1
        if micros > max { max = micros }
    }

    mutating func merge(_ other: LatencyHistogram) {
        for i in counts.indices { counts[i] += other.counts[i] }
        total += other.total
        max = Swift.max(max, other.max)
    }

    /// The value at `quantile` (0...1): the upper bound of the bucket holding it, never above the maximum seen.
    func value(at quantile: Double) -> UInt64 {
        guard total > 0 else { return 0 }
        let rank = Swift.max(1, UInt64((quantile * Double(total)).rounded(.up)))
        var seen: UInt64 = 0
        for (bucket, count) in counts.enumerated() where count > 0 {
            seen += count
            if seen >= rank { return Swift.min(Self.upperBound(of: bucket), max) }
        }
        return max
    }
}
