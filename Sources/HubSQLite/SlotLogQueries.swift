import CSQLite
import HubCore
import NIOCore

/// The slot as one log, by `seq`: the events surface's inbox appends, reads for live subscriptions, durable
/// consumers and retention. Same conventions as `StreamQueries`: writes run in the writer's transaction and report
/// what changed, reads run in one snapshot.
enum SlotLogQueries {
    static func slot(_ db: SQLiteConnection, _ name: SlotName) throws(StoreError) -> SlotRow {
        let row = try db.first(slotByName, [.text(name.rawValue)]) { s in
            SlotRow(id: s.int(0), headSeq: UInt64(s.int(1)), floorSeq: UInt64(s.int(2)), maxAgeSeconds: s.optionalInt(3),
                    maxBytes: s.optionalInt(4), maxRecords: s.optionalInt(5))
        }
        guard let row else { throw .slotNotFound(name) }
        return row
    }

    /// Made once (see `StreamQueries.load`): every slot read runs it.
    private static let slotByName = "SELECT id, \(SlotHead.sql), floor_seq, max_age_s, max_bytes, max_records FROM slots s WHERE name = ?"

    // MARK: Events

    static func appendEvents(_ db: SQLiteConnection, slot: SlotName, events: [NewEvent], createsSlot: Bool, dedupWindowMs: Int64, nowMs: Int64,
                             changed: inout Set<Int64>) throws(StoreError) -> [UInt64] {
        let inbox = StreamPath(slot.rawValue)!
        var row: StreamRow
        if let existing = try StreamQueries.live(db, path: inbox, nowMs: nowMs, changed: &changed) {
            row = existing
        } else {
            _ = try StreamQueries.create(db, path: inbox, request: CreateRequest(contentType: .json, createsSlot: createsSlot), nowMs: nowMs,
                                         changed: &changed)
            guard let created = try StreamQueries.load(db, path: inbox) else { throw .backend("inbox vanished") }
            row = created
        }
        if row.deleted { throw .streamGone(inbox) }
        if row.closed { throw .streamClosed(head: Offset(row.head)) }
        guard row.contentType.isJSON else { throw .contentTypeMismatch(expected: row.contentType.raw) }

        // Keys seen within the window answer their first seq; repeated keys inside this request store one event.
        let keys = EventKeyPlan(events)
        var known: [String: UInt64] = [:]
        for key in keys.keys {
            known[key] = try db.first("SELECT seq FROM event_keys WHERE slot_id = ? AND key = ? AND created_ms >= ?",
                                      [.int(row.slotID), .text(key), .int(nowMs - dedupWindowMs)], { UInt64($0.int(0)) })
        }
        let plan = keys.resolving(known: known, events)
        var stored: [UInt64] = []
        if !plan.fresh.isEmpty {
            let appended = try StreamQueries.insertRecords(db, plan.fresh.map { NewMessage(body: events[$0].body, type: events[$0].type) }, into: row,
                                                           nowMs: nowMs)
            for (n, i) in plan.fresh.enumerated() {
                let seq = appended.firstSeq + UInt64(n)
                stored.append(seq)
                if let key = events[i].key {
                    try StreamQueries.run(db, "INSERT OR REPLACE INTO event_keys(slot_id, key, seq, created_ms) VALUES(?, ?, ?, ?)",
                                          [.int(row.slotID), .text(key), .int(seq), .int(nowMs)])
                }
            }
            row.head += UInt64(appended.count)
            try StreamQueries.run(db, """
                UPDATE streams SET head = ?, record_count = record_count + ?, byte_count = byte_count + ?, accessed_ms = ? WHERE id = ?
                """, [.int(row.head), .int(Int64(appended.count)), .int(Int64(appended.bytes)), .int(nowMs), .int(row.id)])
            changed.insert(row.id)
            changed.insert(ChangeKey.slot(row.slotID))
        }
        return plan.seqs(events, known: known, stored: stored)
    }

    // MARK: Reading

