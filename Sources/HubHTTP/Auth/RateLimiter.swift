import Foundation
import Synchronization

/// Token buckets by key (a token id or a client address): `rate` requests per second with bursts up to `burst`.
/// Memory is bounded: past `maxKeys` buckets, the table starts over (every key gets a full bucket again).
public final class RateLimiter: Sendable {
    public let rate: Double
    public let burst: Double
    static let maxKeys = 100_000

    private struct Bucket { var tokens: Double; var atNs: UInt64 }
    private let buckets = Mutex([String: Bucket]())

    /// `rate` 0 turns the limiter off.
    public init(rate: Double, burst: Double? = nil) {
        self.rate = rate
        self.burst = burst ?? max(1, rate * 2)
    }

    public var isEnabled: Bool { rate > 0 }

    /// Takes one token for `key`; nil when allowed, else the whole seconds to wait before retrying.
    public func take(_ key: String, nowNs: UInt64 = DispatchTime.now().uptimeNanoseconds) -> Int? {
        guard rate > 0 else { return nil }
        return buckets.withLock { buckets -> Int? in
            if buckets.count >= Self.maxKeys, buckets[key] == nil { buckets = [:] }
            var bucket = buckets[key] ?? Bucket(tokens: burst, atNs: nowNs)
            let elapsed = Double(nowNs &- bucket.atNs) / 1e9
            bucket.tokens = min(burst, bucket.tokens + elapsed * rate)
            bucket.atNs = nowNs
            defer { buckets[key] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return max(1, Int(((1 - bucket.tokens) / rate).rounded(.up)))
        }
    }
}
