import HubCore
import NIOCore
import PostgresNIO

/// The slot as one log, by `seq` (HubSQLite's `SlotLogQueries`, for PostgreSQL), and the slot row lock every writer
/// takes first.
enum PostgresSlotLogQueries {
    private static let slotColumns = "id, head_seq, floor_seq, max_age_s, max_bytes, max_records"

    private static func slotRow(_ r: PostgresRandomAccessRow) throws -> SlotRow {
        SlotRow(id: try r.int(0), headSeq: try r.seq(1), floorSeq: try r.seq(2), maxAgeSeconds: try r.optionalInt(3), maxBytes: try r.optionalInt(4),
                maxRecords: try r.optionalInt(5))
    }

    /// Locks the slot's row until the transaction ends — the one serialization point of all writes to a slot, on every
    /// node — creating the slot first when asked. nil when it does not exist.
    @discardableResult
    static func lockSlot(_ db: PostgresSession, _ name: SlotName, creating: Bool = false, nowMs: Int64 = 0) async throws -> SlotRow? {
        if creating {
            try await db.run("INSERT INTO slots(name, created_ms) VALUES(\(name.rawValue), \(nowMs)) ON CONFLICT (name) DO NOTHING")
        }
        return try await db.first("SELECT \(unescaped: slotColumns) FROM slots WHERE name = \(name.rawValue) FOR UPDATE").map(slotRow)
    }

    static func slot(_ db: PostgresSession, _ name: SlotName) async throws -> SlotRow {
        guard let row = try await db.first("SELECT \(unescaped: slotColumns) FROM slots WHERE name = \(name.rawValue)").map(slotRow) else {
            throw StoreError.slotNotFound(name)
        }
        return row
    }

    // MARK: Events

    static func appendEvents(_ db: PostgresSession, slot: SlotName, events: [NewEvent], createsSlot: Bool, dedupWindowMs: Int64, nowMs: Int64,
                             changed: inout Set<Int64>) async throws -> [UInt64] {
        let inbox = StreamPath(slot.rawValue)!
        guard try await lockSlot(db, slot, creating: createsSlot, nowMs: nowMs) != nil else { throw StoreError.slotNotFound(slot) }
        var row: StreamRow
        if let existing = try await PostgresStreamQueries.live(db, path: inbox, nowMs: nowMs, changed: &changed) {
            row = existing
        } else {
            _ = try await PostgresStreamQueries.create(db, path: inbox, request: CreateRequest(contentType: .json, createsSlot: createsSlot),
                                                       nowMs: nowMs, changed: &changed)
            guard let created = try await PostgresStreamQueries.load(db, path: inbox) else { throw StoreError.backend("inbox vanished") }
            row = created
        }
        if row.deleted { throw StoreError.streamGone(inbox) }
        if row.closed { throw StoreError.streamClosed(head: Offset(row.head)) }
        guard row.contentType.isJSON else { throw StoreError.contentTypeMismatch(expected: row.contentType.raw) }

        // Keys seen within the window answer their first seq; repeated keys inside this request store one event.
        let keys = EventKeyPlan(events)
        var known: [String: UInt64] = [:]
        if !keys.keys.isEmpty {
            for r in try await db.rows("""
                SELECT key, seq FROM event_keys WHERE slot_id = \(row.slotID) AND key = ANY(\(keys.keys)) AND created_ms >= \(nowMs - dedupWindowMs)
                """) {
                known[try r.text(0)] = try r.seq(1)
            }
        }
        let plan = keys.resolving(known: known, events)
        var stored: [UInt64] = []
        if !plan.fresh.isEmpty {
            let appended = try await PostgresStreamQueries.insertRecords(db, plan.fresh.map { NewMessage(body: events[$0].body, type: events[$0].type) },
                                                                         into: row, nowMs: nowMs)
            stored = (0..<UInt64(appended.count)).map { appended.firstSeq + $0 }
            let keyed = zip(plan.fresh, stored).compactMap { i, seq in events[i].key.map { ($0, Int64(seq)) } }
            if !keyed.isEmpty {
                try await db.run("""
                    INSERT INTO event_keys(slot_id, key, seq, created_ms)
                    SELECT \(row.slotID), k, s, \(nowMs) FROM unnest(\(keyed.map(\.0))::text[], \(keyed.map(\.1))::bigint[]) AS u(k, s)
                    ON CONFLICT (slot_id, key) DO UPDATE SET seq = excluded.seq, created_ms = excluded.created_ms
                    """)
            }
            row.head += UInt64(appended.count)
            try await db.run("""
                UPDATE streams SET head = \(Int64(row.head)), record_count = record_count + \(Int64(appended.count)),
                    byte_count = byte_count + \(Int64(appended.bytes)), accessed_ms = \(nowMs) WHERE id = \(row.id)
                """)
            changed.insert(row.id)
            changed.insert(ChangeKey.slot(row.slotID))
        }
        return plan.seqs(events, known: known, stored: stored)
    }

