import CSQLite
import HubCore

/// What `hubctl verify` found in a store file.
public struct StoreVerification: Sendable {
    public var schemaVersion: Int
    public var slots = 0
    public var streams = 0
    public var records: Int64 = 0
    /// Everything found wrong, one sentence each. Empty means the store is sound.
    public var problems: [String] = []
    /// Checks that could not run, and why (an older schema).
    public var skipped: [String] = []

    public var isSound: Bool { problems.isEmpty }
}

/// Offline integrity checks of a SQLite store file (a live hub's, read-only, or a backup): SQLite's own
/// `integrity_check` and `foreign_key_check`, then the store's invariants:
/// - per slot, every record's seq is above the retention floor, and the floor is at most the head (seqs are unique:
///   they are the record's rowid, `RecordKey`; the head is at least the newest seq by construction, `SlotHead`);
/// - per stream, positions are contiguous up to the stream's head, seqs increase with position (the order of
///   appends), and the stored record and byte counters match the records;
/// - every consumer's acknowledged seq is at most its slot's head.
/// Gaps between a slot's seqs are legitimate: a deleted or expired stream takes its records with it.
public enum StoreVerifier {
    public static func verify(path: String) throws(StoreError) -> StoreVerification {
        let db: SQLiteConnection
        do { db = try SQLiteConnection(path: path, readOnly: true) } catch { throw .backend(error.description) }
        let version = try db.first("PRAGMA user_version") { Int($0.int(0)) } ?? 0
        var report = StoreVerification(schemaVersion: version)
        let integrity = try db.query("PRAGMA integrity_check") { $0.text(0) }
        if integrity != ["ok"] { report.problems += integrity.map { "SQLite integrity: \($0)" } }
        let foreign = try db.query("PRAGMA foreign_key_check") { "\($0.text(0)) row \($0.int(1)) points at a missing \($0.text(2)) row" }
        report.problems += foreign
        guard version > 0 else {
            report.problems.append("not an EventHub store: it has no schema version")
            return report
        }
        guard version <= Migrations.all.count else {
            report.problems.append("written by a newer hubd (schema \(version); this hubctl knows \(Migrations.all.count))")
            return report
        }
        guard version == Migrations.all.count else {
            report.skipped.append("store invariants: schema \(version) is older than \(Migrations.all.count); start hubd once to migrate it")
            return report
        }
        try checkSlots(db, &report)
        try checkStreams(db, &report)
        let consumers = try db.query("""
            SELECT s.name, c.name, c.acked_seq, \(SlotHead.sql) AS head FROM consumers c JOIN slots s ON s.id = c.slot_id WHERE c.acked_seq > head
            """) { "consumer \($0.text(1)) of slot \($0.text(0)) acknowledged seq \($0.int(2)), beyond the slot's head \($0.int(3))" }
        report.problems += consumers
        return report
    }

    private static func checkSlots(_ db: SQLiteConnection, _ report: inout StoreVerification) throws(StoreError) {
        let slots = try db.query("""
            SELECT s.name, \(SlotHead.sql), s.floor_seq, min(r.seq), count(r.seq)
            FROM slots s LEFT JOIN records r ON \(RecordKey.inSlotSQL(id: "r.id", slot: "s.id")) GROUP BY s.id ORDER BY s.name
            """) { ($0.text(0), $0.int(1), $0.int(2), $0.optionalInt(3), $0.int(4)) }
        report.slots = slots.count
        for (name, head, floor, lowest, count) in slots {
            report.records += count
            if floor > head { report.problems.append("slot \(name): retention floor \(floor) is above its head seq \(head)") }
            if let lowest, lowest <= floor { report.problems.append("slot \(name): a record has seq \(lowest), at or below the retention floor \(floor)") }
        }
        let orphans = try db.first("SELECT count(*) FROM records WHERE slot_id NOT IN (SELECT id FROM slots)") { $0.int(0) } ?? 0
        if orphans > 0 { report.problems.append("\(orphans) records belong to no slot") }
    }

    private static func checkStreams(_ db: SQLiteConnection, _ report: inout StoreVerification) throws(StoreError) {
        let streams = try db.query("""
            SELECT st.path, st.head, st.record_count, st.byte_count, count(r.pos), min(r.pos), max(r.pos), coalesce(sum(length(r.body)), 0)
            FROM streams st LEFT JOIN records r ON r.stream_id = st.id GROUP BY st.id ORDER BY st.path
            """) { ($0.text(0), $0.int(1), $0.int(2), $0.int(3), $0.int(4), $0.optionalInt(5), $0.optionalInt(6), $0.int(7)) }
        report.streams = streams.count
        for (path, head, recordCount, byteCount, count, lowest, highest, bytes) in streams {
            if count != recordCount { report.problems.append("stream \(path): counts \(recordCount) records but holds \(count)") }
            if bytes != byteCount { report.problems.append("stream \(path): counts \(byteCount) bytes but holds \(bytes)") }
            guard let lowest, let highest else { continue }
            if highest != head { report.problems.append("stream \(path): its last record is at position \(highest), its head at \(head)") }
            if highest - lowest + 1 != count { report.problems.append("stream \(path): positions \(lowest)...\(highest) have gaps (\(count) records)") }
        }
        let disordered = try db.query("""
            SELECT st.path, b.pos FROM records a JOIN records b ON b.stream_id = a.stream_id AND b.pos = a.pos + 1
            JOIN streams st ON st.id = a.stream_id WHERE b.seq <= a.seq LIMIT 20
            """) { "stream \($0.text(0)): the record at position \($0.int(1)) has a seq not above its predecessor's" }
        report.problems += disordered
        let orphans = try db.first("SELECT count(*) FROM records WHERE stream_id NOT IN (SELECT id FROM streams)") { $0.int(0) } ?? 0
        if orphans > 0 { report.problems.append("\(orphans) records belong to no stream") }
    }
}
