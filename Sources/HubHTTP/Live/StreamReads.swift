import Foundation
import HTTPTypes
import HubCore
import HubProtocol
import Hummingbird
import NIOCore
import Prometheus
import Synchronization

/// The three read modes of Durable Streams §7 over one read path: every mode reads from its own offset with
/// `store.read`, and live modes wait on the `ChangeSignal` (which carries no data) between reads.
/// A class: the hot path reaches it per long-poll and SSE read, and a struct of seven references was copied (seven
/// retains and releases) at every such access.
public final class StreamReads: Sendable {
    let store: any StreamStore
    let signal: any ChangeSignal
    let limits: HTTPLimits
    let metrics: HubMetrics
    let shared: SharedReads
    let cursors: CursorClock
    /// SSE readers parked at a stream's tail: one dispatcher per stream writes each batch to all of them.
    let push: TailPush<StreamTailFeed>

    public init(store: any StreamStore, signal: any ChangeSignal, limits: HTTPLimits, metrics: HubMetrics) {
        self.store = store; self.signal = signal; self.limits = limits; self.metrics = metrics
        let shared = SharedReads(store: store), cursors = CursorClock()
        self.shared = shared; self.cursors = cursors
        push = TailPush(signal: signal, feed: StreamTailFeed(shared: shared, maxBytes: limits.readChunkBytes, cursors: cursors,
                                                             keepAliveInterval: limits.sseKeepAlive), metrics: metrics,
                         slice: limits.pushSlice)
    }

    // MARK: Catch-up

    func catchUp(_ path: StreamPath, start: ReadStart, ifNoneMatch: String?) async throws -> Response {
        let from: Offset
        switch start {
        case .now:
            let info = try await store.info(path)
            try await store.touch(path)
            var fields = Self.tailFields(contentType: info.contentType, next: info.head, closed: info.closed)
            fields[.cacheControl] = "no-store"
            return Response(status: .ok, headers: fields, body: .init(byteBuffer: DSBody.encode([], contentType: info.contentType)))
        case .beginning: from = .start
        case .after(let offset): from = offset
        }
        let result = try await store.read(path, after: from, maxBytes: limits.readChunkBytes)
        return dataResponse(result, from: from, cursor: nil, ifNoneMatch: ifNoneMatch)
    }

    /// The offset a live read starts after; `now` counts as a read of the stream for its idle expiry.
    private func resolve(_ start: ReadStart, in path: StreamPath) async throws -> Offset {
        switch start {
        case .now:
            let head = try await store.info(path).head
            try await store.touch(path)
            return head
        case .beginning: return .start
        case .after(let offset): return offset
        }
    }

    // MARK: Long-poll