    static func readLog(_ db: SQLiteConnection, scope: SlotScope, after: UInt64, limit: Int, maxBytes: Int,
                        nowMs: Int64) throws(StoreError) -> SlotReadResult {
        let slot = try slot(db, scope.slot)
        guard after <= slot.headSeq else { throw .seqOutOfRange(requested: after, head: slot.headSeq) }
        let floor: UInt64, key: Int64, sql: String, values: [SQLValue]
        switch scope {
        case .slot:
            floor = slot.floorSeq
            key = ChangeKey.slot(slot.id)
            sql = """
                SELECT r.seq, r.pos, r.ts_ms, r.type, r.body, s.path, s.content_type FROM records r JOIN streams s ON s.id = r.stream_id
                WHERE r.id > ? AND r.id <= ? AND s.deleted = 0 ORDER BY r.id LIMIT ?
                """
            values = RecordKey.range(slot: slot.id, after: after) + [.int(Int64(limit))]
        case .stream(let path):
            let row = try StreamQueries.readable(db, path: path, nowMs: nowMs)
            floor = row.trimmedSeq
            key = row.id
            // Within a stream seq grows with pos: reading from the first position after `after` in pos order is
            // reading in seq order.
            let start = try firstPosition(db, stream: row.id, afterSeq: after) ?? Int64.max
            sql = "SELECT seq, pos, ts_ms, type, body, ?, ? FROM records WHERE stream_id = ? AND pos >= ? ORDER BY pos LIMIT ?"
            values = [.text(path.rawValue), .text(row.contentType.raw), .int(row.id), .int(start), .int(Int64(limit))]
        }
        if after > 0 && after < floor { throw .belowRetention(floor: .seq(floor)) }
        var records: [SlotRecord] = []
        var bytes = 0
        var streams = StreamIdentities()
        do {
            let statement = try db.statement(sql, values)
            defer { sqlite3_reset(statement.handle) }
            while try statement.step() {
                let body = statement.blob(4)
                let stream = try streams.resolve(path: statement.text(5)) { statement.text(6) }
                let record = StoredRecord(offset: Offset(UInt64(statement.int(1))), seq: UInt64(statement.int(0)),
                                          timestampMilliseconds: statement.int(2), type: statement.optionalText(3), body: body)
                records.append(SlotRecord(path: stream.0, contentType: stream.1, record: record))
                bytes += body.readableBytes
                if bytes >= maxBytes { break }
            }
        } catch let error as StoreError {
            throw error
        } catch let error as SQLiteFailure {
            throw error.storeError
        } catch {
            throw .backend("\(error)")
        }
        return SlotReadResult(records: records, headSeq: slot.headSeq, floorSeq: floor, changeKey: key, next: records.last?.seq ?? after)
    }

    /// The position of the stream's first own record with a seq after `afterSeq`, nil when there is none. There is no
    /// (stream_id, seq) index (it cost a B-tree write per append); within a stream both seq and pos grow in append
    /// order, so "seq > afterSeq" holds from one position on and a search over the primary key finds it: galloping
    /// back from the newest record (a reader at the tail is answered in two or three probes), then bisecting.
    /// Robust to gaps in the positions (each probe takes the nearest existing record).
    static func firstPosition(_ db: SQLiteConnection, stream: Int64, afterSeq: UInt64) throws(StoreError) -> Int64? {
        typealias Probe = (pos: Int64, seq: UInt64)
        func probe(_ sql: String, _ pos: Int64?) throws(StoreError) -> Probe? {
            try db.first(sql, pos.map { [.int(stream), .int($0)] } ?? [.int(stream)]) { ($0.int(0), UInt64($0.int(1))) }
        }
        let newest = "SELECT pos, seq FROM records WHERE stream_id = ? ORDER BY pos DESC LIMIT 1"
        let atOrBefore = "SELECT pos, seq FROM records WHERE stream_id = ? AND pos <= ? ORDER BY pos DESC LIMIT 1"
        let atOrAfter = "SELECT pos, seq FROM records WHERE stream_id = ? AND pos >= ? ORDER BY pos LIMIT 1"
        guard let last = try probe(newest, nil), last.seq > afterSeq else { return nil }
        // `best` qualifies; no record at or below `low` does (positions start at 1).
        var best = last.pos, low: Int64 = 0, step: Int64 = 1
        while best - step > 0 {
            guard let record = try probe(atOrBefore, best - step) else {
                low = best - step
                break
            }
            if record.seq > afterSeq {
                best = record.pos
                step = step < (1 << 60) ? step * 2 : step
            } else {
                low = record.pos
                break
            }
        }
        // Any qualifying record before `best` lies in [from, to].
        var from = low + 1, to = best - 1
        while from <= to {
            let middle = from + (to - from) / 2
            guard let record = try probe(atOrAfter, middle), record.pos <= to else {
                to = middle - 1  // nothing in [middle, to]
                continue
            }
            if record.seq > afterSeq {
                best = record.pos
                to = middle - 1
            } else {
                from = record.pos + 1
            }
        }
        return best
    }

    static func logState(_ db: SQLiteConnection, _ name: SlotName) throws(StoreError) -> SlotLogState {
        let slot = try slot(db, name)
        let totals = try db.first("SELECT coalesce(sum(record_count), 0), coalesce(sum(byte_count), 0) FROM streams WHERE slot_id = ?",
                                  [.int(slot.id)]) { ($0.int(0), $0.int(1)) } ?? (0, 0)
        return SlotLogState(headSeq: slot.headSeq, floorSeq: slot.floorSeq, records: totals.0, bytes: totals.1)
    }

