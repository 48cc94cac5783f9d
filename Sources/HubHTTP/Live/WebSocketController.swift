import Foundation
import HTTPTypes
import HubAuth
import HubCore
import HubProtocol
import Hummingbird
import WSCompression
import WSCore
import Logging
import NIOCore
import NIOWebSocket
import Synchronization

/// `GET /v1/ws` (DESIGN §3.3, docs/api/websocket.md): a slot or one stream, live by `seq`, optionally as a durable
/// consumer with acknowledgements. Auth runs before the upgrade, so a refused client gets a 401/403 problem and
/// never a half-open socket; anything found after the upgrade is a problem text frame followed by a close code.
struct WebSocketController: Sendable {
    let store: any StreamStore & SlotLog
    let follower: LogFollower
    let activity: SlotActivity
    let limits: HTTPLimits
    let auth: Authenticator
    let metrics: HubMetrics
    let tail: TailPush<SlotTailFeed>

    /// Close codes (docs/api/websocket.md).
    enum CloseCode {
        static let shutdown = WebSocketErrorCode.goingAway            // 1001
        static let badRequest = WebSocketErrorCode(codeNumber: 4400)
        static let notFound = WebSocketErrorCode(codeNumber: 4404)
        static let conflict = WebSocketErrorCode(codeNumber: 4409)
        static let retention = WebSocketErrorCode(codeNumber: 4410)
        static let rateLimited = WebSocketErrorCode(codeNumber: 4429)
        static let slowConsumer = WebSocketErrorCode(codeNumber: 4008)
        static let internalError = WebSocketErrorCode.unexpectedServerError  // 1011
    }

    /// The upgrade request runs through the router like any other: auth, then these checks. Accepted, it leaves the
    /// session on the context and answers 200, which the server turns into the 101 upgrade. Refused, it answers with
    /// the problem (the server sends that instead of upgrading).
    func addRoutes(to router: Router<HubRequestContext>) {
        router.get("/v1/ws") { request, context -> Response in
            guard request.headers[.upgrade]?.lowercased() == "websocket" else {
                throw HubProblem(status: .upgradeRequired, code: "websocket-required", detail: "/v1/ws is a WebSocket endpoint.",
                                 headers: [.upgrade: "websocket"])
            }
            let subscription = try Subscription(request, limits: limits)
            try await context.authorize(subscription.consumer == nil ? .read : .consume, on: subscription.authorizedPath, using: auth)
            let channel = context.channel
            context.webSocket.accept { inbound, outbound, link in
                try await session(subscription, inbound: inbound, outbound: outbound, channel: channel, link: link)
            }
            return Response(status: .ok)
        }
    }

    /// What a connection asked for: `stream=` or `slot=`, `since`, `consumer`, `envelope`, `ack_wait_ms`, `max_in_flight`.
    struct Subscription: Sendable {
        let scope: SlotScope
        let since: UInt64?
        let consumer: String?
        let envelope: LiveFrames.Envelope
        let ackWaitMs: Int64
        let maxInFlight: Int

        /// Slot-wide subscriptions are authorized on the slot's inbox path: a token limited to a prefix cannot read
        /// the whole slot.
        var authorizedPath: StreamPath {
            switch scope {
            case .slot(let slot): StreamPath(slot.rawValue)!
            case .stream(let path): path
            }
        }

        init(_ request: Request, limits: HTTPLimits) throws {
            let query = request.uri.queryParameters
            func bad(_ detail: String) -> HubProblem { HubProblem(status: .badRequest, code: "invalid-subscription", detail: detail) }
            switch (query["stream"].map(String.init), query["slot"].map(String.init)) {
            case (let raw?, nil):
                guard let path = StreamPath(raw) else { throw HubProblem.invalidPath(raw) }
                scope = .stream(path)
            case (nil, let raw?):
                scope = .slot(try AdminController.slotName(raw))
            default:
                throw bad("Name exactly one of stream= or slot=.")
            }
            since = try EventsController.seq(query["since"].map(String.init), name: "since")
            if let name = query["consumer"].map(String.init) {
                guard ConsumerState.isValidName(name) else { throw bad("A consumer name is 1 to 64 of [A-Za-z0-9._-].") }
                consumer = name
            } else {
                consumer = nil
            }
            guard let envelope = LiveFrames.Envelope(rawValue: query["envelope"].map(String.init) ?? "seq") else {
                throw bad("envelope must be seq or typed.")
            }
            self.envelope = envelope
            let ackWait = try EventsController.seq(query["ack_wait_ms"].map(String.init), name: "ack_wait_ms").map(Int64.init)
                ?? limits.consumerAckWait.milliseconds
            guard (100...3_600_000).contains(ackWait) else { throw bad("ack_wait_ms must be 100 to 3600000.") }
            ackWaitMs = ackWait
            let inFlight = try EventsController.seq(query["max_in_flight"].map(String.init), name: "max_in_flight").map(Int.init)
                ?? limits.consumerMaxInFlight
            guard (1...limits.consumerMaxInFlight).contains(inFlight) else { throw bad("max_in_flight must be 1 to \(limits.consumerMaxInFlight).") }
            maxInFlight = inFlight
        }
    }

