/// The subscription rules (§11), applied inside one store transaction: the store loads the record and the tails of
/// the streams it links, the service calls one of these, and the store writes back what changed (and appends the wake
/// events it asks for) before it commits. Every operation validates before it changes anything, so a refusal leaves
/// the record as it was. Both stores run exactly this code.
public struct SubscriptionChange: Sendable {
    public var subscription: Subscription?
    /// Tails of the linked streams (and of any stream the caller asked about), by absolute path; absent streams are missing.
    public let heads: [StreamPath: StreamTail]
    public let nowMs: Int64
    /// Events the store appends to pull-wake `wake_stream`s in the same transaction.
    public private(set) var wakeEvents: [PullWakeEvent] = []

    /// Also brings the links up to date with the streams as they are now (`reconcileLinks`).
    public init(subscription: Subscription?, heads: [StreamPath: StreamTail], nowMs: Int64) {
        self.subscription = subscription; self.heads = heads; self.nowMs = nowMs
        reconcileLinks()
    }

    /// A linked stream that is gone: a pattern match is unlinked, an explicit stream starts over (`-1`, for whatever
    /// is created at its path). A stream that was deleted and created again (another id) starts over too.
    private mutating func reconcileLinks() {
        guard var s = subscription else { return }
        var changed = false
        s.links = s.links.compactMap { link in
            var link = link
            let tail = s.key.absolute(link.path).flatMap { heads[$0] }
            switch (tail, link.streamID) {
            case (nil, nil): return link
            case (nil, _?):
                changed = true
                if !link.explicit { return nil }
                link.acked = nil; link.streamID = nil; link.glob = false
            case (let tail?, nil):
                changed = true
                link.streamID = tail.id
            case (let tail?, let id?) where tail.id != id:
                changed = true
                link.acked = nil; link.streamID = tail.id
            default: return link
            }
            return link
        }
        if changed { subscription = s }
    }
}

/// A wake written to a pull-wake subscription's `wake_stream` (a JSON stream workers follow).
public struct PullWakeEvent: Sendable, Equatable {
    public let stream: StreamPath
    /// `{"type":"wake","subscription_id":…,"stream":…,"generation":…,"ts":…}`. Ids and paths are restricted to
    /// characters that need no JSON escaping (`SubscriptionKey.isValidID`, `StreamPath`).
    public let json: String
}

/// A callback, ack or release: which wake it speaks for, and what it acknowledges.
public struct SubscriptionProgress: Sendable {
    /// `offset` is parsed from the wire by the HTTP layer (a malformed one is refused there as INVALID_OFFSET).
    public struct Ack: Sendable { public let path: String; public let offset: Offset
        public init(path: String, offset: Offset) { self.path = path; self.offset = offset } }
    public var wakeID: String?
    public var generation: UInt64?
    public var acks: [Ack]
    public var done: Bool
    public init(wakeID: String?, generation: UInt64?, acks: [Ack], done: Bool) {
        self.wakeID = wakeID; self.generation = generation; self.acks = acks; self.done = done
    }
}

/// The outcome of a webhook delivery attempt.
public enum WebhookDeliveryResult: Sendable, Equatable {
    /// 2xx with `{"done":true}`: the wake's snapshot is acknowledged.
    case done
    /// Any other 2xx: the consumer is working; its lease starts now.
    case accepted
    case failed(String)
}

extension SubscriptionChange {
    /// Longest a node may take over one delivery before another node may try again.
    public static let deliveryInFlightMs: Int64 = 30_000

    private func tail(_ relative: String) -> Offset {
        subscription?.key.absolute(relative).flatMap { heads[$0]?.head } ?? .start
    }

    private func require() throws(SubscriptionError) -> Subscription {
        guard let subscription else { throw .notFound }
        return subscription
    }

    // MARK: Registration

    /// PUT: creates the subscription (true), or confirms an identical one (false). `matching` are the existing
    /// streams the pattern matches; they and the explicit streams start acknowledged at their current tails.
    public mutating func create(_ key: SubscriptionKey, _ config: SubscriptionConfig, callbackBase: String,
                                matching: [StreamPath]) throws(SubscriptionError) -> Bool {
        if let existing = subscription {
            guard existing.config == config else { throw .alreadyExists }
            return false
        }
        subscription = Subscription(key: key, config: config, createdAtMs: nowMs, callbackBase: callbackBase)
        for path in config.streams { link(path, explicit: true, acked: tail(path)) }
        for path in matching { if let relative = key.relative(path) { link(relative, explicit: false, acked: heads[path]?.head ?? .start) } }
        return true
    }

    public mutating func delete() { subscription = nil }

    /// POST …/streams: links explicit streams, acknowledged at their current tails (idempotent).
    public mutating func addStreams(_ paths: [String]) throws(SubscriptionError) {
        let existing = try require()
        let added = Set(paths).subtracting(existing.links.map(\.path)).count
        guard existing.links.count + added <= SubscriptionConfig.maxStreams else {
            throw .invalidRequest("A subscription follows at most \(SubscriptionConfig.maxStreams) streams.")
        }
        for path in paths { link(path, explicit: true, acked: tail(path)) }
    }

