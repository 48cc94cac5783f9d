import HubCore
import HubProtocol
import NIOCore
import Synchronization

/// A batch of records read once for every live subscriber woken by the same commit, with each wire form encoded
/// at most once (DESIGN §5: a committed batch is encoded once per format and shared by every subscriber).
final class LiveBatch: Sendable {
    enum Form: Hashable, Sendable {
        case webSocket(LiveFrames.Envelope)
        /// Events-surface SSE: the whole batch as one buffer.
        case sseEvents
    }

    let result: SlotReadResult
    private let encoded = Mutex<[Form: [ByteBuffer]]>([:])

    init(_ result: SlotReadResult) { self.result = result }

    var records: [SlotRecord] { result.records }

    /// One buffer per record for WebSocket forms, one buffer for the batch for SSE.
    func frames(_ form: Form) -> [ByteBuffer] {
        if let done = encoded.withLock({ $0[form] }) { return done }
        let frames: [ByteBuffer]
        switch form {
        case .webSocket(let envelope):
            frames = result.records.map { LiveFrames.webSocket(envelope, path: $0.path, contentType: $0.contentType, record: $0.record) }
        case .sseEvents:
            var out = ByteBuffer()
            for record in result.records { LiveFrames.sseEvent(record.record, into: &out) }
            frames = [out]
        }
        // Two subscribers may race to encode; both results are identical and the first one stays.
        return encoded.withLock { $0[form, default: frames] }
    }
}

/// Coalesces identical log reads of live subscribers, like `SharedReads` does for Durable Streams offsets: a reader
/// holding change ticket T joins only a read that started at T or later, so it can never miss the change that woke it.
final class SharedLogReads: Sendable {
    private struct Key: Hashable, Sendable {
        let scope: SlotScope
        let after: UInt64
    }
    private let flights = Flights<Key, LiveBatch>()
    private let store: any SlotLog
    /// Records per live read; consumers needing fewer take a prefix, so every reader shares the same flights.
    static let batchRecords = 1000
    let maxBytes: Int

    init(store: any SlotLog, maxBytes: Int) { self.store = store; self.maxBytes = maxBytes }

    func read(_ scope: SlotScope, after: UInt64, ticket: UInt64) async throws -> LiveBatch {
        let store = self.store, maxBytes = self.maxBytes
        return try await flights.join(Key(scope: scope, after: after), ticket: ticket) {
            LiveBatch(try await store.readLog(scope, after: after, limit: Self.batchRecords, maxBytes: maxBytes))
        }
    }
}

/// Follows a slot or stream by `seq` for one live subscriber: reads from its own cursor, hands each batch over,
/// and waits on the change signal (which carries no data) at the tail. One loop for events SSE and WebSocket.
struct LogFollower: Sendable {
    let store: any SlotLog
    let signal: any ChangeSignal
    let shared: SharedLogReads

    /// The first read, before any response goes out, so a missing slot or a cursor below retention is reported
    /// as an error of the request.
    func start(_ scope: SlotScope, after: UInt64) async throws -> LiveBatch {
        LiveBatch(try await store.readLog(scope, after: after, limit: SharedLogReads.batchRecords, maxBytes: shared.maxBytes))
    }

    /// The ticket for `key`, then a shared read: whatever commits after the ticket ends the next wait at once.
    func next(_ scope: SlotScope, key: Int64, after: UInt64) async throws -> (LiveBatch, ticket: UInt64) {
        let ticket = signal.ticket(for: key)
        return (try await shared.read(scope, after: after, ticket: ticket), ticket)
    }
}

/// Live subscribers per slot and the last time each slot was read live: `GET /v1/slot/{slot}/state`, the slot's
/// `max_subscribers` limit, and the connection listing.
final class SlotActivity: Sendable {
    private struct Entry { var subscribers = 0; var lastReadMs: Int64? }
    private let table = Mutex<[SlotName: Entry]>([:])

    /// Registers a subscriber unless the slot is at `limit`; false when it is full.
    func join(_ slot: SlotName, limit: Int64?, nowMs: Int64) -> Bool {
        table.withLock { table in
            var entry = table[slot] ?? Entry()
            if let limit, entry.subscribers >= limit { return false }
            entry.subscribers += 1
            entry.lastReadMs = nowMs
            table[slot] = entry
            return true
        }
    }

    func leave(_ slot: SlotName) {
        table.withLock { table in table[slot]?.subscribers -= 1 }
    }

    func read(_ slot: SlotName, nowMs: Int64) {
        table.withLock { table in table[slot, default: Entry()].lastReadMs = nowMs }
    }

    func figures(_ slot: SlotName) -> (subscribers: Int, lastReadMs: Int64?) {
        table.withLock { table in (table[slot]?.subscribers ?? 0, table[slot]?.lastReadMs) }
    }
}