    // MARK: Session

    private func session(_ subscription: Subscription, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, channel: any Channel,
                         link: WebSocketLink) async throws {
        metrics.webSocketOpened()
        defer { metrics.webSocketClosed() }
        let slot = subscription.scope.slot
        let settings = try? await auth.slotSettings(slot)
        guard activity.join(slot, limit: settings?.maxSubscribers, nowMs: AdminController.nowMs) else {
            try await refuse(HubProblem(status: .tooManyRequests, code: "too-many-subscribers", detail: "The slot has reached its subscriber limit."),
                             code: CloseCode.rateLimited, outbound: outbound)
            return
        }
        defer { activity.leave(slot) }

        // Where to start: an explicit `since`, else a consumer's last ack, else the tail.
        let first: LiveBatch, start: UInt64
        var consumer: ConsumerState?
        do {
            let after: UInt64
            if let name = subscription.consumer {
                consumer = try await store.openConsumer(name, scope: subscription.scope, ackWaitMs: subscription.ackWaitMs,
                                                        maxInFlight: Int64(subscription.maxInFlight))
                after = subscription.since ?? consumer!.ackedSeq
            } else if let since = subscription.since {
                after = since
            } else {
                after = try await store.logState(slot).headSeq
            }
            first = try await follower.start(subscription.scope, after: after)
            start = after
        } catch let error as StoreError {
            try await refuse(HubProblem(error), code: Self.closeCode(for: error), outbound: outbound)
            return
        }

        // Redelivery goes back to where this connection started: the last ack, or an explicit `since` past it.
        let window = consumer.map { _ in ConsumerWindow(ackedSeq: start) }
        let sender = Sender(outbound: outbound, channel: channel, timeout: limits.webSocketSendTimeout, closeGrace: limits.webSocketCloseGrace,
                            metrics: metrics)
        let outcome: Ending = try await withThrowingTaskGroup(of: Ending.self) { group in
            group.addTask {
                await self.readClient(inbound, subscription: subscription, window: window, sender: sender)
            }
            group.addTask {
                // Plain subscribers without per-frame work wait at the tail on the push path.
                let push = window == nil && !link.transformsFrames ? channel : nil
                return try await self.follow(subscription, first: first, after: start, window: window, sender: sender, push: push)
            }
            group.addTask {
                await sender.watch()
            }
            let ending = try await group.next() ?? .clientClosed
            group.cancelAll()
            return ending
        }
        switch outcome {
        case .clientClosed: break
        case .stalled: await sender.closeStalled()
        case .shutdown: try? await outbound.close(CloseCode.shutdown, reason: "server shutting down")
        case .failed(let error):
            try? await refuse(HubProblem(error), code: Self.closeCode(for: error), outbound: outbound)
        }
    }

    enum Ending: Sendable {
        case clientClosed, shutdown, stalled
        case failed(StoreError)
    }

    /// The problem as a text frame, then the close code (its reason is the problem's `code`).
    private func refuse(_ problem: HubProblem, code: WebSocketErrorCode, outbound: WebSocketOutboundWriter) async throws {
        try await outbound.write(.text(problem.document(instance: "/v1/ws").json))
        try await outbound.close(code, reason: problem.code)
    }

    static func closeCode(for error: StoreError) -> WebSocketErrorCode {
        switch error {
        case .belowRetention: CloseCode.retention
        case .streamNotFound, .streamGone, .slotNotFound, .consumerNotFound: CloseCode.notFound
        case .seqOutOfRange: CloseCode.badRequest
        case .consumerConflict: CloseCode.conflict
        default: CloseCode.internalError
        }
    }

    // MARK: Sending