    // MARK: Reading

    static func readLog(_ db: PostgresSession, scope: SlotScope, after: UInt64, limit: Int, maxBytes: Int, nowMs: Int64) async throws -> SlotReadResult {
        let slot = try await slot(db, scope.slot)
        guard after <= slot.headSeq else { throw StoreError.seqOutOfRange(requested: after, head: slot.headSeq) }
        let floor: UInt64, key: Int64, query: PostgresQuery
        switch scope {
        case .slot:
            floor = slot.floorSeq
            key = ChangeKey.slot(slot.id)
            query = """
                SELECT r.seq, r.pos, r.ts_ms, r.type, r.body, s.path, s.content_type FROM records r JOIN streams s ON s.id = r.stream_id
                WHERE r.slot_id = \(slot.id) AND r.seq > \(Int64(after)) AND NOT s.deleted ORDER BY r.seq LIMIT \(Int64(limit))
                """
        case .stream(let path):
            let row = try await PostgresStreamQueries.readable(db, path: path, nowMs: nowMs)
            floor = row.trimmedSeq
            key = row.id
            query = """
                SELECT seq, pos, ts_ms, type, body, \(path.rawValue)::text, \(row.contentType.raw)::text FROM records
                WHERE stream_id = \(row.id) AND seq > \(Int64(after)) ORDER BY seq LIMIT \(Int64(limit))
                """
        }
        if after > 0 && after < floor { throw StoreError.belowRetention(floor: .seq(floor)) }
        var records: [SlotRecord] = []
        var bytes = 0
        var streams = StreamIdentities()
        for r in try await db.rows(query) {
            let body = try r.bytes(4)
            let stream = try streams.resolve(path: try r.text(5)) { try r.text(6) }
            let record = StoredRecord(offset: Offset(try r.seq(1)), seq: try r.seq(0), timestampMilliseconds: try r.int(2), type: try r.optionalText(3),
                                      body: body)
            records.append(SlotRecord(path: stream.0, contentType: stream.1, record: record))
            bytes += body.readableBytes
            if bytes >= maxBytes { break }
        }
        return SlotReadResult(records: records, headSeq: slot.headSeq, floorSeq: floor, changeKey: key, next: records.last?.seq ?? after)
    }

    static func logState(_ db: PostgresSession, _ name: SlotName) async throws -> SlotLogState {
        let slot = try await slot(db, name)
        let totals = try await db.first("""
            SELECT coalesce(sum(record_count), 0)::bigint, coalesce(sum(byte_count), 0)::bigint FROM streams WHERE slot_id = \(slot.id)
            """)
        return SlotLogState(headSeq: slot.headSeq, floorSeq: slot.floorSeq, records: try totals?.int(0) ?? 0, bytes: try totals?.int(1) ?? 0)
    }

    // MARK: Consumers

    private static let consumerColumns = "c.name, c.stream, c.acked_seq, c.ack_wait_ms, c.max_in_flight, c.created_ms, c.updated_ms, s.name, s.head_seq"

