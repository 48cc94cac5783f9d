import HubCore
import HubProtocol

/// The JSON documents of the subscription APIs (§11): field names and shapes are the protocol's.
enum SubscriptionDocuments {
    static let contentType = "application/json"

    /// GET and PUT answers.
    static func subscription(_ s: Subscription) -> String {
        var pairs: [(String, String)] = [
            ("id", JSONText.quote(s.key.id)),
            ("subscription_id", JSONText.quote(s.key.id)),
            ("type", JSONText.quote(s.config.kind.rawValue)),
        ]
        if let pattern = s.config.pattern { pairs.append(("pattern", JSONText.quote(pattern))) }
        pairs.append(("streams", "[" + s.links.map { link in
            JSONText.object([("path", JSONText.quote(link.path)), ("link_type", JSONText.quote(link.explicit ? "explicit" : "glob")),
                             ("acked_offset", JSONText.quote(wire(link.acked)))])
        }.joined(separator: ",") + "]"))
        if let url = s.config.webhookURL { pairs.append(("webhook", JSONText.object([("url", JSONText.quote(url))]))) }
        if let wake = s.config.wakeStream { pairs.append(("wake_stream", JSONText.quote(wake))) }
        pairs += [
            ("lease_ttl_ms", String(s.config.leaseTTLMs)),
            ("created_at", JSONText.quote(RFC3339.format(millisecondsSince1970: s.createdAtMs))),
            ("status", JSONText.quote(s.status)),
            ("generation", String(s.generation)),
        ]
        if let description = s.config.description { pairs.append(("description", JSONText.quote(description))) }
        if let error = s.lastError { pairs.append(("last_error", JSONText.quote(error))) }
        if s.config.kind == .webhook { pairs.append(("jwks_url", JSONText.quote(s.callbackBase + controlRoot(s.key) + "jwks.json"))) }
        return JSONText.object(pairs)
    }

    /// A webhook delivery's body.
    static func wake(_ s: Subscription, generation: UInt64, wakeID: String, streams: [SubscriptionStreamState], token: String) -> String {
        JSONText.object([
            ("subscription_id", JSONText.quote(s.key.id)),
            ("wake_id", JSONText.quote(wakeID)),
            ("generation", String(generation)),
            ("streams", states(streams)),
            ("callback_url", JSONText.quote(s.callbackBase + controlRoot(s.key) + "subscriptions/\(s.key.id)/callback")),
            ("callback_token", JSONText.quote(token)),
        ])
    }

    /// A claim's answer.
    static func claim(_ s: Subscription, token: String, streams: [SubscriptionStreamState]) -> String {
        JSONText.object([
            ("wake_id", JSONText.quote(s.wakeID ?? "")),
            ("generation", String(s.generation)),
            ("token", JSONText.quote(token)),
            ("streams", states(streams)),
            ("lease_ttl_ms", String(s.config.leaseTTLMs)),
        ])
    }

    static func progress(nextWake: Bool) -> String {
        JSONText.object([("ok", "true"), ("next_wake", nextWake ? "true" : "false")])
    }

    private static func states(_ streams: [SubscriptionStreamState]) -> String {
        "[" + streams.map { state in
            JSONText.object([
                ("path", JSONText.quote(state.path)),
                ("link_type", JSONText.quote(state.explicit ? "explicit" : "glob")),
                ("acked_offset", JSONText.quote(wire(state.acked))),
                ("tail_offset", JSONText.quote(state.tail.wire)),
                ("has_pending", state.hasPending ? "true" : "false"),
            ])
        }.joined(separator: ",") + "]"
    }

    /// `-1` for nothing acknowledged yet, as the protocol writes it.
    static func wire(_ offset: Offset?) -> String { offset?.wire ?? "-1" }

    /// `/v1/stream/{namespace/}__ds/`.
    static func controlRoot(_ key: SubscriptionKey) -> String {
        StreamsController.prefix + (key.namespace.isEmpty ? "" : key.namespace + "/") + StreamsController.reservedSegment + "/"
    }
}
