import HTTPTypes
import HubCore
import HubProtocol
import NIOCore
import Synchronization

/// One shared read and its wire forms, each encoded at most once for every reader that shares the read: the
/// SSE `data` event and the catch-up/long-poll body are the same bytes for all of them.
final class SharedRead: Sendable {
    let result: ReadResult
    private let sse = Mutex<ByteBuffer?>(nil)
    private let body = Mutex<ByteBuffer?>(nil)

    /// What a long-poll response written from this read depends on besides the read itself and the poller's
    /// `Stream-Cursor` (each poller's own: a client that echoes the cursor gets a jittered one of its own).
    struct AnswerKey: Equatable, Sendable {
        let from: Offset
        let method: HTTPRequest.Method
        let close: Bool
        /// The fields every response carries (`CommonResponseFields`: the date changes every second).
        let common: ByteBuffer
    }
    /// A long-poll response as bytes, but for its cursor: the head without its `Stream-Cursor` line and without the
    /// blank line that ends it, then the body.
    struct EncodedAnswer: Sendable {
        let status: HTTPResponse.Status
        let openHead: ByteBuffer
        /// The response carries a `Stream-Cursor` (not when the stream is closed).
        let carriesCursor: Bool
        let body: ByteBuffer?
    }
    private let answer = Mutex<(key: AnswerKey, encoded: EncodedAnswer)?>(nil)

    /// The long-poll response for `key`, made by `make` unless the last one made was for the same key: a batch
    /// answers every long-poller of its group at once with the same bytes but for the cursor, which are then built
    /// and encoded once instead of once per poller.
    func answer(for key: AnswerKey, _ make: () -> EncodedAnswer) -> EncodedAnswer {
        if let last = answer.withLock({ $0 }), last.key == key { return last.encoded }
        let made = make()
        answer.withLock { $0 = (key, made) }
        return made
    }

    init(_ result: ReadResult) { self.result = result }

    /// `event: data` with the records (empty when there are none).
    var sseData: ByteBuffer {
        Self.once(sse) {
            var out = ByteBuffer()
            if !result.records.isEmpty { DSEvents.writeData(result.records, contentType: result.info.contentType, into: &out) }
            return out
        }
    }

    /// The body of a read response.
    var responseBody: ByteBuffer { Self.once(body) { DSBody.encode(result.records, contentType: result.info.contentType) } }

    private static func once(_ slot: borrowing Mutex<ByteBuffer?>, _ make: () -> ByteBuffer) -> ByteBuffer {
        if let done = slot.withLock({ $0 }) { return done }
        let made = make()
        return slot.withLock { value in
            if let done = value { return done }
            value = made
            return made
        }
    }
}

/// Coalesces the identical reads of live readers woken by the same commit: a thousand SSE subscribers at the tail
/// of one stream wake together and would each run the same query; here one read runs and all of them share its
/// result (DESIGN §5: fan-out must not cost a database query per subscriber per message).
///
/// A reader may only join a read that started after every change it knows of: each flight records the change
/// ticket of the reader that started it, and a reader holding ticket T joins only a flight started at T or later.
/// Otherwise it could be handed data older than the change that woke it and then wait for a change already past.
final class SharedReads: Sendable {
    private struct Key: Hashable, Sendable {
        let stream: Int64
        let after: UInt64
    }
    private let flights = Flights<Key, SharedRead>()
    private let store: any StreamStore

    init(store: any StreamStore) { self.store = store }

    /// The records of `path` (stream `id`) after `offset`, as of a moment after the caller took `ticket`.
    func read(_ path: StreamPath, stream id: Int64, after offset: Offset, ticket: UInt64, maxBytes: Int) async throws -> SharedRead {
        let store = self.store
        return try await flights.join(Key(stream: id, after: offset.position), ticket: ticket) {
            SharedRead(try await store.read(path, after: offset, maxBytes: maxBytes))
        }
    }
}

/// Identical reads in flight, by key: a caller holding change ticket T joins a flight started at T or later, or
/// starts a new one (see `SharedReads` for why). The first caller to finish retires the flight, so later
/// wake-ups read afresh.
final class Flights<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Flight {
        let ticket: UInt64
        let id: UInt64
        let task: Task<Value, any Error>
    }
    private let state = Mutex<(table: [Key: Flight], nextID: UInt64)>(([:], 0))

    func join(_ key: Key, ticket: UInt64, read: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let flight = state.withLock { state -> Flight in
            if let existing = state.table[key], existing.ticket >= ticket { return existing }
            state.nextID &+= 1
            let flight = Flight(ticket: ticket, id: state.nextID, task: Task { try await read() })
            state.table[key] = flight
            return flight
        }
        defer { state.withLock { state in if state.table[key]?.id == flight.id { state.table[key] = nil } } }
        return try await flight.task.value
    }
}
