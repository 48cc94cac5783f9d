import HubCore
import Synchronization

/// Coalesces the identical reads of live readers woken by the same commit: a thousand SSE subscribers at the tail
/// of one stream wake together and would each run the same query; here one read runs and all of them share its
/// result (DESIGN §5: fan-out must not cost a database query per subscriber per message).
///
/// A reader may only join a read that started after every change it knows of: each flight records the change
/// ticket of the reader that started it, and a reader holding ticket T joins only a flight started at T or later.
/// Otherwise it could be handed data older than the change that woke it and then wait for a change already past.
final class SharedReads: Sendable {
    private struct Key: Hashable {
        let stream: Int64
        let after: UInt64
    }
    private struct Flight {
        let ticket: UInt64
        let id: UInt64
        let task: Task<ReadResult, any Error>
    }
    private struct State {
        var flights: [Key: Flight] = [:]
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())
    private let store: any StreamStore

    init(store: any StreamStore) { self.store = store }

    /// The records of `path` (stream `id`) after `offset`, as of a moment after the caller took `ticket`.
    func read(_ path: StreamPath, stream id: Int64, after offset: Offset, ticket: UInt64, maxBytes: Int) async throws -> ReadResult {
        let key = Key(stream: id, after: offset.position)
        let store = self.store
        let flight = state.withLock { state -> Flight in
            if let existing = state.flights[key], existing.ticket >= ticket { return existing }
            state.nextID &+= 1
            let flight = Flight(ticket: ticket, id: state.nextID, task: Task { try await store.read(path, after: offset, maxBytes: maxBytes) })
            state.flights[key] = flight
            return flight
        }
        defer {
            // The first reader to finish retires the flight; later wake-ups start a fresh read.
            state.withLock { state in if state.flights[key]?.id == flight.id { state.flights[key] = nil } }
        }
        return try await flight.task.value
    }
}
