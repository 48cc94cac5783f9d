import HubCore
import HubTestSupport
import NIOCore
import Testing

private typealias Store = any StreamStore & SubscriptionStore

/// `SubscriptionStore` on every backend: records are durable documents changed whole by `SubscriptionRules`, with the
/// tails of their linked streams, and wake events are appended in the same transaction.
@Suite("SubscriptionStore contract")
struct SubscriptionStoreContractTests {
    private func json(_ text: String) -> [NewMessage] { [NewMessage(body: ByteBuffer(string: text))] }

    @Test("create links explicit streams at their tails; rules see heads; wake events land in the wake stream; delete removes", arguments: StoreKind.allCases)
    func lifecycle(_ kind: StoreKind) async throws {
        try await kind.withStore { base, _ in
            let store = base as! Store
            let slot = uniqueStream("sub")
            let ev = StreamPath("\(slot)/ev")!, wake = StreamPath("\(slot)/wake")!
            _ = try await store.create(ev, CreateRequest(contentType: .json, messages: json("1") + json("2")))
            _ = try await store.create(wake, CreateRequest(contentType: .json))
            let key = SubscriptionKey(namespace: "", id: "c1")!
            let config = SubscriptionConfig(kind: .pullWake, pattern: nil, streams: ["\(slot)/ev"], webhookURL: nil, wakeStream: "\(slot)/wake",
                                            leaseTTLMs: 1_000, description: nil)
            let created = try await store.changeSubscription(key, alsoHeadsOf: [ev]) { change in
                (try? change.create(key, config, callbackBase: "http://h", matching: [])) ?? false
            }
            #expect(created)
            #expect(try await store.subscription(key)?.link("\(slot)/ev")?.acked == Offset(2))
            let confirmed = try await store.changeSubscription(key, alsoHeadsOf: [ev]) { change in
                (try? change.create(key, config, callbackBase: "http://h", matching: [])) ?? true
            }
            #expect(confirmed == false, "the same configuration confirms")

            _ = try await store.append(ev, AppendRequest(contentType: .json, messages: json("3")))
            let began = try await store.changeSubscription(key, alsoHeadsOf: []) { change in
                (change.heads[ev]?.head, change.streamChanged("\(slot)/ev"))
            }
            #expect(began.0 == Offset(3) && began.1)
            let events = try await store.read(wake, after: .start, maxBytes: 1 << 20).records.map { String(buffer: $0.body) }
            #expect(events.count == 1 && events[0].hasPrefix(#"{"type":"wake","subscription_id":"c1","stream":"\#(slot)/ev","generation":1,"#))
            let stored = try await store.subscription(key)
            #expect(stored?.generation == 1 && stored?.wakeID != nil && stored?.snapshot["\(slot)/ev"] == Offset(3))
            #expect(try await store.allSubscriptions().map(\.key) == [key])
            #expect(try await store.dueSubscriptions(nowMs: Int64.max, limit: 10).isEmpty, "an unclaimed pull-wake has nothing due")
            _ = try await store.changeSubscription(key, alsoHeadsOf: []) { change in _ = try? change.claim(worker: "w") }
            #expect(try await store.dueSubscriptions(nowMs: Int64.max, limit: 10) == [key], "a claim's lease is due at its expiry")

            #expect(try await store.streamPaths(under: slot, limit: 10) == [ev, wake])
            let id = try await store.info(ev).id
            #expect(try await store.streamPaths(ids: [id, 999_999]) == [ev])

            _ = try await store.changeSubscription(key, alsoHeadsOf: []) { change in change.delete() }
            #expect(try await store.subscription(key) == nil)
        }
    }

    @Test("a shared secret is made once and read back by everyone", arguments: StoreKind.allCases)
    func secrets(_ kind: StoreKind) async throws {
        try await kind.withStore { base, _ in
            let store = base as! Store
            let first = try await store.sharedSecret("s", make: { [1, 2, 3] })
            let second = try await store.sharedSecret("s", make: { [9] })
            #expect(first == [1, 2, 3] && second == [1, 2, 3])
        }
    }
}

