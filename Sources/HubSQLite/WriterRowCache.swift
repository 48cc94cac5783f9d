import CSQLite
import Glibc
import HubCore

/// The rows every append looks up, as the writer's connection last read or wrote them: a stream's row by path and a
/// slot's head. With them an append runs two statements instead of four (the two lookups were 11 % of a publish's
/// CPU, `perf`: SQL, stepping, and decoding the row's text columns).
///
/// It cannot disagree with the database, by construction:
/// - SQLite's update hook drops an entry as soon as any statement on the connection changes its row — a stream's
///   row, a slot's row, or any record in the slot's range of keys — whatever code ran the statement;
/// - an entry is put back only after the statements that changed its row succeeded, with what they wrote;
/// - every rollback, of the transaction or of a job's savepoint, empties it (`SQLiteConnection.rollback`): the rows
///   it undoes may have been put back here.
/// Only whoever holds the writer's connection uses it (the hook runs inside that thread's statements).
final class WriterRowCache {
    /// Past this many streams (or slots) the cache starts over (a few hundred bytes each).
    static let maxEntries = 10_000

    private var streams: [StreamPath: StreamRow] = [:]
    private var pathsByID: [Int64: StreamPath] = [:]
    /// Each slot's state after its newest record: `headSeq` is the slot's head.
    private var slots: [Int64: SlotLimitState] = [:]

    /// A cache that watches `connection`'s changes; the connection keeps it, and unhooks it when it closes.
    init(watching connection: OpaquePointer) {
        sqlite3_update_hook(connection, { context, _, _, table, rowid in
            guard let context, let table else { return }
            Unmanaged<WriterRowCache>.fromOpaque(context).takeUnretainedValue().changed(table: table, rowid: rowid)
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    func stream(_ path: StreamPath) -> StreamRow? { streams[path] }

    /// Keeps `row`, which is what the connection reads for its stream now.
    func remember(_ row: StreamRow) {
        if streams.count >= Self.maxEntries { clear() }
        if let old = pathsByID.updateValue(row.path, forKey: row.id), old != row.path { streams[old] = nil }
        streams[row.path] = row
    }

    func slot(_ id: Int64) -> SlotLimitState? { slots[id] }

    /// Keeps `slot`, whose `headSeq` is the slot's head now.
    func remember(_ slot: SlotLimitState) {
        if slots.count >= Self.maxEntries { slots = [:] }
        slots[slot.id] = slot
    }

    func clear() {
        streams = [:]
        pathsByID = [:]
        slots = [:]
    }

    /// A row of `table` changed (inserted, updated or deleted).
    private func changed(table: UnsafePointer<CChar>, rowid: Int64) {
        switch table[0] {
        case 114 where strcmp(table, "records") == 0:  // "r"
            if !slots.isEmpty { slots[rowid >> RecordKey.seqBits] = nil }
        case 115 where strcmp(table, "streams") == 0:  // "s"
            if let path = pathsByID.removeValue(forKey: rowid) { streams[path] = nil }
        case 115 where strcmp(table, "slots") == 0:
            slots[rowid] = nil
        default:
            break
        }
    }
}