    /// Sends records from the cursor on, waiting on the change signal at the tail. A consumer connection also stops
    /// at `max_in_flight` unacknowledged frames and, when the oldest of them is older than `ack_wait`, goes back to
    /// the last acknowledgement and sends everything after it again.
    private func follow(_ subscription: Subscription, first: LiveBatch, after start: UInt64, window: ConsumerWindow?,
                        sender: Sender, push: (any Channel)?) async throws -> Ending {
        let scope = subscription.scope
        let form = LiveBatch.Form.webSocket(subscription.envelope)
        let key = first.result.changeKey
        let ackWait = Duration.milliseconds(subscription.ackWaitMs)
        var after = start
        var pending: LiveBatch? = first  // read after `start` before the upgrade completed
        while true {
            var room = Int.max
            var redeliverIn: Duration?
            var ackTicket: UInt64 = 0
            if let window {
                ackTicket = window.acks.ticket(for: 0)
                let state = window.snapshot()
                if let oldest = state.oldestSent {
                    let age = ContinuousClock.now - oldest
                    if age >= ackWait {
                        // Redelivery: everything after the last acknowledgement goes out again.
                        after = state.acked
                        window.resetInFlight()
                        pending = nil
                        metrics.consumerRedelivery()
                        continue
                    }
                    redeliverIn = ackWait - age
                }
                room = subscription.maxInFlight - state.inFlight
                if room <= 0 {
                    switch await window.acks.wait(for: 0, after: ackTicket, timeout: redeliverIn ?? ackWait) {
                    case .changed, .timedOut: continue
                    case .shuttingDown: return .shutdown
                    case .cancelled: return .clientClosed
                    }
                }
            }
            let batch: LiveBatch, ticket: UInt64?
            if let ready = pending {
                batch = ready
                ticket = nil
                pending = nil
            } else {
                do {
                    (batch, ticket) = try await follower.next(scope, key: key, after: after)
                } catch let error as StoreError {
                    return .failed(error)
                }
            }
            let records = batch.records
            if records.isEmpty {
                guard let ticket else { continue }  // the first read was empty: take a ticket and read again
                if let push {
                    switch await tail.park(scope, key: key, after: after, channel: push, delivery: .stream(form)) {
                    case .behind(let cursor): after = cursor; continue
                    case .shuttingDown: return .shutdown
                    // A slot feed neither ends nor sets deadlines, and streaming members are never answered one batch.
                    case .cancelled, .ended, .expired, .answered: return .clientClosed
                    }
                }
                let timeout = redeliverIn ?? .seconds(3600)
                switch await follower.signal.wait(for: key, after: ticket, timeout: timeout) {
                case .changed, .timedOut: continue
                case .shuttingDown: return .shutdown
                case .cancelled: return .clientClosed
                }
            }
            let count = min(room, records.count)
            guard await sender.send(batch.frames(form).prefix(count)) else { return .stalled }
            let sent = records.prefix(count)
            window?.sent(sent.map(\.seq))
            metrics.recordDelivery(sent.map(\.record))
            after = sent.last!.seq
        }
    }

    // MARK: Receiving

    /// Reads client messages until the client closes: acknowledgements (`{"type":"ack","seq":N}`) on consumer
    /// connections. Frames and messages over the inbound cap end the connection with 1009.
    private func readClient(_ inbound: WebSocketInboundStream, subscription: Subscription, window: ConsumerWindow?, sender: Sender) async -> Ending {
        do {
            for try await message in inbound.messages(maxSize: limits.webSocketMaxInbound) {
                guard case .text(let text) = message, let ack = ClientMessage.ack(text) else {
                    _ = await sender.send(Self.error("invalid-message", "Send {\"type\":\"ack\",\"seq\":N}."))
                    continue
                }
                guard let window, let name = subscription.consumer else {
                    _ = await sender.send(Self.error("not-a-consumer", "Acknowledgements need ?consumer=NAME."))
                    continue
                }
                do {
                    let acked = try await store.acknowledge(name, slot: subscription.scope.slot, seq: ack)
                    window.acknowledge(acked)
                } catch {
                    let problem = HubProblem(error)
                    _ = await sender.send(Self.error(problem.code, problem.detail ?? ""))
                }
            }
        } catch {
            // The inbound side failed (too large, protocol error): WSCore has sent the close code already.
        }
        return .clientClosed
    }

    static func error(_ code: String, _ detail: String) -> ArraySlice<ByteBuffer> {
        [ByteBuffer(string: JSONText.object([("type", JSONText.quote("error")), ("code", JSONText.quote(code)), ("detail", JSONText.quote(detail))]))]
    }

    enum ClientMessage {
        struct Ack: Decodable { var type: String; var seq: UInt64 }
        /// The seq of an acknowledgement, nil for anything else.
        static func ack(_ text: String) -> UInt64? {
            guard let ack = try? JSONDecoder().decode(Ack.self, from: Data(text.utf8)), ack.type == "ack" else { return nil }
            return ack.seq
        }
    }
}

/// A consumer connection's unacknowledged frames. The sender adds, the reader acknowledges and wakes the sender.
final class ConsumerWindow: Sendable {
    private struct State { var acked: UInt64; var inFlight: [UInt64] = []; var oldestSent: ContinuousClock.Instant? }
    private let state: Mutex<State>
    /// Wakes a sender that waits for room (key 0).
    let acks = LocalChangeSignal()

    init(ackedSeq: UInt64) { state = Mutex(State(acked: ackedSeq)) }

