/// What the admin API reports about the running server, supplied by the composition root.
public struct ServerFacts: Sendable {
    public var version: String
    public var startedAtMs: Int64
    /// The effective configuration, secrets already redacted.
    public var effectiveConfig: [String: String]
    /// Long-poll and SSE readers currently parked on the change signal.
    public var liveReaders: @Sendable () -> Int
    /// The address the HTTP listener is bound to (`host:port`) once it listens: with port 0 or socket activation
    /// the configured `listen` does not say (hubctl bench finds the hub's HTTP side here).
    public var httpListener: @Sendable () -> String?

    public init(version: String, startedAtMs: Int64, effectiveConfig: [String: String], liveReaders: @escaping @Sendable () -> Int,
                httpListener: @escaping @Sendable () -> String? = { nil }) {
        self.version = version; self.startedAtMs = startedAtMs; self.effectiveConfig = effectiveConfig; self.liveReaders = liveReaders
        self.httpListener = httpListener
    }
}
