/// Limits and timings of the HTTP front. Every one is configurable (docs/configuration.md).
public struct HTTPLimits: Sendable {
    /// Largest Durable Streams request body; larger bodies get 413.
    public var maxBodyBytes: Int = 16 << 20
    /// About how many bytes one catch-up or long-poll response carries (at least one record).
    public var readChunkBytes: Int = 1 << 20
    /// How long a long-poll waits for data before answering 204.
    public var longPollTimeout: Duration = .seconds(30)
    /// SSE responses end after this long so CDNs can collapse reconnects (Durable Streams §7.6).
    public var sseMaxDuration: Duration = .seconds(60)
    /// Interval of SSE keep-alive comments on an idle stream.
    public var sseKeepAlive: Duration = .seconds(15)

    public init() {}
}
