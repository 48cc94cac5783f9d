import HubCore
import HubProtocol
import NIOCore
import NIOHTTPTypes
import NIOWebSocket

/// WebSocket subscribers of a slot scope, by `seq`: each batch as text frames in the subscriber's envelope.
struct SlotTailFeed: TailFeed {
    let shared: SharedLogReads

    func read(_ scope: SlotScope, after cursor: UInt64, ticket: UInt64) async throws -> LiveBatch {
        try await shared.read(scope, after: cursor, ticket: ticket)
    }
    func isEmpty(_ batch: LiveBatch) -> Bool { batch.records.isEmpty }
    func next(_ batch: LiveBatch) -> UInt64 { batch.result.next }
    func ends(_ batch: LiveBatch) -> Bool { false }
    func parts(_ batch: LiveBatch, form: LiveBatch.Form) -> [WebSocketFrame] {
        batch.frames(form).map { WebSocketFrame(fin: true, opcode: .text, data: $0) }
    }
    func write(_ parts: [WebSocketFrame], to channel: any Channel) {
        for frame in parts { channel.write(frame, promise: nil) }
    }
    func delivered(_ batch: LiveBatch, metrics: HubMetrics) { metrics.recordDelivery(batch.records.map(\.record)) }
    var keepAlive: (interval: Duration, parts: [WebSocketFrame])? { nil }
}

/// Durable Streams SSE readers of one stream, by offset: each batch as the `data` and `control` events every reader
/// at the tail would write (`StreamReads.sseChunk`), as body parts of their open responses; keep-alive comments while
/// the stream is idle.
struct StreamTailFeed: TailFeed {
    struct Scope: Hashable, Sendable {
        let id: Int64
        let path: StreamPath
    }
    /// One form: the stream's content type decides text or base64 for every reader alike.
    enum Form: Hashable, Sendable { case sse }

    let shared: SharedReads
    let maxBytes: Int
    let cursors: CursorClock
    let keepAliveInterval: Duration

    func read(_ scope: Scope, after cursor: UInt64, ticket: UInt64) async throws -> SharedRead {
        try await shared.read(scope.path, stream: scope.id, after: Offset(cursor), ticket: ticket, maxBytes: maxBytes)
    }
    func isEmpty(_ batch: SharedRead) -> Bool { batch.result.records.isEmpty && !ends(batch) }
    func next(_ batch: SharedRead) -> UInt64 { batch.result.next.position }
    func ends(_ batch: SharedRead) -> Bool { batch.result.upToDate && batch.result.info.closed }
    func parts(_ batch: SharedRead, form: Form) -> [ByteBuffer] {
        [StreamReads.sseChunk(batch, cursor: StreamReads.sseCursor(cursors, floor: 0))]
    }
    func write(_ parts: [ByteBuffer], to channel: any Channel) {
        for part in parts { channel.write(HTTPResponsePart.body(part), promise: nil) }
    }
    func delivered(_ batch: SharedRead, metrics: HubMetrics) { metrics.recordDelivery(batch.result.records) }
    var keepAlive: (interval: Duration, parts: [ByteBuffer])? { (keepAliveInterval, [SSE.keepAlive]) }
}
