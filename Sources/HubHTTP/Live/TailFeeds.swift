import HubCore
import HubProtocol
import NIOCore

/// WebSocket subscribers of a slot scope, by `seq`: each batch as text frames in the subscriber's envelope.
struct SlotTailFeed: TailFeed {
    let shared: SharedLogReads

    func read(_ scope: SlotScope, key: Int64, after cursor: UInt64, ticket: UInt64) async throws -> LiveBatch {
        try await shared.read(scope, after: cursor, ticket: ticket)
    }
    func isEmpty(_ batch: LiveBatch) -> Bool { batch.records.isEmpty }
    func next(_ batch: LiveBatch) -> UInt64 { batch.result.next }
    func ends(_ batch: LiveBatch) -> Bool { false }
    /// Subscribers park only without per-frame work (no permessage-deflate), so a frame is the same bytes for all.
    func wire(_ batch: LiveBatch, form: LiveBatch.Form) -> ByteBuffer { WireFraming.webSocketTextFrames(batch.frames(form)) }
    func delivered(_ batch: LiveBatch, metrics: HubMetrics) { metrics.recordDelivery(batch.records.map(\.record)) }
    var keepAlive: (interval: Duration, wire: ByteBuffer)? { nil }
}

/// Durable Streams readers of one stream, by offset. SSE readers stream: each batch as the `data` and `control`
/// events every reader at the tail would write (`StreamReads.sseChunk`), as one chunk of their open responses;
/// keep-alive comments while the stream is idle. Long-polls take one batch and answer it themselves.
struct StreamTailFeed: TailFeed {
    /// Groups are found by path (the hot path's long-polls know only that); the change key is the stream's id, which
    /// tells one incarnation of the path from the next.
    typealias Scope = StreamPath
    /// One form: the stream's content type decides text or base64 for every reader alike.
    enum Form: Hashable, Sendable { case sse }

    let shared: SharedReads
    let maxBytes: Int
    let cursors: CursorClock
    let keepAliveInterval: Duration

    func read(_ scope: Scope, key: Int64, after cursor: UInt64, ticket: UInt64) async throws -> SharedRead {
        try await shared.read(scope, stream: key, after: Offset(cursor), ticket: ticket, maxBytes: maxBytes)
    }
    func isEmpty(_ batch: SharedRead) -> Bool { batch.result.records.isEmpty && !ends(batch) }
    func next(_ batch: SharedRead) -> UInt64 { batch.result.next.position }
    func ends(_ batch: SharedRead) -> Bool { batch.result.upToDate && batch.result.info.closed }
    /// One chunk of the reader's chunked response (its head went out through the HTTP encoder, which frames the
    /// catch-up chunks and the last chunk the same way).
    func wire(_ batch: SharedRead, form: Form) -> ByteBuffer {
        WireFraming.httpChunk(StreamReads.sseChunk(batch, cursor: StreamReads.sseCursor(cursors, floor: 0)))
    }
    func delivered(_ batch: SharedRead, metrics: HubMetrics) { metrics.recordDelivery(batch.result.records) }
    var keepAlive: (interval: Duration, wire: ByteBuffer)? { (keepAliveInterval, Self.keepAliveChunk) }
    private static let keepAliveChunk = WireFraming.httpChunk(SSE.keepAlive)
}