    /// DELETE …/streams/{path}: unlinks an explicit stream (a pattern match stays linked). Idempotent.
    public mutating func removeStream(_ path: String) throws(SubscriptionError) {
        guard var s = subscription else { throw .notFound }
        guard let index = s.links.firstIndex(where: { $0.path == path }) else { return }
        s.links[index].explicit = false
        if !s.links[index].glob {
            s.links.remove(at: index)
            s.snapshot[path] = nil
        }
        subscription = s
    }

    private mutating func link(_ path: String, explicit: Bool, acked: Offset?) {
        guard var s = subscription else { return }
        if let index = s.links.firstIndex(where: { $0.path == path }) {
            if explicit { s.links[index].explicit = true } else { s.links[index].glob = true }
        } else {
            let position = s.links.firstIndex { $0.path > path } ?? s.links.endIndex
            let id = s.key.absolute(path).flatMap { heads[$0]?.id }
            s.links.insert(SubscriptionLink(path: path, glob: !explicit, explicit: explicit, acked: acked, streamID: id), at: position)
        }
        subscription = s
    }

    // MARK: Waking

    /// A linked or pattern-matching stream changed: links a new match (from its very first record, `-1`), then begins
    /// a wake if the subscription is idle and has unacknowledged data. True when a wake began.
    @discardableResult
    public mutating func streamChanged(_ relative: String) -> Bool {
        guard let s = subscription else { return false }
        if s.link(relative) == nil {
            guard let pattern = s.config.pattern, SubscriptionGlob.matches(pattern, relative),
                  s.links.count < SubscriptionConfig.maxStreams else { return false }
            link(relative, explicit: false, acked: nil)
        }
        return wakeIfPending(trigger: relative)
    }

    /// Begins a wake when idle and some linked stream has unacknowledged data. True when it did.
    @discardableResult
    public mutating func wakeIfPending(trigger: String? = nil) -> Bool {
        guard var s = subscription, s.wakeID == nil, s.holder == nil else { return false }
        let states = s.streamStates(heads: heads)
        guard let first = states.first(where: \.hasPending) else { return false }
        beginWake(&s, states: states)
        switch s.config.kind {
        case .webhook:
            s.deliveryDueAtMs = max(nowMs, s.deliveryDueAtMs ?? nowMs)  // a retry backoff in progress carries over
        case .pullWake:
            if let wake = s.config.wakeStream, let stream = s.key.absolute(wake) {
                wakeEvents.append(PullWakeEvent(stream: stream, json: "{\"type\":\"wake\",\"subscription_id\":\"\(s.key.id)\",\"stream\":\""
                    + (trigger ?? first.path) + "\",\"generation\":\(s.generation),\"ts\":\(nowMs)}"))
            }
        }
        subscription = s
        return true
    }

    private func beginWake(_ s: inout Subscription, states: [SubscriptionStreamState]) {
        s.generation += 1
        s.wakeID = "w_" + String(UInt64.random(in: .min ... .max), radix: 16) + String(UInt64.random(in: .min ... .max), radix: 16)
        s.snapshot = Dictionary(uniqueKeysWithValues: states.map { ($0.path, $0.tail) })
        s.holder = nil
        s.leaseExpiresAtMs = nil
    }

    private mutating func endWake() {
        guard var s = subscription else { return }
        s.wakeID = nil; s.snapshot = [:]; s.holder = nil; s.leaseExpiresAtMs = nil; s.deliveryDueAtMs = nil
        subscription = s
    }

    /// The timer: a lease that ran out gives the wake up, and pending work begins the next one.
    public mutating func expireLease() {
        guard let s = subscription, let expires = s.leaseExpiresAtMs, expires <= nowMs else { return }
        endWake()
        wakeIfPending()
    }

    // MARK: Webhook deliveries

    /// Takes the due delivery of the current wake for this node (no other node starts it for `deliveryInFlightMs`).
    /// Returns the wake to deliver, nil when nothing is due.
    public mutating func startDelivery() -> (generation: UInt64, wakeID: String, streams: [SubscriptionStreamState])? {
        guard var s = subscription, s.config.kind == .webhook, let wakeID = s.wakeID, let due = s.deliveryDueAtMs, due <= nowMs else { return nil }
        s.deliveryDueAtMs = nowMs + Self.deliveryInFlightMs
        subscription = s
        return (s.generation, wakeID, s.streamStates(heads: heads))
    }

