import Foundation
import HTTPTypes
import HubAuth
import HubCore
import HubProtocol
import Hummingbird
import NIOCore

/// The events surface (DESIGN §3.2, docs/api/events.md), compatible with the `wire` relay's slot API: JSON events
/// into a slot's inbox, listed and followed by slot `seq`.
struct EventsController: Sendable {
    let store: any StreamStore & SlotLog & AdminStore
    let follower: LogFollower
    let activity: SlotActivity
    let limits: HTTPLimits
    let auth: Authenticator
    let metrics: HubMetrics
    /// Self-service allocations per client address.
    let allocations: RateLimiter

    /// Most events one list request returns.
    static let maxListLimit = 1000

    func addRoutes(to router: Router<HubRequestContext>) {
        router.post("/v1/slot/allocate", use: allocate)
        router.get("/v1/slot/:slot/state", use: state)
        router.post("/v1/events/:slot", use: append)
        router.get("/v1/events/:slot", use: list)
        router.get("/v1/events/:slot/stream", use: stream)
    }

    // MARK: Allocate

    struct Allocation: Encodable { var slotId: String; var slotToken: String; var tokenId: String; var scopes: [String] }

    @Sendable func allocate(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard limits.selfServiceSlots else {
            throw HubProblem(status: .forbidden, code: "self-service-disabled", detail: "Self-service slots are off (self-service-slots in hub.yaml).")
        }
        if let retry = allocations.take(context.remoteAddress?.ipAddress ?? "unknown") { throw AuthError.rateLimited(retryAfterSeconds: retry) }
        let slot = SlotName("s-" + Self.randomName(16))!
        _ = try await store.createSlot(slot, settings: SlotSettings(), actor: "self-service")
        let secret = BearerToken.generate()
        let scopes: Set<Scope> = [.read, .append, .create, .consume]
        let token = TokenRecord(id: TokenID.generate(), digest: secret.digest, slot: slot, scopes: scopes, prefix: nil, label: "self-service",
                                createdAtMs: AdminController.nowMs, expiresAtMs: nil)
        try await store.insertToken(token, actor: "self-service")
        return try AdminController.json(Allocation(slotId: slot.rawValue, slotToken: secret.secret, tokenId: token.id,
                                                   scopes: scopes.map(\.rawValue).sorted()), status: .created)
    }

