/// What the admin API reports about the running server, supplied by the composition root.
public struct ServerFacts: Sendable {
    public var version: String
    public var startedAtMs: Int64
    /// The effective configuration, secrets already redacted.
    public var effectiveConfig: [String: String]
    /// Long-poll and SSE readers currently parked on the change signal.
    public var liveReaders: @Sendable () -> Int

    public init(version: String, startedAtMs: Int64, effectiveConfig: [String: String], liveReaders: @escaping @Sendable () -> Int) {
        self.version = version; self.startedAtMs = startedAtMs; self.effectiveConfig = effectiveConfig; self.liveReaders = liveReaders
    }
}