/// The rules alone (pure): glob matching, retry delays, fencing.
@Suite("Subscription rules")
struct SubscriptionRulesTests {
    @Test("globs: * is one segment, ** any number (also none)")
    func globs() {
        #expect(SubscriptionGlob.matches("a/*", "a/b") && !SubscriptionGlob.matches("a/*", "a/b/c") && !SubscriptionGlob.matches("a/*", "a"))
        #expect(SubscriptionGlob.matches("a/**", "a/b/c") && SubscriptionGlob.matches("a/**", "a") && SubscriptionGlob.matches("**", "x/y"))
        #expect(SubscriptionGlob.matches("a/**/z", "a/z") && SubscriptionGlob.matches("a/**/z", "a/b/c/z") && !SubscriptionGlob.matches("a/**/z", "a/b/c"))
        #expect(SubscriptionGlob.matches("*/ev", "x/ev") && !SubscriptionGlob.matches("*/ev", "x/ev2"))
        #expect(SubscriptionGlob.literalPrefix("a/b/*/c") == "a/b" && SubscriptionGlob.literalPrefix("**") == "")
        #expect(SubscriptionGlob.isValid("a/*/b") && SubscriptionGlob.isValid("**") && !SubscriptionGlob.isValid("a/**x") && !SubscriptionGlob.isValid("a//b")
                && !SubscriptionGlob.isValid("a/../b"))
    }

    @Test("a linked stream that is gone: a match is unlinked, an explicit stream starts over; a re-created stream starts from its first record")
    func goneStreams() throws {
        let key = SubscriptionKey(namespace: "", id: "g")!
        let a = StreamPath("s/a")!, b = StreamPath("s/b")!
        let config = SubscriptionConfig(kind: .pullWake, pattern: "s/*", streams: ["s/b"], webhookURL: nil, wakeStream: "s/wake",
                                        leaseTTLMs: 1_000, description: nil)
        var change = SubscriptionChange(subscription: nil, heads: [a: StreamTail(id: 1, head: Offset(5)), b: StreamTail(id: 2, head: Offset(7))], nowMs: 0)
        _ = try change.create(key, config, callbackBase: "http://h", matching: [a])
        let created = change.subscription
        #expect(created?.link("s/a")?.acked == Offset(5) && created?.link("s/b")?.acked == Offset(7) && created?.link("s/b")?.streamID == 2)

        let gone = SubscriptionChange(subscription: created, heads: [:], nowMs: 1)
        #expect(gone.subscription?.link("s/a") == nil, "a pattern match that is gone is unlinked")
        #expect(gone.subscription?.link("s/b")?.acked == nil && gone.subscription?.link("s/b")?.explicit == true)

        var recreated = SubscriptionChange(subscription: created, heads: [a: StreamTail(id: 3, head: Offset(2)), b: StreamTail(id: 2, head: Offset(7))], nowMs: 2)
        #expect(recreated.subscription?.link("s/a")?.acked == nil && recreated.subscription?.link("s/a")?.streamID == 3)
        #expect(recreated.subscription?.link("s/b")?.acked == Offset(7), "the same incarnation keeps its cursor")
        let woke = recreated.wakeIfPending()
        #expect(woke && recreated.wakeEvents.count == 1, "the new incarnation's two records are pending")
    }

    @Test("retries back off 1 s, 2 s, 4 s … to 60 s, scaled by the jitter")
    func retryDelays() {
        #expect((1...8).map { SubscriptionChange.retryDelayMs(afterFailures: $0, jitter: 1) } == [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000])
        #expect(SubscriptionChange.retryDelayMs(afterFailures: 1, jitter: 0.8) == 800 && SubscriptionChange.retryDelayMs(afterFailures: 7, jitter: 1.2) == 72_000)
    }

    @Test("a webhook wake: delivery taken once, acks fenced by generation and wake id, done acknowledges the snapshot")
    func webhookWake() throws {
        let key = SubscriptionKey(namespace: "", id: "k")!
        let ev = StreamPath("s/ev")!
        let config = SubscriptionConfig(kind: .webhook, pattern: "s/*", streams: [], webhookURL: "https://h.example", wakeStream: nil,
                                        leaseTTLMs: 1_000, description: nil)
        var change = SubscriptionChange(subscription: nil, heads: [ev: StreamTail(id: 1, head: Offset(2))], nowMs: 1_000)
        let created = try change.create(key, config, callbackBase: "http://h", matching: [])
        let woke = change.streamChanged("s/ev")
        #expect(created)
        #expect(woke, "a new match links from -1 and has pending data")
        #expect(change.subscription?.link("s/ev")?.acked == nil && change.subscription?.deliveryDueAtMs == 1_000)
        let delivery = change.startDelivery()
        #expect(delivery?.generation == 1 && change.startDelivery() == nil, "one delivery in flight")
        func refusal(_ body: () throws(SubscriptionError) -> Bool) -> SubscriptionError? {
            do { _ = try body(); return nil } catch { return error }
        }
        let before = change.subscription
        let wrongWake = refusal { () throws(SubscriptionError) -> Bool in
            try change.callback(tokenGeneration: 1, SubscriptionProgress(wakeID: "other", generation: 1, acks: [], done: false))
        }
        let oldToken = refusal { () throws(SubscriptionError) -> Bool in
            try change.callback(tokenGeneration: 0, SubscriptionProgress(wakeID: delivery!.wakeID, generation: 1, acks: [], done: false))
        }
        let pastTail = refusal { () throws(SubscriptionError) -> Bool in
            try change.callback(tokenGeneration: 1, SubscriptionProgress(wakeID: delivery!.wakeID, generation: 1, acks: [.init(path: "s/ev", offset: Offset(3))], done: false))
        }
        #expect(wrongWake == .fenced && oldToken == .fenced)
        #expect(pastTail == .invalidOffset("The ack for 's/ev' is past the stream's tail."))
        #expect(change.subscription == before, "a refusal changes nothing")
        change.finishDelivery(wakeID: delivery!.wakeID, .failed("HTTP 500"), jitter: 1)
        #expect(change.subscription?.failedAttempts == 1 && change.subscription?.deliveryDueAtMs == 2_000 && change.subscription?.status == "failed")
        change.finishDelivery(wakeID: delivery!.wakeID, .done, jitter: 1)
        #expect(change.subscription?.link("s/ev")?.acked == Offset(2) && change.subscription?.wakeID == nil && change.subscription?.status == "active")
        change.finishDelivery(wakeID: delivery!.wakeID, .failed("late"), jitter: 1)
        #expect(change.subscription?.failedAttempts == 0, "a report about an ended wake changes nothing")
    }
}
