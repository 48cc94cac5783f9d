import AsyncHTTPClient
import Foundation
import HubAuth
import HubCore
import HubProtocol
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// Settings of the subscription APIs (docs/api/subscriptions.md, docs/configuration.md).
public struct SubscriptionSettings: Sendable {
    public var webhookURLs: WebhookURLPolicy
    /// Scheme and authority for callback URLs in deliveries (`https://hub.example.com`); nil: the Host of the PUT.
    public var publicURL: String?
    /// How long one webhook delivery may take before it counts as failed.
    public var deliveryTimeout: Duration
    /// Most subscriptions one hub keeps; more are refused.
    public var maxSubscriptions: Int
    /// Most webhook deliveries in flight at once on this node (the rest wait for the next tick).
    public var maxConcurrentDeliveries: Int

    public init(webhookURLs: WebhookURLPolicy = WebhookURLPolicy(), publicURL: String? = nil, deliveryTimeout: Duration = .seconds(10),
                maxSubscriptions: Int = 4_096, maxConcurrentDeliveries: Int = 64) {
        self.webhookURLs = webhookURLs; self.publicURL = publicURL; self.deliveryTimeout = deliveryTimeout
        self.maxSubscriptions = maxSubscriptions; self.maxConcurrentDeliveries = maxConcurrentDeliveries
    }
}