    private static func consumer(_ r: PostgresRandomAccessRow) throws -> ConsumerState {
        guard let slot = SlotName(try r.text(7)) else { throw StoreError.backend("corrupt slot name") }
        let scope: SlotScope
        if let raw = try r.optionalText(1) {
            guard let path = StreamPath(raw) else { throw StoreError.backend("corrupt consumer stream \(raw)") }
            scope = .stream(path)
        } else {
            scope = .slot(slot)
        }
        return ConsumerState(slot: slot, name: try r.text(0), scope: scope, ackedSeq: try r.seq(2), ackWaitMs: try r.int(3), maxInFlight: try r.int(4),
                             createdAtMs: try r.int(5), updatedAtMs: try r.int(6), headSeq: try r.seq(8))
    }

    static func consumers(_ db: PostgresSession, slot: SlotName?) async throws -> [ConsumerState] {
        if let slot {
            return try await db.rows("""
                SELECT \(unescaped: consumerColumns) FROM consumers c JOIN slots s ON s.id = c.slot_id WHERE s.name = \(slot.rawValue) ORDER BY c.name
                """).map(consumer)
        }
        return try await db.rows("SELECT \(unescaped: consumerColumns) FROM consumers c JOIN slots s ON s.id = c.slot_id ORDER BY s.name, c.name")
            .map(consumer)
    }

    static func openConsumer(_ db: PostgresSession, name: String, scope: SlotScope, ackWaitMs: Int64, maxInFlight: Int64,
                             nowMs: Int64) async throws -> ConsumerState {
        let slot = try await slot(db, scope.slot)
        // Two nodes opening one new consumer at once: the insert that loses the race finds the winner's row.
        try await db.run("""
            INSERT INTO consumers(slot_id, name, stream, acked_seq, ack_wait_ms, max_in_flight, created_ms, updated_ms)
            VALUES(\(slot.id), \(name), \(scope.streamPath?.rawValue), 0, \(ackWaitMs), \(maxInFlight), \(nowMs), \(nowMs))
            ON CONFLICT (slot_id, name) DO NOTHING
            """)
        guard var existing = try await db.first("""
            SELECT \(unescaped: consumerColumns) FROM consumers c JOIN slots s ON s.id = c.slot_id WHERE c.slot_id = \(slot.id) AND c.name = \(name)
            FOR UPDATE OF c
            """).map(consumer) else { throw StoreError.backend("opened consumer vanished") }
        guard existing.scope == scope else { throw StoreError.consumerConflict(name, existing: existing.scope.description) }
        try await db.run("""
            UPDATE consumers SET ack_wait_ms = \(ackWaitMs), max_in_flight = \(maxInFlight), updated_ms = \(nowMs)
            WHERE slot_id = \(slot.id) AND name = \(name)
            """)
        existing.ackWaitMs = ackWaitMs; existing.maxInFlight = maxInFlight; existing.updatedAtMs = nowMs
        return existing
    }

    static func acknowledge(_ db: PostgresSession, name: String, slot slotName: SlotName, seq: UInt64, nowMs: Int64) async throws -> UInt64 {
        let slot = try await slot(db, slotName)
        guard seq <= slot.headSeq else { throw StoreError.seqOutOfRange(requested: seq, head: slot.headSeq) }
        guard let acked = try await db.first("""
            UPDATE consumers SET acked_seq = greatest(acked_seq, \(Int64(seq))), updated_ms = \(nowMs)
            WHERE slot_id = \(slot.id) AND name = \(name) RETURNING acked_seq
            """) else { throw StoreError.consumerNotFound(name) }
        return try acked.seq(0)
    }

    static func deleteConsumer(_ db: PostgresSession, name: String, slot slotName: SlotName, actor: String, nowMs: Int64) async throws {
        let slot = try await slot(db, slotName)
        guard try await db.first("DELETE FROM consumers WHERE slot_id = \(slot.id) AND name = \(name) RETURNING 1") != nil else {
            throw StoreError.consumerNotFound(name)
        }
        try await PostgresAdminQueries.audit(db, actor: actor, action: "consumer.reset", target: "\(slotName)/\(name)", nowMs: nowMs)
    }

    // MARK: Retention

