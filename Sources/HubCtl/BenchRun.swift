import AsyncHTTPClient
import Foundation
import HTTPTypes
import HubCore
import HubProtocol
import Logging
import NIOCore
import Synchronization
import WSClient
import NIOHTTP1

/// One benchmark run: subscribers connect first, then publishers send, then subscribers drain.
struct BenchRun: Sendable {
    let plan: BenchPlan
    let setup: BenchSetup

    final class Counters: Sendable {
        let published = Atomic<Int>(0)
        let delivered = Atomic<Int>(0)
    }

    struct SubscriberResult: Sendable {
        var histogram = LatencyHistogram()
        var unique = 0
        var duplicates = 0
        var lastDelivery: ContinuousClock.Instant?
        var error: String?
    }

    struct PublisherResult: Sendable {
        var histogram = LatencyHistogram()
        var sent = 0
        var failed = 0
        var error: String?
    }

    func run() async throws -> BenchReport {
        let client = HubClient(target: .url(base: setup.dataURL, token: setup.token), timeout: .seconds(60),
                               connectionsPerHost: plan.publishers + plan.subscribers + 4)
        return try await client.using { client in try await run(client: client) }
    }

    private func run(client: HubClient) async throws -> BenchReport {
        let counters = Counters()
        let (ready, readySignal) = AsyncStream<String?>.makeStream()
        let (published, publishedSignal) = AsyncStream<Void>.makeStream()
        let progress = Task { await showProgress(counters) }
        defer { progress.cancel() }

        var subscriberResults: [SubscriberResult] = []
        var publisherResults: [PublisherResult] = []
        var started = ContinuousClock.now
        var publishEnded = started
        try await withThrowingTaskGroup(of: SubscriberResult?.self) { group in
            for _ in 0..<plan.subscribers {
                group.addTask { await subscribe(client: client, counters: counters, ready: readySignal) }
            }
            // Deliveries get `drain` after the last publish; then whoever is still waiting is stopped.
            group.addTask {
                for await _ in published {}
                try? await Task.sleep(for: plan.drain)
                return nil
            }
            var connected = 0
            if plan.subscribers > 0 {
                for await failure in ready {
                    if let failure {
                        group.cancelAll()
                        throw CtlError.failed("a subscriber could not connect: \(failure)")
                    }
                    connected += 1
                    if connected == plan.subscribers { break }
                }
            }
            started = ContinuousClock.now
            publisherResults = await publishAll(client: client, counters: counters)
            publishEnded = ContinuousClock.now
            publishedSignal.finish()
            if plan.subscribers == 0 { group.cancelAll() }
            while let result = try await group.next() {
                guard let result else { group.cancelAll(); continue }
                subscriberResults.append(result)
                if subscriberResults.count == plan.subscribers { group.cancelAll() }
            }
        }
        progress.cancel()
        if Terminal.current.interactive { Terminal.current.noteInline("\r\u{1B}[K") }
        return BenchReport(plan: plan, publishers: publisherResults, subscribers: subscriberResults, started: started, publishEnded: publishEnded)
    }

    // MARK: Publishing

    private func publishAll(client: HubClient, counters: Counters) async -> [PublisherResult] {
        await withTaskGroup(of: PublisherResult.self) { group in
            for index in 0..<plan.publishers {
                let share = plan.messages / plan.publishers + (index < plan.messages % plan.publishers ? 1 : 0)
                group.addTask { await publish(index: index, count: share, client: client, counters: counters) }
            }
            var results: [PublisherResult] = []
            for await result in group { results.append(result) }
            return results
        }
    }

    private func publish(index: Int, count: Int, client: HubClient, counters: Counters) async -> PublisherResult {
        var result = PublisherResult()
        let path = "/v1/events/" + URLText.path(setup.slot)
        // Paced publishers send each request at its slot on a fixed schedule, so a slow answer does not lower the rate.
        let interval: Duration? = plan.rate > 0 ? .seconds(Double(plan.batch * plan.publishers) / Double(plan.rate)) : nil
        let clock = ContinuousClock()
        let start = clock.now
        var sent = 0
        var request = 0
        while sent < count, !Task.isCancelled {
            if let interval { try? await Task.sleep(until: start + interval * request, clock: clock) }
            let events = min(plan.batch, count - sent)
            let body = BenchEvent.batch(publisher: index, first: sent, count: events, size: plan.size)
            let began = clock.now
            do {
                _ = try await client.send(.POST, path, headers: [("Content-Type", "application/json")], body: body)
                result.histogram.record(micros: UInt64((clock.now - began).microseconds))
                result.sent += events
                counters.published.add(events, ordering: .relaxed)
            } catch {
                result.failed += events
                result.error = error.message
            }
            sent += events
            request += 1
        }
        return result
    }

    // MARK: Subscribing