    func snapshot() -> (acked: UInt64, inFlight: Int, oldestSent: ContinuousClock.Instant?) {
        state.withLock { ($0.acked, $0.inFlight.count, $0.oldestSent) }
    }

    func sent(_ seqs: [UInt64]) {
        guard !seqs.isEmpty else { return }
        state.withLock { state in
            if state.inFlight.isEmpty { state.oldestSent = .now }
            state.inFlight += seqs
        }
    }

    func acknowledge(_ seq: UInt64) {
        state.withLock { state in
            state.acked = max(state.acked, seq)
            let before = state.inFlight.count
            state.inFlight.removeAll { $0 <= seq }
            // The redelivery clock restarts with the oldest frame still waiting.
            if state.inFlight.isEmpty { state.oldestSent = nil } else if state.inFlight.count != before { state.oldestSent = .now }
        }
        acks.publish(0)
    }

    func resetInFlight() {
        state.withLock { $0.inFlight = []; $0.oldestSent = nil }
    }
}

/// Writes frames with a watchdog: a write that has not completed within `timeout` means the client stopped reading,
/// and the connection is closed with 4008 without holding up anyone else (each connection reads from its own cursor,
/// so a stalled one never blocks the fan-out). Frames go through the WebSocket handler (which compresses them when
/// permessage-deflate was negotiated); its writer waits while the channel is past its high-water mark, which bounds
/// what is queued per connection. (Writing batches straight to the channel from here measured slower: every batch
/// then hops to the event loop on its own.)
final class Sender: Sendable {
    private let outbound: WebSocketOutboundWriter
    private let channel: any Channel
    private let timeout: Duration
    /// How long a stalled connection has to take its 4008 close frame before it is dropped.
    private let closeGrace: Duration
    private let metrics: HubMetrics
    /// Uptime in ns when the pending write began; 0 when none is pending.
    private let pendingSince = Atomic<UInt64>(0)
    private let stalled = Atomic<Bool>(false)

    init(outbound: WebSocketOutboundWriter, channel: any Channel, timeout: Duration, closeGrace: Duration, metrics: HubMetrics) {
        self.outbound = outbound; self.channel = channel; self.timeout = timeout; self.closeGrace = closeGrace; self.metrics = metrics
    }

    /// Sends text frames in order; false once the connection was found stalled or a write failed.
    func send(_ frames: ArraySlice<ByteBuffer>) async -> Bool {
        guard !stalled.load(ordering: .relaxed) else { return false }
        pendingSince.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
        defer { pendingSince.store(0, ordering: .relaxed) }
        do {
            for frame in frames { try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: .text, data: frame))) }
            return true
        } catch {
            return false
        }
    }

    /// Runs until cancelled or the connection stalls.
    func watch() async -> WebSocketController.Ending {
        let limitNs = UInt64(timeout.milliseconds) * 1_000_000
        while !Task.isCancelled {
            try? await Task.sleep(for: timeout / 2)
            let since = pendingSince.load(ordering: .relaxed)
            guard since != 0, DispatchTime.now().uptimeNanoseconds &- since >= limitNs else { continue }
            stalled.store(true, ordering: .relaxed)
            metrics.slowConsumerClosed()
            return .stalled
        }
        return .clientClosed
    }

    /// Ends a stalled connection with 4008, as the session's last step (so nothing else closes it first). The close
    /// frame queues behind what the client has not read (at most the channel's high-water mark): a client that reads
    /// again gets that and then 4008; one that never does is dropped after the grace.
    func closeStalled() async {
        let outbound = self.outbound, grace = closeGrace
        let closed = await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await outbound.close(WebSocketController.CloseCode.slowConsumer, reason: "slow-consumer")) != nil }
            group.addTask { try? await Task.sleep(for: grace); return false }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if !closed { channel.close(promise: nil) }
    }
}

/// The WebSocket protocol settings every listener uses.
public struct WebSocketSettings: Sendable {
    /// Largest inbound frame; larger ones close the connection with 1009.
    public var maxFrameSize: Int
    public var extensions: [any WebSocketExtensionBuilder]
    public var autoPing: AutoPingSetup
    public var closeTimeout: Duration
    public var validateUTF8: Bool
}

extension HTTPLimits {
    /// Inbound cap, server pings, permessage-deflate.
    public var webSocketSettings: WebSocketSettings {
        WebSocketSettings(
            maxFrameSize: webSocketMaxInbound,
            // No context takeover: each message compresses on its own, so an idle connection keeps no window.
            extensions: [WebSocketExtensionFactory.perMessageDeflate(noContextTakeover: true, maxDecompressedFrameSize: webSocketMaxInbound).build()],
            autoPing: .enabled(timePeriod: webSocketPing),
            closeTimeout: webSocketCloseGrace,
            validateUTF8: true)
    }
}