    // MARK: Consumers

    private static let consumerColumns = "c.name, c.stream, c.acked_seq, c.ack_wait_ms, c.max_in_flight, c.created_ms, c.updated_ms, s.name, \(SlotHead.sql)"

    private static func consumer(_ s: Statement) throws(StoreError) -> ConsumerState {
        guard let slot = SlotName(s.text(7)) else { throw .backend("corrupt slot name") }
        let scope: SlotScope
        if let raw = s.optionalText(1) {
            guard let path = StreamPath(raw) else { throw .backend("corrupt consumer stream \(raw)") }
            scope = .stream(path)
        } else {
            scope = .slot(slot)
        }
        return ConsumerState(slot: slot, name: s.text(0), scope: scope, ackedSeq: UInt64(s.int(2)), ackWaitMs: s.int(3), maxInFlight: s.int(4),
                             createdAtMs: s.int(5), updatedAtMs: s.int(6), headSeq: UInt64(s.int(8)))
    }

    static func consumers(_ db: SQLiteConnection, slot: SlotName?) throws(StoreError) -> [ConsumerState] {
        if let slot {
            return try db.query("SELECT \(consumerColumns) FROM consumers c JOIN slots s ON s.id = c.slot_id WHERE s.name = ? ORDER BY c.name",
                                [.text(slot.rawValue)]) { s throws(StoreError) in try consumer(s) }
        }
        return try db.query("SELECT \(consumerColumns) FROM consumers c JOIN slots s ON s.id = c.slot_id ORDER BY s.name, c.name") {
            s throws(StoreError) in try consumer(s)
        }
    }

    private static func consumer(_ db: SQLiteConnection, _ name: String, slotID: Int64) throws(StoreError) -> ConsumerState? {
        try db.first("SELECT \(consumerColumns) FROM consumers c JOIN slots s ON s.id = c.slot_id WHERE c.slot_id = ? AND c.name = ?",
                     [.int(slotID), .text(name)]) { s throws(StoreError) in try consumer(s) }
    }

    static func openConsumer(_ db: SQLiteConnection, name: String, scope: SlotScope, ackWaitMs: Int64, maxInFlight: Int64,
                             nowMs: Int64) throws(StoreError) -> ConsumerState {
        let slot = try slot(db, scope.slot)
        if let existing = try consumer(db, name, slotID: slot.id) {
            guard existing.scope == scope else { throw .consumerConflict(name, existing: existing.scope.description) }
            try StreamQueries.run(db, "UPDATE consumers SET ack_wait_ms = ?, max_in_flight = ?, updated_ms = ? WHERE slot_id = ? AND name = ?",
                                  [.int(ackWaitMs), .int(maxInFlight), .int(nowMs), .int(slot.id), .text(name)])
            var state = existing
            state.ackWaitMs = ackWaitMs; state.maxInFlight = maxInFlight; state.updatedAtMs = nowMs
            return state
        }
        try StreamQueries.run(db, """
            INSERT INTO consumers(slot_id, name, stream, acked_seq, ack_wait_ms, max_in_flight, created_ms, updated_ms) VALUES(?, ?, ?, 0, ?, ?, ?, ?)
            """, [.int(slot.id), .text(name), .optional(scope.streamPath?.rawValue), .int(ackWaitMs), .int(maxInFlight), .int(nowMs), .int(nowMs)])
        return ConsumerState(slot: scope.slot, name: name, scope: scope, ackedSeq: 0, ackWaitMs: ackWaitMs, maxInFlight: maxInFlight,
                             createdAtMs: nowMs, updatedAtMs: nowMs, headSeq: slot.headSeq)
    }

    static func acknowledge(_ db: SQLiteConnection, name: String, slot name2: SlotName, seq: UInt64, nowMs: Int64) throws(StoreError) -> UInt64 {
        let slot = try slot(db, name2)
        guard seq <= slot.headSeq else { throw .seqOutOfRange(requested: seq, head: slot.headSeq) }
        let acked = try db.first("""
            UPDATE consumers SET acked_seq = max(acked_seq, ?), updated_ms = ? WHERE slot_id = ? AND name = ? RETURNING acked_seq
            """, [.int(seq), .int(nowMs), .int(slot.id), .text(name)]) { UInt64($0.int(0)) }
        guard let acked else { throw .consumerNotFound(name) }
        return acked
    }