    /// - Parameter channel: the connection; given, a poll at the tail parks on the push path as a one-shot member
    ///   (answered with the next batch the stream's dispatcher reads for everyone) instead of waiting on the change
    ///   signal and reading for itself. The group it joins is what the hot path's next poll joins (`HotPathHandler`).
    func longPoll(_ path: StreamPath, start: ReadStart, clientCursor: String?, channel: (any Channel)? = nil) async throws -> Response {
        let deadline = ContinuousClock.now + limits.longPollTimeout
        let from = try await resolve(start, in: path)
        var read = SharedRead(try await store.read(path, after: from, maxBytes: limits.readChunkBytes))
        while true {
            let result = read.result
            if !result.records.isEmpty || result.info.closed {
                return Self.longPollAnswer(read, from: from, cursor: cursor(client: clientCursor)).response
            }
            // Take the ticket, then look once more: anything committed after the ticket ends the wait at once.
            let id = result.info.id
            let ticket = signal.ticket(for: id)
            read = try await shared.read(path, stream: id, after: from, ticket: ticket, maxBytes: limits.readChunkBytes)
            if !read.result.records.isEmpty || read.result.info.closed { continue }
            guard deadline > .now else { return Self.timeoutAnswer(read, from: from, cursor: cursor(client: clientCursor)).response }
            metrics.longPollWaitStarted()
            defer { metrics.longPollWaitEnded() }
            if let channel {
                switch await push.park(path, key: id, after: from.position, channel: channel, delivery: .once, deadline: deadline, tail: read) {
                case .answered(let batch):
                    read = batch
                    continue
                case .behind:
                    // No group to join at this offset yet (its dispatcher has not read the newest commit), or the
                    // group let go: wait on the signal from the ticket taken before the read, never spin on park.
                    break
                case .expired, .shuttingDown, .ended:
                    return Self.timeoutAnswer(read, from: from, cursor: cursor(client: clientCursor)).response
                case .cancelled:
                    throw CancellationError()
                }
            }
            switch await signal.wait(for: id, after: ticket, timeout: max(.zero, deadline - .now)) {
            case .changed:
                read = try await shared.read(path, stream: id, after: from, ticket: signal.ticket(for: id), maxBytes: limits.readChunkBytes)
                metrics.recordDelivery(read.result.records)
            case .timedOut, .shuttingDown:
                return Self.timeoutAnswer(read, from: from, cursor: cursor(client: clientCursor)).response
            case .cancelled:
                throw CancellationError()
            }
        }
    }

    // MARK: SSE

    /// - Parameter channel: the connection; given, an idle reader parks on the push path (no task wakes per reader
    ///   and batch) instead of waiting on the change signal itself, and the response ends when the client closes its
    ///   side of the connection (`HotPathHandler.endStreamOnInputClose`).
    func sse(_ path: StreamPath, start: ReadStart, clientCursor: String?, request: Request, channel: (any Channel)? = nil) async throws -> Response {
        let from = try await resolve(start, in: path)
        // The first read happens before the headers go out, so a missing stream or bad offset is a real 404/400.
        let first = try await store.read(path, after: from, maxBytes: limits.readChunkBytes)
        let cursorFloor = Int64(cursor(client: clientCursor)) ?? 0
        let metrics = self.metrics, deadline = ContinuousClock.now + limits.sseMaxDuration, instance = request.uri.path
        let body = ResponseBody { [self] writer in
            metrics.sseStarted()
            defer { metrics.sseEnded() }
            if let channel { HotPathHandler.endStreamOnInputClose(channel) }
            try? await followSSE(path, stream: first.info.id, first: SharedRead(first), after: from, until: deadline,
                                 cursorFloor: cursorFloor, instance: instance, channel: channel) { try await writer.write($0) }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: Self.sseFields(first.info.contentType), body: body)
    }

    /// The head of an SSE response for a stream of `type` (both paths).
    static func sseFields(_ type: ContentType) -> HTTPFields {
        var fields: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache", .xAccelBuffering: "no"]
        if !type.isText { fields[.streamSSEDataEncoding] = "base64" }
        return fields
    }