/// Runs subscriptions (§11): the API operations the controller calls, and, as a service, the work no request does —
/// linking and waking on appends, lease expiry, webhook deliveries with retries. Appends are never held up: the change
/// signal only tells this service which stream ids changed (a set insert); the rest runs on its own tasks. Every state
/// change is one `SubscriptionStore.changeSubscription` transaction running `SubscriptionRules`, so the durable record
/// is the only truth and any node may pick up a due lease or delivery.
public final class SubscriptionService: Service, Sendable {
    let store: any SubscriptionStore
    let settings: SubscriptionSettings
    let logger: Logger
    private let credentialsBox = Mutex<SubscriptionCredentials?>(nil)
    /// What the change-processing loop knows of every subscription (pattern and links), refreshed from the store.
    private let known = Mutex<[SubscriptionKey: Subscription]>([:])
    /// Counts this node's own changes to `known`: a refresh that read the store before one of them must not undo it.
    private let knownEdits = Atomic<UInt64>(0)
    private let anyKnown = Atomic<Bool>(false)
    private let changedIDs = Mutex<Set<Int64>>([])
    private let changes: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)
    private let deliveries: (stream: AsyncStream<SubscriptionKey>, continuation: AsyncStream<SubscriptionKey>.Continuation)
    private let delivering = Mutex<Set<SubscriptionKey>>([])
    private let inFlight = Mutex(0)
    /// How often due leases and deliveries are looked for, and the known set refreshed (other nodes' changes).
    static let tick: Duration = .milliseconds(200)
    static let refreshEvery = 10

    public init(store: any SubscriptionStore, signal: LocalChangeSignal?, settings: SubscriptionSettings, logger: Logger) {
        self.store = store; self.settings = settings; self.logger = logger
        changes = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        deliveries = AsyncStream.makeStream(of: SubscriptionKey.self, bufferingPolicy: .bufferingNewest(10_000))
        signal?.observe { [weak self] id in self?.streamChanged(id) }
    }

    static var nowMs: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// The shared credentials, read (or created by the first node) from the store once.
    func credentials() async throws -> SubscriptionCredentials {
        if let known = credentialsBox.withLock({ $0 }) { return known }
        let seed = try await store.sharedSecret(SubscriptionCredentials.seedName, make: SubscriptionCredentials.makeSeed)
        let credentials = try SubscriptionCredentials(seed: seed)
        credentialsBox.withLock { $0 = credentials }
        return credentials
    }

    // MARK: API operations

    /// PUT: creates or confirms. Existing streams the pattern matches are linked at their tails.
    func createOrConfirm(_ key: SubscriptionKey, _ config: SubscriptionConfig, callbackBase: String) async throws -> (Subscription, created: Bool) {
        if try await store.subscription(key) == nil, known.withLock({ $0.count }) >= settings.maxSubscriptions {
            throw SubscriptionError.invalidRequest("This hub keeps at most \(settings.maxSubscriptions) subscriptions.")
        }
        var found: [StreamPath] = []
        if let pattern = config.pattern {
            let literal = SubscriptionGlob.literalPrefix(pattern)
            let prefix = key.namespace.isEmpty ? literal : (literal.isEmpty ? key.namespace : key.namespace + "/" + literal)
            found = try await store.streamPaths(under: prefix, limit: 100_000).filter { path in
                key.relative(path).map { $0 != config.wakeStream && SubscriptionGlob.matches(pattern, $0) } ?? false
            }
        }
        let matching = Array(found.prefix(SubscriptionConfig.maxStreams - config.streams.count))
        let explicit = config.streams.compactMap { key.absolute($0) }
        let base = settings.publicURL ?? callbackBase
        let outcome = try await store.changeSubscription(key, alsoHeadsOf: matching + explicit) { change -> Result<(Subscription, Bool), SubscriptionError> in
            Result { () throws(SubscriptionError) in
                let created = try change.create(key, config, callbackBase: base, matching: matching)
                return (change.subscription!, created)
            }
        }.get()
        remember(outcome.0)
        return outcome
    }

    func subscription(_ key: SubscriptionKey) async throws -> Subscription {
        guard let subscription = try await store.subscription(key) else { throw SubscriptionError.notFound }
        return subscription
    }

    func delete(_ key: SubscriptionKey) async throws {
        try await store.changeSubscription(key, alsoHeadsOf: []) { $0.delete() }
        forget(key)
    }

    func addStreams(_ key: SubscriptionKey, _ paths: [String]) async throws {
        let absolute = paths.compactMap { key.absolute($0) }
        remember(try await change(key, alsoHeadsOf: absolute) { change throws(SubscriptionError) in try change.addStreams(paths) }.0)
    }

    func removeStream(_ key: SubscriptionKey, _ path: String) async throws {
        remember(try await change(key) { change throws(SubscriptionError) in try change.removeStream(path) }.0)
    }

    /// Webhook callback with the wake's token. Returns whether a next wake began (its delivery is queued).
    func callback(_ key: SubscriptionKey, token: String, _ progress: SubscriptionProgress) async throws -> Bool {
        let generation = try await credentials().verifyCallbackToken(token, for: key, nowMs: Self.nowMs)
        let (subscription, nextWake) = try await change(key) { change throws(SubscriptionError) in
            try change.callback(tokenGeneration: generation, progress)
        }
        settled(subscription)
        return nextWake
    }

    /// Pull-wake claim: the wake (begun now if none was), a token for its ack and release, and the streams.
    func claim(_ key: SubscriptionKey, worker: String) async throws -> (Subscription, token: String, streams: [SubscriptionStreamState]) {
        let credentials = try await credentials()
        let (subscription, streams) = try await change(key) { change throws(SubscriptionError) in try change.claim(worker: worker) }
        settled(subscription)
        return (subscription, credentials.callbackToken(for: key, generation: subscription.generation, nowMs: Self.nowMs), streams)
    }

    func ack(_ key: SubscriptionKey, token: String, _ progress: SubscriptionProgress) async throws -> Bool {
        let generation = try await credentials().verifyCallbackToken(token, for: key, nowMs: Self.nowMs)
        let (subscription, nextWake) = try await change(key) { change throws(SubscriptionError) in try change.ack(tokenGeneration: generation, progress) }
        settled(subscription)
        return nextWake
    }

    func release(_ key: SubscriptionKey, token: String, _ progress: SubscriptionProgress) async throws {
        let generation = try await credentials().verifyCallbackToken(token, for: key, nowMs: Self.nowMs)
        settled(try await change(key) { change throws(SubscriptionError) in try change.release(tokenGeneration: generation, progress) }.0)
    }

    /// Runs one rule on `key` in a store transaction; the rule's refusal is thrown, the record as committed returned.
    private func change<T: Sendable>(_ key: SubscriptionKey, alsoHeadsOf extra: [StreamPath] = [],
                                     _ rule: @escaping @Sendable (inout SubscriptionChange) throws(SubscriptionError) -> T) async throws -> (Subscription, T) {
        try await store.changeSubscription(key, alsoHeadsOf: extra) { change -> Result<(Subscription, T), SubscriptionError> in
            Result { () throws(SubscriptionError) in
                guard change.subscription != nil else { throw .notFound }
                let value = try rule(&change)
                return (change.subscription!, value)
            }
        }.get()
    }

    // MARK: The change signal and the known set

    /// Called on the committing thread for every published change: only takes note.
    private func streamChanged(_ id: Int64) {
        guard id > 0, anyKnown.load(ordering: .relaxed) else { return }  // negative keys are slot-wide wake-ups
        // Only the first id after the loop took the set wakes it: the loop takes everything gathered by then.
        let first = changedIDs.withLock { ids in
            defer { ids.insert(id) }
            return ids.isEmpty
        }
        if first { changes.continuation.yield() }
    }

    private func remember(_ subscription: Subscription) {
        known.withLock {
            $0[subscription.key] = subscription
            knownEdits.add(1, ordering: .relaxed)  // under the lock: a refresh that compares it sees the change
        }
        anyKnown.store(true, ordering: .relaxed)
    }

    private func forget(_ key: SubscriptionKey) {
        let empty = known.withLock {
            $0[key] = nil
            knownEdits.add(1, ordering: .relaxed)
            return $0.isEmpty
        }
        anyKnown.store(!empty, ordering: .relaxed)
    }

    /// After a change: remembers the record, and queues its delivery if one is due now.
    private func settled(_ subscription: Subscription) {
        remember(subscription)
        if let due = subscription.deliveryDueAtMs, due <= Self.nowMs { deliveries.continuation.yield(subscription.key) }
    }

    private func refreshKnown() async {
        do {
            let edits = knownEdits.load(ordering: .relaxed)
            let all = try await store.allSubscriptions()
            let empty = known.withLock { known -> Bool in
                let stored = Dictionary(all.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
                if knownEdits.load(ordering: .relaxed) == edits {
                    known = stored
                } else {
                    // A subscription this node created or changed while the list was read is newer than the list:
                    // replacing it would drop its wakes until the next refresh. Only add what was not known.
                    known.merge(stored) { mine, _ in mine }
                }
                return known.isEmpty
            }
            anyKnown.store(!empty, ordering: .relaxed)
        } catch {
            logger.warning("subscriptions: cannot list subscriptions", metadata: ["error": "\(error)"])
        }
    }

    /// Streams changed: links new pattern matches and begins wakes where work is pending.
    private func processChanges() async {
        let ids = changedIDs.withLock { ids -> [Int64] in defer { ids = [] }; return Array(ids) }
        guard !ids.isEmpty else { return }
        let paths: [StreamPath]
        do { paths = try await store.streamPaths(ids: ids) } catch {
            logger.warning("subscriptions: cannot resolve changed streams", metadata: ["error": "\(error)"])
            return
        }
        var affected: [SubscriptionKey: [String]] = [:]
        for subscription in known.withLock({ Array($0.values) }) {
            for path in paths {
                guard let relative = subscription.key.relative(path), relative != subscription.config.wakeStream else { continue }
                if subscription.link(relative) != nil || subscription.config.pattern.map({ SubscriptionGlob.matches($0, relative) }) == true {
                    affected[subscription.key, default: []].append(relative)
                }
            }
        }
        for (key, relatives) in affected {
            do {
                let subscription = try await store.changeSubscription(key, alsoHeadsOf: relatives.compactMap { key.absolute($0) }) { change in
                    for relative in relatives { change.streamChanged(relative) }
                    return change.subscription
                }
                if let subscription { settled(subscription) } else { forget(key) }
            } catch {
                logger.warning("subscriptions: cannot wake", metadata: ["hub.subscription": "\(key)", "error": "\(error)"])
            }
        }
    }

    /// Leases that ran out and deliveries that are due (retries, or work another node left).
    private func processDue() async {
        let keys: [SubscriptionKey]
        do { keys = try await store.dueSubscriptions(nowMs: Self.nowMs, limit: 256) } catch {
            logger.warning("subscriptions: cannot list due work", metadata: ["error": "\(error)"])
            return
        }
        for key in keys {
            do {
                let subscription = try await store.changeSubscription(key, alsoHeadsOf: []) { change in
                    change.expireLease()
                    return change.subscription
                }
                if let subscription {
                    remember(subscription)
                    if let due = subscription.deliveryDueAtMs, due <= Self.nowMs { deliveries.continuation.yield(key) }
                }
            } catch {
                logger.warning("subscriptions: cannot expire lease", metadata: ["hub.subscription": "\(key)", "error": "\(error)"])
            }
        }
    }

    // MARK: Webhook deliveries

    /// Delivers `key`'s due wake, and the next one while deliveries end with `done` and more work is pending.
    private func deliver(_ key: SubscriptionKey, using http: HTTPClient) async {
        guard delivering.withLock({ $0.insert(key).inserted }) else { return }
        defer { _ = delivering.withLock { $0.remove(key) } }
        do {
            let credentials = try await credentials()
            while true {
                let started = try await store.changeSubscription(key, alsoHeadsOf: []) { change in
                    change.startDelivery().map { (change.subscription!, $0) }
                }
                guard let (subscription, wake) = started else { return }
                let result = await post(subscription, generation: wake.generation, wakeID: wake.wakeID, streams: wake.streams,
                                        credentials: credentials, http: http)
                if case .failed(let reason) = result {
                    logger.notice("webhook delivery failed", metadata: ["hub.subscription": "\(key)", "hub.reason": "\(reason)"])
                }
                let after = try await store.changeSubscription(key, alsoHeadsOf: []) { change in
                    change.finishDelivery(wakeID: wake.wakeID, result, jitter: Double.random(in: 0.8...1.2))
                    return change.subscription
                }
                guard let after else { return forget(key) }
                remember(after)
                guard result == .done, let due = after.deliveryDueAtMs, due <= Self.nowMs else { return }
            }
        } catch {
            logger.warning("subscriptions: delivery bookkeeping failed", metadata: ["hub.subscription": "\(key)", "error": "\(error)"])
        }
    }

    private func post(_ subscription: Subscription, generation: UInt64, wakeID: String, streams: [SubscriptionStreamState],
                      credentials: SubscriptionCredentials, http: HTTPClient) async -> WebhookDeliveryResult {
        guard let url = subscription.config.webhookURL, let host = URL(string: url)?.host else { return .failed("no webhook URL") }
        do {
            try await settings.webhookURLs.checkResolved(host: host)
        } catch {
            return .failed(error.message)
        }
        let now = Self.nowMs
        let token = credentials.callbackToken(for: subscription.key, generation: generation, nowMs: now)
        let body = Array(SubscriptionDocuments.wake(subscription, generation: generation, wakeID: wakeID, streams: streams, token: token).utf8)
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "hubd/\(HubVersion.current)")
        request.headers.add(name: "Webhook-Signature", value: credentials.signatureHeader(body: body, unixSeconds: now / 1000))
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await http.execute(request, timeout: .seconds(Int64(settings.deliveryTimeout.components.seconds)))
            let reply = try await response.body.collect(upTo: 64 * 1024)
            guard (200..<300).contains(response.status.code) else { return .failed("HTTP \(response.status.code)") }
            let json = try? JSONSerialization.jsonObject(with: Data(reply.readableBytesView)) as? [String: Any]
            return json?["done"] as? Bool == true ? .done : .accepted
        } catch {
            return .failed("\(error)".prefix(200).description)
        }
    }

    // MARK: Service

    public func run() async throws {
        // Made here, not in init: a client must be shut down, and a hub whose build fails later never runs this.
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow  // a redirect could lead past the URL policy
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(Int64(settings.deliveryTimeout.components.seconds)))
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        await refreshKnown()
        await withDiscardingTaskGroup { group in
            group.addTask { [self] in
                for await _ in changes.stream.cancelOnGracefulShutdown() { await processChanges() }
            }
            group.addTask { [self] in
                var ticks = 0
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    try? await Task.sleep(for: Self.tick)
                    ticks += 1
                    if ticks % Self.refreshEvery == 0 { await refreshKnown() }
                    // No subscription anywhere (as of the last refresh): nothing can be due; spare the store the query.
                    if anyKnown.load(ordering: .relaxed) { await processDue() }
                }
                changes.continuation.finish()
                deliveries.continuation.finish()
            }
            for await key in deliveries.stream {
                // Bounded: past the limit a delivery stays due, and the next tick queues it again.
                guard inFlight.withLock({ n in n < settings.maxConcurrentDeliveries ? { n += 1; return true }() : false }) else { continue }
                group.addTask { [self] in
                    await deliver(key, using: http)
                    inFlight.withLock { $0 -= 1 }
                }
            }
        }
        try? await http.shutdown()
    }
}
