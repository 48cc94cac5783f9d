import HubCore
import HubProtocol
import Foundation

/// The outcome of a benchmark run, as a table for people and JSON for scripts.
struct BenchReport: Sendable {
    var plan: BenchPlan
    var published = 0
    var failedPublishes = 0
    var publishLatency = LatencyHistogram()
    var publishSeconds = 0.0
    var delivered = 0
    var deliveryLatency = LatencyHistogram()
    var deliverySeconds = 0.0
    var duplicates = 0
    var subscriberErrors: [String] = []

    var expectedDeliveries: Int { plan.messages * plan.subscribers }
    var lost: Int { max(0, expectedDeliveries - delivered) }

    init(plan: BenchPlan, publishers: [BenchRun.PublisherResult], subscribers: [BenchRun.SubscriberResult],
         started: ContinuousClock.Instant, publishEnded: ContinuousClock.Instant) {
        self.plan = plan
        for p in publishers {
            published += p.sent
            failedPublishes += p.failed
            publishLatency.merge(p.histogram)
        }
        publishSeconds = (publishEnded - started).timeInterval
        var lastDelivery = started
        for s in subscribers {
            delivered += s.unique
            duplicates += s.duplicates
            deliveryLatency.merge(s.histogram)
            if let last = s.lastDelivery, last > lastDelivery { lastDelivery = last }
            if let error = s.error { subscriberErrors.append(error) }
        }
        deliverySeconds = (lastDelivery - started).timeInterval
    }

    private static func rate(_ count: Int, _ seconds: Double) -> Double { seconds > 0 ? Double(count) / seconds : 0 }

    /// The latency table, then what went wrong (if anything) and the setup, one line each.
    var rendered: String {
        func row(_ name: String, _ count: Int, _ seconds: Double, _ h: LatencyHistogram) -> [String] {
            [name, String(count), String(format: "%.0f/s", Self.rate(count, seconds)), Self.latency(h.value(at: 0.5)),
             Self.latency(h.value(at: 0.99)), Self.latency(h.value(at: 0.999)), Self.latency(h.max)]
        }
        var table = Table(headers: ["", "COUNT", "RATE", "P50", "P99", "P99.9", "MAX"])
        table.rows.append(row("publish", published, publishSeconds, publishLatency))
        if plan.subscribers > 0 { table.rows.append(row("delivery", delivered, deliverySeconds, deliveryLatency)) }
        return table.rendered + "\n\n"
            + "lost \(lost), duplicates \(duplicates), failed publishes \(failedPublishes)\n"
            + "\(plan.publishers) publisher(s), \(plan.subscribers) \(plan.transport.rawValue) subscriber(s), \(plan.messages) events of \(plan.size) B, "
            + "batch \(plan.batch), \(plan.rate > 0 ? "\(plan.rate) events/s" : "unpaced")"
    }

    /// Publish latency is per request; delivery latency is per event and subscriber, publisher clock to subscriber clock.
    var json: JSONValue {
        func latency(_ h: LatencyHistogram) -> JSONValue {
            .object(["p50": .int(Int64(h.value(at: 0.5))), "p99": .int(Int64(h.value(at: 0.99))),
                     "p99_9": .int(Int64(h.value(at: 0.999))), "max": .int(Int64(h.max))])
        }
        return .object([
            "publishers": .int(Int64(plan.publishers)), "subscribers": .int(Int64(plan.subscribers)), "transport": .string(plan.transport.rawValue),
            "messages": .int(Int64(plan.messages)), "size": .int(Int64(plan.size)), "batch": .int(Int64(plan.batch)), "rate": .int(Int64(plan.rate)),
            "publish": .object(["count": .int(Int64(published)), "failed": .int(Int64(failedPublishes)), "seconds": .double(publishSeconds),
                                "per_second": .double(Self.rate(published, publishSeconds)), "latency_us": latency(publishLatency)]),
            "delivery": .object(["count": .int(Int64(delivered)), "expected": .int(Int64(expectedDeliveries)), "seconds": .double(deliverySeconds),
                                 "per_second": .double(Self.rate(delivered, deliverySeconds)), "latency_us": latency(deliveryLatency)]),
            "lost": .int(Int64(lost)), "duplicates": .int(Int64(duplicates)),
            "errors": .array(subscriberErrors.map(JSONValue.string)),
        ])
    }

    static func latency(_ micros: UInt64) -> String {
        if micros < 1000 { return "\(micros)µs" }
        if micros < 1_000_000 { return String(format: "%.1fms", Double(micros) / 1000) }
        return String(format: "%.2fs", Double(micros) / 1_000_000)
    }
}