    /// The body of an SSE response after its head, for both paths: `first` (when given), then every batch after
    /// `after` as it is committed, until the stream closes, `deadline` passes, the server shuts down, or the stream
    /// cannot be read any more (an `error` event). Returns normally in all of those cases; throws when a write fails
    /// (the client left). The caller ends the response.
    /// - Parameter write: writes one chunk of the response body and returns when it was taken (backpressure).
    func followSSE(_ path: StreamPath, stream id: Int64, first: SharedRead?, after start: Offset, until deadline: ContinuousClock.Instant,
                   cursorFloor: Int64, instance: String, channel: (any Channel)?,
                   write: (ByteBuffer) async throws -> Void) async throws {
        var current = first
        var from = start
        while true {
            if let read = current {
                let result = read.result
                let closedNow = result.upToDate && result.info.closed
                if !result.records.isEmpty { metrics.recordDelivery(result.records) }
                try await write(Self.sseChunk(read, cursor: Self.sseCursor(cursors, floor: cursorFloor)))
                if closedNow { return }
                from = result.next
            }
            // Wait for something new: more records, or the close. Keep-alive comments while idle.
            var next: SharedRead?
            while next == nil {
                let ticket = signal.ticket(for: id)
                let check: SharedRead
                do {
                    check = try await shared.read(path, stream: id, after: from, ticket: ticket, maxBytes: limits.readChunkBytes)
                } catch let error as StoreError {
                    // Trimmed by retention (or deleted) while streaming: say so in the stream, then end it.
                    var out = ByteBuffer()
                    LiveFrames.sseError(HubProblem(error).document(instance: instance), into: &out)
                    try await write(out)
                    return
                }
                if !check.result.records.isEmpty || check.result.info.closed { next = check; break }
                let remaining = deadline - ContinuousClock.now
                guard remaining > .zero else { return }
                // A client cursor ahead of ours needs its own control events: only the others share pushes.
                if let channel, Self.sharesPushes(cursorFloor: cursorFloor, cursors) {
                    switch await push.park(path, key: id, after: from.position, channel: channel, delivery: .stream(.sse),
                                           deadline: deadline, tail: check) {
                    case .behind(let cursor):
                        // Refused (the group is not at this offset yet) or let go: wait on the signal from
                        // the ticket taken before the read, which returns at once for anything committed
                        // since, rather than spin between reads and park.
                        from = Offset(cursor)
                    case .ended, .expired, .shuttingDown, .cancelled, .answered: return
                    }
                }
                switch await signal.wait(for: id, after: ticket, timeout: min(limits.sseKeepAlive, remaining)) {
                case .changed: continue
                case .timedOut:
                    if ContinuousClock.now >= deadline { return }
                    try await write(SSE.keepAlive)
                case .shuttingDown, .cancelled: return
                }
            }
            current = next
        }
    }

    /// Whether an SSE reader whose client sent a cursor of `cursorFloor` may take the shared pushes, whose control
    /// events carry the current interval's cursor (a client cursor ahead of it needs its own).
    static func sharesPushes(cursorFloor: Int64, _ cursors: CursorClock) -> Bool {
        cursorFloor <= Int64(sseCursor(cursors, floor: 0)) ?? 0
    }

    // MARK: Responses

    /// What an SSE reader writes for one read: the `data` event (encoded once per shared read) and the `control`
    /// event with the next offset, the cursor, and up-to-date and closed as of that read.
    static func sseChunk(_ read: SharedRead, cursor: String) -> ByteBuffer {
        let result = read.result
        var out = ByteBuffer()
        if !result.records.isEmpty {
            var data = read.sseData
            out.writeBuffer(&data)
        }
        DSEvents.writeControl(next: result.next, cursor: cursor, upToDate: result.upToDate, closed: result.upToDate && result.info.closed, into: &out)
        return out
    }

    /// What an SSE reader that joins the push at the tail writes first (the hot path): the control event of an empty
    /// read at `offset`, as `sseChunk` writes it for a router reader that finds nothing new.
    static func sseTailChunk(at offset: Offset, cursor: String) -> ByteBuffer {
        var out = ByteBuffer()
        DSEvents.writeControl(next: offset, cursor: cursor, upToDate: true, closed: false, into: &out)
        return out
    }

    /// An SSE control event's cursor: the current interval's, or the client's when it is ahead (never backwards).
    static func sseCursor(_ cursors: CursorClock, floor: Int64) -> String {
        let current = Int64(cursors.cursor(nowMilliseconds: nowMs, client: nil, jitterSeconds: 1)) ?? 0
        return String(max(floor, current))
    }

    /// A read's answer, the same on both paths: the router returns it as a `Response`, the hot path writes it from
    /// the event loop.
    struct Answer {
        let status: HTTPResponse.Status
        let fields: HTTPFields
        let body: ByteBuffer?

        var response: Response {
            Response(status: status, headers: fields, body: body.map { .init(byteBuffer: $0) } ?? .init())
        }
    }