    private func subscribe(client: HubClient, counters: Counters, ready: AsyncStream<String?>.Continuation) async -> SubscriberResult {
        var tally = DeliveryTally(base: setup.baseSeq, expected: plan.messages)
        var signalled = false
        do {
            switch plan.transport {
            case .sse:
                let query = URLText.query([("since", String(setup.baseSeq))])
                let request = client.request(.GET, "/v1/events/\(URLText.path(setup.slot))/stream\(query)", headers: [("Accept", "text/event-stream")])
                let response = try await client.open(request, deadline: .distantFuture)
                guard response.status.code == 200 else {
                    let body = try await response.body.collect(upTo: 1 << 16)
                    throw HubResponse.refusal(status: Int(response.status.code), body: Array(body.readableBytesView))
                }
                ready.yield(nil)
                signalled = true
                var parser = SSEParser()
                for try await chunk in response.body {
                    for event in parser.feed(chunk) {
                        guard let seq = event.id.flatMap(UInt64.init) else { continue }
                        tally.record(seq: seq, sentAt: BenchEvent.sentAt(in: event.data), counters: counters)
                    }
                    if tally.complete { break }
                }
            case .ws:
                let wsURL = setup.dataURL.replacingOccurrences(of: "http", with: "ws", options: .anchored)
                    + "/v1/ws" + URLText.query([("slot", setup.slot), ("since", String(setup.baseSeq))])
                var configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 22)
                if let token = setup.token { configuration.additionalHeaders = [.authorization: "Bearer \(token)"] }
                let logger = Logger(label: "hubctl-bench", factory: { _ in SwiftLogNoOpLogHandler() })
                let box = Mutex(tally)
                _ = try await WebSocketClient.connect(url: wsURL, configuration: configuration, logger: logger) { inbound, _, _ in
                    ready.yield(nil)
                    for try await message in inbound.messages(maxSize: 1 << 22) {
                        guard case let .text(text) = message, let seq = BenchEvent.number(after: "\"seq\":", in: text) else { continue }
                        let complete = box.withLock { tally in
                            tally.record(seq: seq, sentAt: BenchEvent.sentAt(in: text), counters: counters)
                            return tally.complete
                        }
                        if complete { return }
                    }
                }
                signalled = true
                tally = box.withLock { $0 }
            }
        } catch {
            if !signalled && !(error is CancellationError) { ready.yield("\((error as? CtlError)?.message ?? "\(error)")") }
            if !Task.isCancelled { tally.result.error = (error as? CtlError)?.message ?? "\(error)" }
        }
        return tally.result
    }

    // MARK: Progress

    private func showProgress(_ counters: Counters) async {
        let terminal = Terminal.current
        let every: Duration = terminal.interactive ? .seconds(1) : .seconds(5)
        let target = plan.messages * plan.subscribers
        while !Task.isCancelled {
            try? await Task.sleep(for: every)
            if Task.isCancelled { return }
            let published = counters.published.load(ordering: .relaxed)
            let delivered = counters.delivered.load(ordering: .relaxed)
            let line = "published \(published)/\(plan.messages)  delivered \(delivered)/\(target)"
            if terminal.interactive { terminal.noteInline("\r\u{1B}[K" + line) } else { terminal.note(line) }
        }
    }
}

/// What one subscriber saw: which seqs (a bit per expected event), how late, and how many twice.
struct DeliveryTally: Sendable {
    let base: UInt64
    let expected: Int
    private var seen: [UInt64]
    var result = BenchRun.SubscriberResult()

    init(base: UInt64, expected: Int) {
        self.base = base
        self.expected = expected
        seen = [UInt64](repeating: 0, count: (expected + 63) / 64)
    }

    var complete: Bool { result.unique >= expected }

    mutating func record(seq: UInt64, sentAt: UInt64?, counters: BenchRun.Counters?) {
        guard seq > base, seq - base <= UInt64(expected) else { return }
        let index = Int(seq - base - 1)
        let bit = UInt64(1) << UInt64(index % 64)
        if seen[index / 64] & bit != 0 { result.duplicates += 1; return }
        seen[index / 64] |= bit
        result.unique += 1
        result.lastDelivery = .now
        counters?.delivered.add(1, ordering: .relaxed)
        if let sentAt {
            let now = BenchEvent.wallClockNanos()
            result.histogram.record(micros: now > sentAt ? (now - sentAt) / 1000 : 0)
        }
    }
}

/// The benchmark's events: `{"t":<send time, ns since 1970>,"p":<publisher>,"n":<index>,"pad":"xxx…"}`, padded to size.
enum BenchEvent {
    static func batch(publisher: Int, first: Int, count: Int, size: Int) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(count * (size + 1) + 2)
        out.writeStaticString("[")
        let t = wallClockNanos()
        for i in 0..<count {
            if i > 0 { out.writeStaticString(",") }
            let head = "{\"t\":\(t),\"p\":\(publisher),\"n\":\(first + i),\"pad\":\""
            out.writeString(head)
            out.writeRepeatingByte(UInt8(ascii: "x"), count: max(0, size - head.utf8.count - 2))
            out.writeStaticString("\"}")
        }
        out.writeStaticString("]")
        return out
    }

    static func sentAt(in text: String) -> UInt64? { number(after: "\"t\":", in: text) }

    /// The unsigned integer right after `key` in `text`, without parsing the JSON around it.
    static func number(after key: String, in text: String) -> UInt64? {
        guard let range = text.utf8.firstRange(of: key.utf8) else { return nil }
        var value: UInt64 = 0
        var digits = 0
        for byte in text.utf8[range.upperBound...] {
            guard byte >= 0x30 && byte <= 0x39 else { break }
            value = value &* 10 &+ UInt64(byte - 0x30)
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    static func wallClockNanos() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
