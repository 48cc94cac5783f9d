import Foundation
import Synchronization

/// Token buckets by key (a token id or a client address): `rate` requests per second with bursts up to `burst`.
/// Memory is bounded: past `maxKeys` buckets, the table starts over (every key gets a full bucket again).
public final class RateLimiter: Sendable {
    static let maxKeys = 100_000

    private struct Bucket { var tokens: Double; var atNs: UInt64 }
    private struct State { var rate: Double; var burst: Double; var buckets: [String: Bucket] = [:] }
    private let state: Mutex<State>

    /// `rate` 0 turns the limiter off; bursts default to twice the rate.
    public init(rate: Double, burst: Double? = nil) {
        state = Mutex(State(rate: rate, burst: burst ?? max(1, rate * 2)))
    }

    public var rate: Double { state.withLock { $0.rate } }

    /// Changes the rate (configuration reload); existing buckets keep their level, capped at the new burst.
    public func update(rate: Double) {
        state.withLock { $0.rate = rate; $0.burst = max(1, rate * 2) }
    }

    /// Takes one token for `key`; nil when allowed, else the whole seconds to wait before retrying.
    public func take(_ key: String, nowNs: UInt64 = DispatchTime.now().uptimeNanoseconds) -> Int? {
        state.withLock { state -> Int? in
            guard state.rate > 0 else { return nil }
            if state.buckets.count >= Self.maxKeys, state.buckets[key] == nil { state.buckets = [:] }
            var bucket = state.buckets[key] ?? Bucket(tokens: state.burst, atNs: nowNs)
            let elapsed = Double(nowNs &- bucket.atNs) / 1e9
            bucket.tokens = min(state.burst, bucket.tokens + elapsed * state.rate)
            bucket.atNs = nowNs
            let allowed = bucket.tokens >= 1
            if allowed { bucket.tokens -= 1 }
            state.buckets[key] = bucket
            return allowed ? nil : max(1, Int(((1 - bucket.tokens) / state.rate).rounded(.up)))
        }
    }
}