    static func deleteConsumer(_ db: SQLiteConnection, name: String, slot name2: SlotName, actor: String, nowMs: Int64) throws(StoreError) {
        let slot = try slot(db, name2)
        try StreamQueries.run(db, "DELETE FROM consumers WHERE slot_id = ? AND name = ?", [.int(slot.id), .text(name)])
        guard db.changes > 0 else { throw .consumerNotFound(name) }
        try AdminQueries.audit(db, actor: actor, action: "consumer.reset", target: "\(name2)/\(name)", nowMs: nowMs)
    }

    // MARK: Retention

    /// Most records one retention pass removes from a slot, so one transaction never holds the writer for long.
    static let trimBatch: UInt64 = 20_000

    /// Applies `slot`'s retention; returns the records removed (at most `trimBatch`; the caller runs it again while
    /// it hits the cap).
    static func applyRetention(_ db: SQLiteConnection, slot: SlotRow, nowMs: Int64, changed: inout Set<Int64>) throws(StoreError) -> Int {
        var through = slot.floorSeq
        if let maxRecords = slot.maxRecords, slot.headSeq > UInt64(maxRecords) {
            through = max(through, slot.headSeq - UInt64(maxRecords))
        }
        if let maxAge = slot.maxAgeSeconds {
            // Records are in seq order and timestamps follow commit order: the expired ones are a prefix.
            let cutoff = nowMs - maxAge * 1000
            if let last = try db.first("""
                SELECT max(seq) FROM (SELECT seq, ts_ms FROM records WHERE id > ? AND id <= ? ORDER BY id LIMIT ?) WHERE ts_ms < ?
                """, RecordKey.range(slot: slot.id, after: slot.floorSeq) + [.int(Int64(trimBatch)), .int(cutoff)], { $0.optionalInt(0) }) ?? nil {
                through = max(through, UInt64(last))
            }
        }
        if let maxBytes = slot.maxBytes {
            let total = try db.first("SELECT coalesce(sum(byte_count), 0) FROM streams WHERE slot_id = ?", [.int(slot.id)]) { $0.int(0) } ?? 0
            if total > maxBytes {
                var excess = total - maxBytes
                let s: Statement
                do {
                    s = try db.statement("SELECT seq, length(body) FROM records WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                                         RecordKey.range(slot: slot.id, after: slot.floorSeq) + [.int(Int64(trimBatch))])
                    defer { sqlite3_reset(s.handle) }
                    while excess > 0, try s.step() {
                        excess -= s.int(1)
                        through = max(through, UInt64(s.int(0)))
                    }
                } catch {
                    throw error.storeError
                }
            }
        }
        through = min(through, slot.floorSeq + trimBatch)
        guard through > slot.floorSeq else { return 0 }
        return try trim(db, slotID: slot.id, through: through, changed: &changed)
    }

    /// Removes the slot's records with `seq <= through` and raises the floors of the slot and of each stream touched.
    static func trim(_ db: SQLiteConnection, slotID: Int64, through: UInt64, changed: inout Set<Int64>) throws(StoreError) -> Int {
        let perStream = try db.query("""
            SELECT stream_id, count(*), coalesce(sum(length(body)), 0), max(pos), max(seq) FROM records WHERE id > ? AND id <= ? GROUP BY stream_id
            """, RecordKey.range(slot: slotID, after: 0, through: through)) { ($0.int(0), $0.int(1), $0.int(2), $0.int(3), $0.int(4)) }
        try SlotHead.persist(db, slotID: slotID)  // `through` may be the newest record
        try StreamQueries.run(db, "DELETE FROM records WHERE id > ? AND id <= ?", RecordKey.range(slot: slotID, after: 0, through: through))
        var removed = 0
        for (stream, count, bytes, pos, seq) in perStream {
            try StreamQueries.run(db, """
                UPDATE streams SET record_count = record_count - ?, byte_count = byte_count - ?, trimmed_pos = max(trimmed_pos, ?),
                    trimmed_seq = max(trimmed_seq, ?) WHERE id = ?
                """, [.int(count), .int(bytes), .int(pos), .int(seq), .int(stream)])
            removed += Int(count)
        }
        try StreamQueries.run(db, "UPDATE slots SET floor_seq = max(floor_seq, ?) WHERE id = ?", [.int(through), .int(slotID)])
        return removed
    }

    static func slotsWithRetention(_ db: SQLiteConnection) throws(StoreError) -> [SlotName] {
        try db.query("SELECT name FROM slots WHERE max_age_s IS NOT NULL OR max_bytes IS NOT NULL OR max_records IS NOT NULL") { s in
            SlotName(s.text(0))
        }.compactMap { $0 }
    }
}
