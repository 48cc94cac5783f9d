/// A `Duration` in the units headers, configuration, metrics and system calls want (truncated toward zero).
extension Duration {
    /// Saturates beyond ~285 years (far enough, and no overflow).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        guard abs(seconds) < 9_000_000_000 else { return seconds < 0 ? -(1 << 62) : 1 << 62 }
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
    public var microseconds: Int64 { components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000 }
    public var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
    /// Seconds as a floating-point number, as Foundation's `TimeInterval` and reports want them.
    public var timeInterval: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
