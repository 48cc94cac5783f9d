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
    /// What the events surface's SSE tells `EventSource` to wait before reconnecting (`retry:`).
    public var sseRetry: Duration = .seconds(3)
    /// Largest single event or WebSocket-delivered message a slot accepts, unless the slot sets its own limit.
    public var maxMessageBytes: Int = 1 << 20
    /// How long an `event_id`/`Idempotency-Key` deduplicates a repeated event.
    public var dedupWindow: Duration = .seconds(600)
    /// `POST /v1/slot/allocate` is open (self-service slots); off unless configured.
    public var selfServiceSlots = false
    /// Self-service allocations per hour per client address.
    public var selfServicePerHour: Double = 10
    /// WebSocket: interval of server pings; a client that has not answered by the next ping is closed.
    public var webSocketPing: Duration = .seconds(25)
    /// WebSocket: a send that has not completed within this time closes the connection with 4008 (slow consumer).
    public var webSocketSendTimeout: Duration = .seconds(30)
    /// WebSocket: how long a closing connection has to take the close frame and answer it before it is dropped (the
    /// close handshake; also a slow consumer's 4008). Not a configuration option; tests on a loaded machine raise it.
    public var webSocketCloseGrace: Duration = .seconds(10)
    /// Live push: readers written per event-loop job when a batch fans out; the loop reads (and commits) between
    /// jobs (`TailPush`). Not a configuration option; tests lower it to cross slices with few readers.
    public var pushSlice: Int = 256
    /// WebSocket: largest inbound frame or message; larger ones close the connection with 1009.
    public var webSocketMaxInbound: Int = 64 << 10
    /// Durable consumers: redeliver unacknowledged frames after this long, unless the client asks for another value.
    public var consumerAckWait: Duration = .seconds(30)
    /// Durable consumers: most frames in flight (sent, not acknowledged), unless the client asks for fewer.
    public var consumerMaxInFlight: Int = 1000

    public init() {}
}
