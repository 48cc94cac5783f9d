/// Reconnect delays: exponential with full jitter (a uniformly random delay between zero and the capped
/// exponential), so many clients that lost the same hub do not come back in lock-step.
struct Backoff: Sendable {
    var base: Duration = .milliseconds(250)
    var cap: Duration = .seconds(30)
    private(set) var attempt = 0

    init(base: Duration = .milliseconds(250), cap: Duration = .seconds(30)) {
        self.base = base
        self.cap = cap
    }

    /// The ceiling for the current attempt: `min(cap, base * 2^attempt)`.
    var ceiling: Duration {
        let exponent = min(attempt, 30)
        let grown = base * (1 << exponent)
        return grown > cap ? cap : grown
    }

    /// The next delay, drawn with `fraction` (uniform in 0..<1), and counts the attempt.
    mutating func next(fraction: Double = Double.random(in: 0..<1)) -> Duration {
        let delay = ceiling * fraction
        attempt += 1
        return delay
    }

    /// After a connection that delivered data: start over from the base.
    mutating func reset() { attempt = 0 }
}
