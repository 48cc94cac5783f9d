import Foundation
import HubAuth
import HubCore
import NIOCore
import Prometheus
import Synchronization

/// The server's Prometheus metrics (`GET /metrics`, docs/operations/metrics.md). One registry per hub, so several
/// hubs in one process (tests) never share counters. Label values are bounded: transports, reasons, status classes.
public final class HubMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let appendedMessages: Counter
    let appendedBytes: Counter
    let sseConnections: Gauge
    let longPollWaiting: Gauge
    let httpConnections: Gauge
    let webSocketConnections: Gauge
    let slowConsumerCloses: Counter
    let redeliveries: Counter
    let retentionRemoved: Counter
    let hotPathResponses: Counter
    let hotLaneRequests: Counter
    /// Open connections by transport, readable by the admin API (gauges cannot be read back).
    let openHTTP = Atomic<Int>(0), openSSE = Atomic<Int>(0), openLongPoll = Atomic<Int>(0), openWebSocket = Atomic<Int>(0)
    /// Subscribers (WebSocket, Durable Streams SSE) parked at the tail on the push path (no change-signal waiter each).
    let parked = Atomic<Int>(0)
    /// Messages appended and delivered by this process since it started (the console's rates).
    let appendedTotal = Atomic<Int>(0), deliveredTotal = Atomic<Int>(0)
    /// Push dispatchers waiting on the change signal (one per stream or slot with parked subscribers).
    let dispatchersWaiting = Atomic<Int>(0)
    /// Subscribers waiting for data on the push path, less the dispatchers' own waits, to add to the change signal's
    /// waiter count: readers, not the machinery that serves them.
    public var parkedAtTail: Int { parked.load(ordering: .relaxed) - dispatchersWaiting.load(ordering: .relaxed) }
    let deliveryLatency: DurationHistogram
    let responses: [Counter]

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "hub", metricName: metric, unitName: unit, helpText: help)
    }
    static var connections: MetricNameDescriptor { name("connections", "", "Open live responses by transport.") }

    public init(version: String) {
        appendedMessages = registry.makeCounter(descriptor: Self.name("appended_messages", "total", "Messages appended (committed)."))
        appendedBytes = registry.makeCounter(descriptor: Self.name("appended_bytes", "total", "Bytes of message bodies appended (committed)."))
        sseConnections = registry.makeGauge(descriptor: Self.connections, labels: [("transport", "sse")])
        longPollWaiting = registry.makeGauge(descriptor: Self.connections, labels: [("transport", "long-poll")])
        httpConnections = registry.makeGauge(descriptor: Self.connections, labels: [("transport", "http")])
        webSocketConnections = registry.makeGauge(descriptor: Self.connections, labels: [("transport", "websocket")])
        slowConsumerCloses = registry.makeCounter(descriptor: Self.name("slow_consumer_closes", "total",
                                                                        "WebSocket connections closed with 4008 because the client stopped reading."))
        redeliveries = registry.makeCounter(descriptor: Self.name("consumer_redeliveries", "total",
                                                                  "Times a durable consumer's unacknowledged frames were sent again after ack_wait."))
        retentionRemoved = registry.makeCounter(descriptor: Self.name("retention_removed_records", "total", "Records removed by slot retention sweeps."))
        hotPathResponses = registry.makeCounter(descriptor: Self.name("hot_path_responses", "total",
                                                                      "Responses written by the hot path (from the event loop, without the router)."))
        hotLaneRequests = registry.makeCounter(descriptor: Self.name("hot_lane_requests", "total",
                                                                     "Requests the hot path read off the connection itself, without the HTTP decoder."))
        deliveryLatency = registry.makeDurationHistogram(
            descriptor: Self.name("delivery_latency", "seconds", "From a message's commit to its write to a live reader (SSE and long-poll)."),
            buckets: [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                      .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5)])
        let registry = self.registry
        responses = (1...5).map { registry.makeCounter(descriptor: Self.name("http_responses", "total", "HTTP responses by status class."), labels: [("code", "\($0)xx")]) }
        registry.makeGauge(descriptor: Self.name("build_info", "", "Always 1; the version label says which build."), labels: [("version", version)]).set(Int64(1))
        for reason in ["missing", "invalid", "scope", "rate-limited"] {
            _ = authFailure(reason)
        }
    }

    /// A client connection was accepted (any listener) / closed.
    public func connectionOpened() { httpConnections.increment(); openHTTP.add(1, ordering: .relaxed) }
    public func connectionClosed() { httpConnections.decrement(); openHTTP.subtract(1, ordering: .relaxed) }

    func sseStarted() { sseConnections.increment(); openSSE.add(1, ordering: .relaxed) }
    func sseEnded() { sseConnections.decrement(); openSSE.subtract(1, ordering: .relaxed) }
    func longPollWaitStarted() { longPollWaiting.increment(); openLongPoll.add(1, ordering: .relaxed) }
    func longPollWaitEnded() { longPollWaiting.decrement(); openLongPoll.subtract(1, ordering: .relaxed) }

    /// Messages appended and delivered (per subscriber) since this process started.
    public var totals: (appended: Int, delivered: Int) {
        (appendedTotal.load(ordering: .relaxed), deliveredTotal.load(ordering: .relaxed))
    }

    /// Open connections now: all client connections, and the live responses among them by transport.
    public var openConnections: (http: Int, sse: Int, longPoll: Int, webSocket: Int) {
        (openHTTP.load(ordering: .relaxed), openSSE.load(ordering: .relaxed), openLongPoll.load(ordering: .relaxed), openWebSocket.load(ordering: .relaxed))
    }

    func authFailure(_ reason: String) -> Counter {
        registry.makeCounter(descriptor: Self.name("auth_failures", "total", "Requests refused by auth, by reason."), labels: [("reason", reason)])
    }

    func recordAuthFailure(_ error: AuthError) {
        let reason: String
        switch error {
        case .missingCredentials: reason = "missing"
        case .malformedToken, .invalidToken, .tokenInQuery, .invalidTicket: reason = "invalid"
        case .insufficientScope, .outOfReach: reason = "scope"
        case .rateLimited: reason = "rate-limited"
        }
        authFailure(reason).increment()
    }

    func hotLaneRequest() { hotLaneRequests.increment() }

    func recordResponse(status: Int, hotPath: Bool = false) {
        responses[min(max(status / 100, 1), 5) - 1].increment()
        if hotPath { hotPathResponses.increment() }
    }

    func recordAppend(_ messages: [NewMessage]) {
        appendedMessages.increment(by: Int64(messages.count))
        appendedTotal.add(messages.count, ordering: .relaxed)
        appendedBytes.increment(by: Int64(messages.reduce(0) { $0 + $1.body.readableBytes }))
    }

    /// Delivery latency of a batch: from the newest record's commit time to now.
    func webSocketOpened() { webSocketConnections.increment(); openWebSocket.add(1, ordering: .relaxed) }
    func webSocketClosed() { webSocketConnections.decrement(); openWebSocket.subtract(1, ordering: .relaxed) }
    func slowConsumerClosed() { slowConsumerCloses.increment() }
    func consumerRedelivery() { redeliveries.increment() }
    public func retentionSwept(removed: Int) { if removed > 0 { retentionRemoved.increment(by: Int64(removed)) } }

    func recordDelivery(_ records: [StoredRecord]) {
        guard let newest = records.last else { return }
        deliveredTotal.add(records.count, ordering: .relaxed)
        let ms = max(0, Int64(Date().timeIntervalSince1970 * 1000) - newest.timestampMilliseconds)
        deliveryLatency.record(.milliseconds(ms))
    }

    /// The text exposition, with per-slot sizes computed now (so deleted slots disappear from the output).
    func exposition(slots: [SlotInfo], consumers: [ConsumerState]) -> [UInt8] {
        var out: [UInt8] = []
        registry.emit(into: &out)
        var text = "# HELP hub_slot_bytes Bytes of message bodies stored per slot.\n# TYPE hub_slot_bytes gauge\n"
        for slot in slots { text += "hub_slot_bytes{slot=\"\(slot.name.rawValue)\"} \(slot.bytes)\n" }
        text += "# HELP hub_slot_records Messages stored per slot.\n# TYPE hub_slot_records gauge\n"
        for slot in slots { text += "hub_slot_records{slot=\"\(slot.name.rawValue)\"} \(slot.records)\n" }
        text += "# HELP hub_slot_head_seq Last assigned sequence number per slot.\n# TYPE hub_slot_head_seq gauge\n"
        for slot in slots { text += "hub_slot_head_seq{slot=\"\(slot.name.rawValue)\"} \(slot.headSeq)\n" }
        text += "# HELP hub_consumer_lag Records of the slot after a durable consumer's last acknowledgement.\n# TYPE hub_consumer_lag gauge\n"
        for c in consumers { text += "hub_consumer_lag{slot=\"\(c.slot.rawValue)\",consumer=\"\(c.name)\"} \(c.lag)\n" }
        out += Array(text.utf8)
        return out
    }
}