    /// Lowercase letters and digits from the system's CSPRNG.
    static func randomName(_ length: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")
        var generator = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet[Int(generator.next(upperBound: UInt32(alphabet.count)))] })
    }

    // MARK: State

    struct SlotStateDocument: Encodable {
        var slot: String; var headSeq: UInt64; var floorSeq: UInt64; var records: Int64; var bytes: Int64; var subscribers: Int; var lastReadAt: String?
    }

    @Sendable func state(_ request: Request, context: HubRequestContext) async throws -> Response {
        let inbox = try Self.inbox(context)
        try await context.authorize(.read, on: inbox, using: auth)
        let state = try await store.logState(inbox.slot)
        let live = activity.figures(inbox.slot)
        return try AdminController.json(SlotStateDocument(slot: inbox.slot.rawValue, headSeq: state.headSeq, floorSeq: state.floorSeq, records: state.records,
                                                          bytes: state.bytes, subscribers: live.subscribers,
                                                          lastReadAt: live.lastReadMs.map { RFC3339.format(millisecondsSince1970: $0) }))
    }

    // MARK: Append

    @Sendable func append(_ request: Request, context: HubRequestContext) async throws -> Response {
        let inbox = try Self.inbox(context)
        try await context.authorize(.append, on: inbox, using: auth)
        let body = try await request.body.collect(upTo: limits.maxBodyBytes)
        guard body.readableBytes > 0 else { throw ProtocolError.emptyBody }
        let isArray = body.readableBytesView.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "[")
        let messages = try JSONMessages.flatten(body, allowEmptyArray: false)
        let maxBytes = Int(try await auth.slotSettings(inbox.slot)?.maxMessageBytes ?? Int64(limits.maxMessageBytes))
        if let tooBig = messages.first(where: { $0.readableBytes > maxBytes }) {
            throw HubProblem(status: .contentTooLarge, code: "payload-too-large", detail: "An event of \(tooBig.readableBytes) bytes exceeds the limit of \(maxBytes).")
        }
        let headerType = try request.headers[.eventType].map(Self.eventType)
        let headerKey = try request.headers[.idempotencyKey].map(Self.dedupKey)
        var events: [NewEvent] = []
        events.reserveCapacity(messages.count)
        for (index, message) in messages.enumerated() {
            let fields = EventFields.of(message)
            var key = try fields.eventID.map(Self.dedupKey)
            // One header key for an array: each event gets its own key from it, so a retried batch dedupes event by event.
            if key == nil, let headerKey { key = isArray ? "\(headerKey)#\(index)" : headerKey }
            events.append(NewEvent(body: message, type: try headerType ?? fields.type.map(Self.eventType), key: key))
        }
        let seqs = try await store.appendEvents(inbox.slot, events, createsSlot: auth.configuration.mode == .open,
                                                dedupWindowMs: limits.dedupWindow.milliseconds)
        metrics.recordAppend(events.map { NewMessage(body: $0.body) })
        let json = isArray ? "{\"seqs\":[\(seqs.map(String.init).joined(separator: ","))]}" : "{\"seq\":\(seqs[0])}"
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: json)))
    }

    /// The top-level `type` and `event_id` (a string or an integer) of an event object; anything else has neither.
    struct EventFields: Decodable {
        var type: String?
        var eventID: String?

        private enum Keys: String, CodingKey { case type, eventID = "event_id" }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            type = try? c.decode(String.self, forKey: .type)
            eventID = (try? c.decode(String.self, forKey: .eventID)) ?? (try? c.decode(Int64.self, forKey: .eventID)).map(String.init)
        }

        init() {}

        static func of(_ message: ByteBuffer) -> EventFields {
            guard message.readableBytesView.first == UInt8(ascii: "{") else { return EventFields() }
            return (try? JSONDecoder().decode(EventFields.self, from: Data(message.readableBytesView))) ?? EventFields()
        }
    }

    static func eventType(_ raw: String) throws -> String {
        guard (1...128).contains(raw.utf8.count), raw.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw HubProblem(status: .badRequest, code: "invalid-event-type", detail: "An event type is 1 to 128 visible ASCII characters.")
        }
        return raw
    }

    static func dedupKey(_ raw: String) throws -> String {
        guard (1...200).contains(raw.utf8.count), !raw.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw HubProblem(status: .badRequest, code: "invalid-idempotency-key", detail: "An event_id or Idempotency-Key is 1 to 200 bytes.")
        }
        return raw
    }

    // MARK: List

    @Sendable func list(_ request: Request, context: HubRequestContext) async throws -> Response {
        let inbox = try Self.inbox(context)
        try await context.authorize(.read, on: inbox, using: auth)
        let query = request.uri.queryParameters
        let since = try Self.seq(query["since"].map(String.init), name: "since") ?? 0
        let limit = try Self.seq(query["limit"].map(String.init), name: "limit").map(Int.init) ?? 100
        guard (1...Self.maxListLimit).contains(limit) else {
            throw HubProblem(status: .badRequest, code: "invalid-limit", detail: "limit must be 1 to \(Self.maxListLimit).")
        }
        activity.read(inbox.slot, nowMs: AdminController.nowMs)
        let result = try await readInbox(inbox, after: since, limit: limit)
        var out = ByteBuffer(string: "{\"events\":[")
        for (i, record) in result.records.enumerated() {
            if i > 0 { out.writeStaticString(",") }
            var frame = LiveFrames.webSocket(.typed, path: record.path, contentType: record.contentType, record: record.record)
            out.writeBuffer(&frame)
        }
        out.writeString("],\"next\":\(result.next),\"head\":\(result.headSeq)}")
        return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: out))
    }

    /// The inbox by seq; a slot whose inbox was never written reads as empty.
    private func readInbox(_ inbox: StreamPath, after: UInt64, limit: Int) async throws -> SlotReadResult {
        do {
            return try await store.readLog(.stream(inbox), after: after, limit: limit, maxBytes: limits.readChunkBytes)
        } catch .streamNotFound {
            let state = try await store.logState(inbox.slot)
            guard after <= state.headSeq else { throw StoreError.seqOutOfRange(requested: after, head: state.headSeq) }
            return SlotReadResult(records: [], headSeq: state.headSeq, floorSeq: state.floorSeq, changeKey: 0, next: after)
        }
    }

    // MARK: Stream (SSE)

    @Sendable func stream(_ request: Request, context: HubRequestContext) async throws -> Response {
        let inbox = try Self.inbox(context)
        try await context.authorize(.read, on: inbox, using: auth)
        let query = request.uri.queryParameters
        let wake = query["wake"].map { $0 == "1" || $0 == "true" } ?? false
        // EventSource reconnects with Last-Event-ID and the original URL: the header wins over ?since=.
        var after = try Self.seq(request.headers[.lastEventID], name: "Last-Event-ID") ?? Self.seq(query["since"].map(String.init), name: "since")
        try await ensureInbox(inbox)
        if after == nil { after = try await store.logState(inbox.slot).headSeq }
        let scope = SlotScope.stream(inbox)
        let first: LiveBatch?, refusal: ProblemDocument?
        do {
            first = try await follower.start(scope, after: after!)
            refusal = nil
        } catch let error as StoreError {
            // Below retention is answered in the stream, where EventSource can read it; anything else is a plain error.
            guard case .belowRetention = error else { throw error }
            first = nil
            refusal = HubProblem(error).document(instance: request.uri.path)
        }
        let settings = try await auth.slotSettings(inbox.slot)
        guard activity.join(inbox.slot, limit: settings?.maxSubscribers, nowMs: AdminController.nowMs) else {
            throw HubProblem(status: .tooManyRequests, code: "too-many-subscribers", detail: "The slot has reached its subscriber limit.",
                             headers: [.retryAfter: "5"])
        }
        let fields: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache", .xAccelBuffering: "no"]
        let follower = self.follower, limits = self.limits, metrics = self.metrics, activity = self.activity, start = after!
        let body = ResponseBody { writer in
            metrics.sseStarted()
            defer { metrics.sseEnded(); activity.leave(inbox.slot) }
            _ = try? await request.body.consumeWithCancellationOnInboundClose { _ in
                var out = SSE.retry(milliseconds: Int(limits.sseRetry.milliseconds))
                if let refusal {
                    LiveFrames.sseError(refusal, into: &out)
                    try await writer.write(out)
                    return
                }
                var batch = first!
                var after = start
                let key = batch.result.changeKey
                while true {
                    if !batch.records.isEmpty {
                        if wake {
                            LiveFrames.sseWake(seq: batch.result.next, into: &out)
                        } else {
                            var frames = batch.frames(.sseEvents)[0]
                            out.writeBuffer(&frames)
                        }
                        metrics.recordDelivery(batch.records.map(\.record))
                        after = batch.result.next
                    }
                    if out.readableBytes > 0 { try await writer.write(out); out.clear() }
                    // Wait for the next batch, with keep-alive comments while idle.
                    while true {
                        let next: (LiveBatch, ticket: UInt64)
                        do {
                            next = try await follower.next(scope, key: key, after: after)
                        } catch let error as StoreError {
                            LiveFrames.sseError(HubProblem(error).document(instance: request.uri.path), into: &out)
                            try await writer.write(out)
                            return
                        }
                        if !next.0.records.isEmpty { batch = next.0; break }
                        switch await follower.signal.wait(for: key, after: next.ticket, timeout: limits.sseKeepAlive) {
                        case .changed: continue
                        case .timedOut: try await writer.write(SSE.keepAlive)
                        case .shuttingDown, .cancelled: return
                        }
                    }
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: fields, body: body)
    }

    /// Live readers of a slot whose inbox was never written wait on an empty inbox rather than failing.
    private func ensureInbox(_ inbox: StreamPath) async throws {
        do {
            _ = try await store.info(inbox)
        } catch .streamNotFound {
            _ = try await store.create(inbox, CreateRequest(contentType: .json, createsSlot: auth.configuration.mode == .open))
        }
    }

    // MARK: Parameters

    static func inbox(_ context: HubRequestContext) throws -> StreamPath {
        let slot = try AdminController.slotName(context.parameters.require("slot"))
        return StreamPath(slot.rawValue)!
    }

    static func seq(_ raw: String?, name: String) throws -> UInt64? {
        guard let raw else { return nil }
        guard let value = UInt64(raw), raw.utf8.count <= 20 else {
            throw HubProblem(status: .badRequest, code: "invalid-\(name.lowercased())", detail: "\(name) must be a non-negative integer (a seq).")
        }
        return value
    }
}