    /// Most records one retention pass removes from a slot, so one transaction never holds the slot lock for long.
    static let trimBatch: UInt64 = 20_000

    /// Applies `slot`'s retention (its row locked by the caller); returns the records removed (at most `trimBatch`).
    static func applyRetention(_ db: PostgresSession, slot: SlotRow, nowMs: Int64) async throws -> Int {
        var through = slot.floorSeq
        if let maxRecords = slot.maxRecords, slot.headSeq > UInt64(maxRecords) {
            through = max(through, slot.headSeq - UInt64(maxRecords))
        }
        if let maxAge = slot.maxAgeSeconds {
            // Records are in seq order and timestamps follow commit order: the expired ones are a prefix.
            let cutoff = nowMs - maxAge * 1000
            if let last = try await db.first("""
                SELECT max(seq) FROM (SELECT seq, ts_ms FROM records WHERE slot_id = \(slot.id) AND seq > \(Int64(slot.floorSeq))
                ORDER BY seq LIMIT \(Int64(trimBatch))) AS oldest WHERE ts_ms < \(cutoff)
                """).flatMap({ try $0.optionalInt(0) }) {
                through = max(through, UInt64(last))
            }
        }
        if let maxBytes = slot.maxBytes {
            let total = try await db.first("SELECT coalesce(sum(byte_count), 0)::bigint FROM streams WHERE slot_id = \(slot.id)").map { try $0.int(0) } ?? 0
            if total > maxBytes {
                // The smallest prefix of the log whose removal brings the slot under its limit.
                if let last = try await db.first("""
                    SELECT min(seq) FROM (SELECT seq, sum(length(body)::bigint) OVER (ORDER BY seq) AS running FROM records
                    WHERE slot_id = \(slot.id) AND seq > \(Int64(slot.floorSeq)) ORDER BY seq LIMIT \(Int64(trimBatch))) AS prefix
                    WHERE running >= \(total - maxBytes)
                    """).flatMap({ try $0.optionalInt(0) }) {
                    through = max(through, UInt64(last))
                } else if let last = try await db.first("""
                    SELECT max(seq) FROM (SELECT seq FROM records WHERE slot_id = \(slot.id) AND seq > \(Int64(slot.floorSeq))
                    ORDER BY seq LIMIT \(Int64(trimBatch))) AS prefix
                    """).flatMap({ try $0.optionalInt(0) }) {
                    through = max(through, UInt64(last))
                }
            }
        }
        through = min(through, slot.floorSeq + trimBatch)
        guard through > slot.floorSeq else { return 0 }
        return try await trim(db, slotID: slot.id, through: through)
    }

    /// Removes the slot's records with `seq <= through` and raises the floors of the slot and of each stream touched.
    static func trim(_ db: PostgresSession, slotID: Int64, through: UInt64) async throws -> Int {
        let removed = try await db.rows("""
            WITH gone AS (DELETE FROM records WHERE slot_id = \(slotID) AND seq <= \(Int64(through)) RETURNING stream_id, pos, seq, length(body) AS bytes),
            per_stream AS (SELECT stream_id, count(*) AS n, sum(bytes)::bigint AS b, max(pos) AS p, max(seq) AS s FROM gone GROUP BY stream_id)
            UPDATE streams SET record_count = record_count - per_stream.n, byte_count = byte_count - per_stream.b,
                trimmed_pos = greatest(trimmed_pos, per_stream.p), trimmed_seq = greatest(trimmed_seq, per_stream.s)
            FROM per_stream WHERE streams.id = per_stream.stream_id RETURNING per_stream.n
            """)
        try await db.run("UPDATE slots SET floor_seq = greatest(floor_seq, \(Int64(through))) WHERE id = \(slotID)")
        return try removed.reduce(0) { $0 + Int(try $1.int(0)) }
    }

    static func slotsWithRetention(_ db: PostgresSession) async throws -> [SlotName] {
        try await db.rows("SELECT name FROM slots WHERE max_age_s IS NOT NULL OR max_bytes IS NOT NULL OR max_records IS NOT NULL")
            .compactMap { SlotName(try $0.text(0)) }
    }
}