    /// Records how a delivery of wake `wakeID` went; ignored when that wake has ended meanwhile.
    /// - Parameter jitter: a factor in 0.8...1.2 applied to the retry delay.
    public mutating func finishDelivery(wakeID: String, _ result: WebhookDeliveryResult, jitter: Double) {
        guard var s = subscription, s.wakeID == wakeID else { return }
        switch result {
        case .done:
            s.failedAttempts = 0; s.lastError = nil
            for (path, tail) in s.snapshot {
                if let index = s.links.firstIndex(where: { $0.path == path }), tail > (s.links[index].acked ?? .start) { s.links[index].acked = tail }
            }
            subscription = s
            endWake()
            wakeIfPending()
        case .accepted:
            s.failedAttempts = 0; s.lastError = nil
            s.deliveryDueAtMs = nil
            s.leaseExpiresAtMs = nowMs + s.config.leaseTTLMs
            subscription = s
        case .failed(let reason):
            s.failedAttempts += 1
            s.lastError = String(reason.prefix(200))
            s.deliveryDueAtMs = nowMs + Self.retryDelayMs(afterFailures: s.failedAttempts, jitter: jitter)
            subscription = s
        }
    }

    /// 1 s, 2 s, 4 s … capped at 60 s, times a jitter factor (±20 %).
    public static func retryDelayMs(afterFailures failures: Int, jitter: Double) -> Int64 {
        let base = min(60_000, 1_000 << min(max(failures - 1, 0), 6))
        return Int64((Double(base) * jitter).rounded())
    }

    // MARK: Callbacks, claims, acks, releases

    /// Webhook callback: fenced by the token's generation and the body's `generation` and `wake_id`; applies acks,
    /// and either extends the lease or (`done`) ends the wake and begins the next if work is pending (true).
    public mutating func callback(tokenGeneration: UInt64, _ progress: SubscriptionProgress) throws(SubscriptionError) -> Bool {
        try fence(tokenGeneration, progress)
        try applyAcks(progress.acks)
        return finishProgress(progress)
    }

    /// Pull-wake claim by `worker`: begins a wake if none is in progress; refused while another worker holds one.
    public mutating func claim(worker: String) throws(SubscriptionError) -> [SubscriptionStreamState] {
        let existing = try require()
        guard existing.config.kind == .pullWake else { throw .invalidRequest("Only pull-wake subscriptions are claimed.") }
        if let holder = existing.holder { throw .alreadyClaimed(holder: holder, generation: existing.generation) }
        let states = existing.streamStates(heads: heads)
        guard states.contains(where: \.hasPending) else { throw .noPendingWork }
        var s = existing
        if s.wakeID == nil { beginWake(&s, states: states) }
        s.holder = worker
        s.leaseExpiresAtMs = nowMs + s.config.leaseTTLMs
        subscription = s
        return states
    }

    /// Pull-wake ack: like a callback, for the claim's holder.
    public mutating func ack(tokenGeneration: UInt64, _ progress: SubscriptionProgress) throws(SubscriptionError) -> Bool {
        guard try require().config.kind == .pullWake else { throw .invalidRequest("Only pull-wake subscriptions are acked here; webhooks use callback.") }
        try fence(tokenGeneration, progress)
        try applyAcks(progress.acks)
        return finishProgress(progress)
    }

    /// Pull-wake release: gives the claim up without acknowledging; pending work begins the next wake.
    public mutating func release(tokenGeneration: UInt64, _ progress: SubscriptionProgress) throws(SubscriptionError) {
        guard try require().config.kind == .pullWake else { throw .invalidRequest("Only pull-wake subscriptions are released.") }
        try fence(tokenGeneration, progress)
        endWake()
        wakeIfPending()
    }

    private func fence(_ tokenGeneration: UInt64, _ progress: SubscriptionProgress) throws(SubscriptionError) {
        let s = try require()
        guard let wakeID = s.wakeID, tokenGeneration == s.generation, progress.generation == s.generation,
              progress.wakeID == wakeID else { throw .fenced }
    }

    private mutating func applyAcks(_ acks: [SubscriptionProgress.Ack]) throws(SubscriptionError) {
        guard var s = subscription else { throw .notFound }
        var moves: [(Int, Offset)] = []
        for ack in acks {
            guard let index = s.links.firstIndex(where: { $0.path == ack.path }) else {
                throw .invalidOffset("'\(ack.path.prefix(100))' is not a stream of this subscription.")
            }
            let offset = ack.offset
            if let acked = s.links[index].acked, offset < acked {
                throw .invalidOffset("An ack may not move '\(ack.path.prefix(100))' back.")
            }
            guard offset <= tail(ack.path) else { throw .invalidOffset("The ack for '\(ack.path.prefix(100))' is past the stream's tail.") }
            moves.append((index, offset))
        }
        for (index, offset) in moves { s.links[index].acked = offset }
        subscription = s
    }

    private mutating func finishProgress(_ progress: SubscriptionProgress) -> Bool {
        guard var s = subscription else { return false }
        if progress.done {
            endWake()
            return wakeIfPending()
        }
        s.leaseExpiresAtMs = nowMs + s.config.leaseTTLMs
        s.deliveryDueAtMs = nil  // the consumer is calling back: the delivery evidently arrived
        subscription = s
        return false
    }
}

extension Offset: Codable {
    public init(from decoder: any Decoder) throws { self.init(try decoder.singleValueContainer().decode(UInt64.self)) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(position)
    }
}