    /// A long-poll that has something to say: 200 with the records, or (none, the stream closed) 204 with the close.
    static func longPollAnswer(_ read: SharedRead, from: Offset, cursor: String) -> Answer {
        let result = read.result
        if result.records.isEmpty { return tailAnswer(contentType: result.info.contentType, next: result.info.head, closed: result.info.closed, cursor: cursor) }
        return dataAnswer(result, from: from, cursor: cursor, ifNoneMatch: nil, body: read.responseBody)
    }

    /// A long-poll that waited in vain (its timeout, or shutdown): 204 at the tail it waited at.
    static func timeoutAnswer(_ read: SharedRead, from: Offset, cursor: String) -> Answer {
        tailAnswer(contentType: read.result.info.contentType, next: from, closed: false, cursor: cursor)
    }

    /// 200 with data, or the empty read at the tail (Durable Streams §7.2–§7.3).
    private static func dataAnswer(_ result: ReadResult, from: Offset, cursor: String?, ifNoneMatch: String?, body: ByteBuffer? = nil) -> Answer {
        let info = result.info
        // The close is reported only with the final chunk (or the empty read at the tail), never on a partial read.
        let closedIncluded = result.upToDate && info.closed
        let etag = DSETag.make(stream: info.id, start: from, end: result.next, closed: closedIncluded)
        var fields: HTTPFields = [.contentType: info.contentType.raw, .streamNextOffset: result.next.wire, .eTag: etag]
        if result.upToDate { fields[.streamUpToDate] = "true" }
        if closedIncluded { fields[.streamClosed] = "true" }
        if let cursor, !info.closed { fields[.streamCursor] = cursor }
        // A chunk behind the tail never changes, so caches may keep it; a read at the tail must be revalidated.
        fields[.cacheControl] = result.upToDate ? "no-cache" : "public, max-age=60, stale-while-revalidate=300"
        if let ifNoneMatch, DSETag.matches(ifNoneMatch: ifNoneMatch, etag: etag) {
            return Answer(status: .notModified, fields: fields, body: nil)
        }
        return Answer(status: .ok, fields: fields, body: body ?? DSBody.encode(result.records, contentType: info.contentType))
    }

    private func dataResponse(_ result: ReadResult, from: Offset, cursor: String?, ifNoneMatch: String?) -> Response {
        Self.dataAnswer(result, from: from, cursor: cursor, ifNoneMatch: ifNoneMatch).response
    }

    /// The long-poll answer with nothing new (timed out, or closed at the tail): 204 with the tail.
    private static func tailAnswer(contentType: ContentType, next: Offset, closed: Bool, cursor: String?) -> Answer {
        var fields = tailFields(contentType: contentType, next: next, closed: closed)
        fields[.cacheControl] = "no-store"
        if let cursor, !closed { fields[.streamCursor] = cursor }
        return Answer(status: .noContent, fields: fields, body: nil)
    }

    private static func tailFields(contentType: ContentType, next: Offset, closed: Bool) -> HTTPFields {
        var fields: HTTPFields = [.contentType: contentType.raw, .streamNextOffset: next.wire, .streamUpToDate: "true"]
        if closed { fields[.streamClosed] = "true" }
        return fields
    }

    /// The `Stream-Cursor` for a reader that sent `client` (Durable Streams §8: never behind the client's).
    func cursor(client: String?) -> String {
        cursors.cursor(nowMilliseconds: Self.nowMs, client: client, jitterSeconds: Self.jitterSeconds())
    }

    /// SplitMix64 over one shared counter: the cursor's jitter only spreads clients apart, and `Int.random` costs a
    /// `getrandom` system call per long-poll answer.
    private static let jitterState = Atomic<UInt64>(UInt64.random(in: .min ... .max))

    static func jitterSeconds() -> Int {
        var z = jitterState.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Int(z % 3600) + 1
    }

    static var nowMs: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
