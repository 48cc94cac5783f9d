import CSQLite
import HubCore
import NIOCore

/// The store's SQL, as functions over one connection. Write functions run inside the writer's transaction and
/// report the stream ids whose readers must be woken; read functions run inside a reader's snapshot.
enum StreamQueries {
    // MARK: Loading

    /// The stream at `path`; on the writer's connection from its `WriterRowCache` when it has the row.
    static func load(_ db: SQLiteConnection, path: StreamPath) throws(StoreError) -> StreamRow? {
        if let row = db.rowCache?.stream(path) { return row }
        let row = try loadUncached(db, path: path)
        if let row { db.rowCache?.remember(row) }
        return row
    }

    static func loadUncached(_ db: SQLiteConnection, path: StreamPath) throws(StoreError) -> StreamRow? {
        try db.first(loadByPath, [.text(path.rawValue)]) { s throws(StoreError) in try StreamRow(s) }
    }

    static func load(_ db: SQLiteConnection, id: Int64) throws(StoreError) -> StreamRow? {
        try db.first(loadByID, [.int(id)]) { s throws(StoreError) in try StreamRow(s) }
    }

    // Statements run on every append and read are made once: an interpolated string is built (an allocation) and
    // hashed for the statement cache on every call.
    private static let loadByPath = "SELECT \(StreamRow.columns) FROM streams WHERE path = ?"
    private static let loadByID = "SELECT \(StreamRow.columns) FROM streams WHERE id = ?"
    private static let slotForAppend = "SELECT \(SlotHead.sql) + ?, floor_seq, max_records FROM slots s WHERE id = ?"

    /// A readable stream, as a reader sees it: expired streams are absent (or gone while forks hold them).
    static func readable(_ db: SQLiteConnection, path: StreamPath, nowMs: Int64) throws(StoreError) -> StreamRow {
        guard let row = try load(db, path: path) else { throw .streamNotFound(path) }
        try row.requireReadable(nowMs: nowMs)
        return row
    }

    /// The stream at `path` for a writer. Expired streams are removed on the way (soft-deleted while forks read them),
    /// so a later create finds the path free.
    static func live(_ db: SQLiteConnection, path: StreamPath, nowMs: Int64, changed: inout Set<Int64>) throws(StoreError) -> StreamRow? {
        guard var row = try load(db, path: path) else { return nil }
        guard row.isExpired(nowMs: nowMs) else { return row }
        if row.forkCount > 0 {
            if !row.deleted {
                try run(db, "UPDATE streams SET deleted = 1 WHERE id = ?", [.int(row.id)])
                row.deleted = true
                changed.insert(row.id)
            }
            return row
        }
        try purge(db, row, changed: &changed)
        return nil
    }

    // MARK: Create

    static func create(_ db: SQLiteConnection, path: StreamPath, request: CreateRequest, nowMs: Int64,
                       changed: inout Set<Int64>) throws(StoreError) -> CreateOutcome {
        if let existing = try live(db, path: path, nowMs: nowMs, changed: &changed) {
            if existing.deleted { throw .streamConflict(path, reason: "the path belongs to a deleted stream that forks still read") }
            try existing.requireSameConfiguration(request)
            return CreateOutcome(created: false, info: existing.info)
        }
        let slotID = try ensureSlot(db, path.slot, creating: request.createsSlot, nowMs: nowMs)
        var contentType = request.contentType ?? .octetStream
        var expiry = request.expiry
        var parent: (id: Int64, head: UInt64)?
        var partial: NewMessage?
        if let fork = request.fork {
            guard let source = try live(db, path: fork.source, nowMs: nowMs, changed: &changed) else { throw .forkSourceNotFound(fork.source) }
            let (at, needsNext) = try source.forkPosition(fork, request: request, path: path)
            let next = needsNext ? try record(db, of: source, at: at + 1) : nil
            let plan = try source.forkPlan(fork, at: at, next: next, request: request)
            contentType = plan.contentType; expiry = plan.expiry; partial = plan.partial
            parent = (source.id, plan.head)
            try run(db, "UPDATE streams SET fork_count = fork_count + 1 WHERE id = ?", [.int(source.id)])
        }
        var ttl: Int64?, expiresAtMs: Int64?, expiresAtText: String?
        switch expiry {
        case .ttl(let seconds): ttl = Int64(seconds)
        case .at(let ms, let text): expiresAtMs = ms; expiresAtText = text
        case nil: break
        }
        try run(db, """
            INSERT INTO streams(path, slot_id, content_type, created_ms, accessed_ms, ttl_s, expires_at_ms, expires_at_text, head,
                                parent_id, parent_head, fork_source, fork_offset, fork_sub_offset)
            VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [
                .text(path.rawValue), .int(slotID), .text(contentType.raw), .int(nowMs), .int(nowMs), .optional(ttl),
                .optional(expiresAtMs), .optional(expiresAtText), .int(parent?.head ?? 0), .optional(parent?.id),
                .optional(parent.map { Int64($0.head) }), .optional(request.fork?.source.rawValue),
                .optional(request.fork?.offset.map { Int64($0.position) }), .int(Int64(request.fork?.subOffset ?? 0)),
            ])
        guard var row = try load(db, path: path) else { throw .backend("created stream vanished") }
        if let partial { try insert([partial], into: &row, nowMs: nowMs) }
        if !request.messages.isEmpty { try insert(request.messages, into: &row, nowMs: nowMs) }
        if partial != nil || !request.messages.isEmpty { changed.insert(ChangeKey.slot(slotID)) }
        // A stream born with data changed too: subscriptions watching for matching streams hear of it (§11).
        if !request.messages.isEmpty { changed.insert(row.id) }
        if request.closed {
            try run(db, "UPDATE streams SET closed = 1 WHERE id = ?", [.int(row.id)])
            row.closed = true
        }
        return CreateOutcome(created: true, info: row.info)

        func insert(_ messages: [NewMessage], into row: inout StreamRow, nowMs: Int64) throws(StoreError) {
            row.head = try StreamQueries.insert(db, messages, into: row, nowMs: nowMs)
        }
    }

    private static func ensureSlot(_ db: SQLiteConnection, _ slot: SlotName, creating: Bool, nowMs: Int64) throws(StoreError) -> Int64 {
        if let id = try db.first("SELECT id FROM slots WHERE name = ?", [.text(slot.rawValue)], { $0.int(0) }) { return id }
        guard creating else { throw .slotNotFound(slot) }
        let id = try RecordKey.newSlotID(db)
        try run(db, "INSERT INTO slots(id, name, head_seq, created_ms) VALUES(?, ?, 0, ?)", [.int(id), .text(slot.rawValue), .int(nowMs)])
        return id
    }

    // MARK: Append

    static func append(_ db: SQLiteConnection, path: StreamPath, request: AppendRequest, nowMs: Int64,
                       changed: inout Set<Int64>) throws(StoreError) -> AppendOutcome {
        guard var row = try live(db, path: path, nowMs: nowMs, changed: &changed) else { throw .streamNotFound(path) }
        if row.deleted { throw .streamGone(path) }
        let state = try request.producer.flatMap { producer throws(StoreError) in
            try db.first("SELECT epoch, last_seq FROM producers WHERE stream_id = ? AND producer = ?", [.int(row.id), .text(producer.id)]) {
                ProducerAck(epoch: UInt64($0.int(0)), seq: UInt64($0.int(1)))
            }
        }
        switch try row.checkAppend(request, producerState: state) {
        case .duplicate(let ack):
            try touch(db, row, nowMs: nowMs)
            return .duplicate(row.info, producer: ack)
        case .alreadyClosed:
            try touch(db, row, nowMs: nowMs)
            return .appended(row.info, producer: nil)
        case .write:
            break
        }
        var appended = (count: 0, bytes: 0)
        var slot: SlotLimitState?
        if !request.messages.isEmpty {
            let inserted = try insertRecords(db, request.messages, into: row, nowMs: nowMs)
            appended = (inserted.count, inserted.bytes)
            slot = inserted.slot
            row.head += UInt64(appended.count)
        }
        // One UPDATE carries everything the append changed on the stream row.
        try run(db, """
            UPDATE streams SET head = ?, record_count = record_count + ?, byte_count = byte_count + ?, accessed_ms = ?,
                closed = ?, stream_seq = coalesce(?, stream_seq) WHERE id = ?
            """, [.int(row.head), .int(Int64(appended.count)), .int(Int64(appended.bytes)), .int(nowMs),
                  .int(Int64(request.close ? 1 : 0)), .optional(request.streamSeq), .int(row.id)])
        row.closed = request.close
        // The row as the UPDATE left it (the statement's hook dropped the cached one).
        row.accessedMs = nowMs
        if let streamSeq = request.streamSeq { row.streamSeq = streamSeq }
        db.rowCache?.remember(row)
        var ack: ProducerAck?
        if let producer = request.producer {
            try run(db, """
                INSERT INTO producers(stream_id, producer, epoch, last_seq, updated_ms) VALUES(?, ?, ?, ?, ?)
                ON CONFLICT(stream_id, producer) DO UPDATE SET epoch = excluded.epoch, last_seq = excluded.last_seq,
                    updated_ms = excluded.updated_ms
                """, [.int(row.id), .text(producer.id), .int(producer.epoch), .int(producer.seq), .int(nowMs)])
            ack = ProducerAck(epoch: producer.epoch, seq: producer.seq)
        }
        changed.insert(row.id)
        if appended.count > 0 { changed.insert(ChangeKey.slot(row.slotID)) }
        if let slot { try SQLiteStreamStore.applyRecordLimit(db, slot, changed: &changed) }
        return .appended(row.info, producer: ack)
    }

    /// Appends `messages` as records after the stream's head and updates the stream row. Returns the new head.
    static func insert(_ db: SQLiteConnection, _ messages: [NewMessage], into row: StreamRow, nowMs: Int64) throws(StoreError) -> UInt64 {
        let appended = try insertRecords(db, messages, into: row, nowMs: nowMs)
        let head = row.head + UInt64(appended.count)
        try run(db, "UPDATE streams SET head = ?, record_count = record_count + ?, byte_count = byte_count + ? WHERE id = ?",
                [.int(head), .int(Int64(appended.count)), .int(Int64(appended.bytes)), .int(row.id)])
        return head
    }

    /// Inserts `messages` as records after `row.head`, each with the slot's next `seq`. The caller updates the
    /// stream row (head, counters) with the returned count and bytes, and wakes the stream's and the slot's readers.
    static func insertRecords(_ db: SQLiteConnection, _ messages: [NewMessage], into row: StreamRow,
                              nowMs: Int64) throws(StoreError) -> (count: Int, bytes: Int, firstSeq: UInt64, slot: SlotLimitState) {
        let count = UInt64(messages.count)
        // The slot's head after this append, and what its record limit needs; the slot row is not written (`SlotHead`).
        let slot: SlotLimitState
        if let cached = db.rowCache?.slot(row.slotID) {
            slot = SlotLimitState(id: cached.id, headSeq: cached.headSeq + count, floorSeq: cached.floorSeq, maxRecords: cached.maxRecords)
        } else {
            guard let read = try db.first(slotForAppend, [.int(count), .int(row.slotID)], {
                SlotLimitState(id: row.slotID, headSeq: UInt64($0.int(0)), floorSeq: UInt64($0.int(1)), maxRecords: $0.optionalInt(2))
            }) else {
                throw .backend("slot \(row.slotID) missing")
            }
            slot = read
        }
        try RecordKey.requireSeq(slot.headSeq)
        let slotHead = slot.headSeq
        let firstSeq = slotHead - count + 1
        let batchEnd = row.head + count
        var bytes = 0
        // Multi-row INSERTs: one statement execution per chunk instead of per message. Bound in place: building
        // `SQLValue` arrays cost a few per cent of a 100-message batch.
        var index = 0
        do {
            while index < messages.count {
                let rows = min(insertChunk, messages.count - index)
                let statement = try db.statement(insertSQL(rows: rows))
                var parameter: Int32 = 1
                for message in messages[index..<(index + rows)] {
                    let n = Int64(index)
                    bytes += message.body.readableBytes
                    try statement.bind(RecordKey.id(slot: row.slotID, seq: firstSeq) + n, at: parameter)
                    try statement.bind(row.id, at: parameter + 1)
                    try statement.bind(Int64(row.head) + 1 + n, at: parameter + 2)
                    try statement.bind(Int64(batchEnd), at: parameter + 3)
                    try statement.bind(nowMs, at: parameter + 4)
                    try statement.bind(.optional(message.type), at: parameter + 5)
                    try statement.bindBorrowed(message.body, at: parameter + 6)
                    parameter += 7
                    index += 1
                }
                // The bodies are bound without a copy: `messages` holds them, unchanged, until the reset.
                defer { sqlite3_reset(statement.handle) }
                try withExtendedLifetime(messages) { () throws(SQLiteFailure) in
                    while try statement.step() {}
                }
            }
        } catch {
            throw error.storeError
        }
        // Its newest record is now the slot's head (the inserts' hook dropped the cached state).
        db.rowCache?.remember(slot)
        return (messages.count, bytes, firstSeq, slot)
    }

    /// Rows per multi-row INSERT (7 parameters each, far below SQLite's 32 766 limit). The rowid carries slot and seq.
    private static let insertChunk = 64
    private static let insertSQLs: [String] = (0...insertChunk).map { rows in
        "INSERT INTO records(id, stream_id, pos, batch_end, ts_ms, type, body) VALUES "
            + Array(repeating: "(?, ?, ?, ?, ?, ?, ?)", count: rows).joined(separator: ", ")
    }
    private static func insertSQL(rows: Int) -> String { insertSQLs[rows] }

    static func touch(_ db: SQLiteConnection, _ row: StreamRow, nowMs: Int64) throws(StoreError) {
        guard row.ttlSeconds != nil else { return }
        try run(db, "UPDATE streams SET accessed_ms = ? WHERE id = ?", [.int(nowMs), .int(row.id)])
    }

    // MARK: Delete

    static func delete(_ db: SQLiteConnection, path: StreamPath, nowMs: Int64, changed: inout Set<Int64>) throws(StoreError) {
        guard let row = try live(db, path: path, nowMs: nowMs, changed: &changed) else { throw .streamNotFound(path) }
        if row.deleted { throw .streamGone(path) }
        if row.forkCount > 0 {
            // Forks still read this stream's records: hide it, keep the data (Durable Streams §8).
            try run(db, "UPDATE streams SET deleted = 1 WHERE id = ?", [.int(row.id)])
            changed.insert(row.id)
        } else {
            try purge(db, row, changed: &changed)
        }
    }

    /// Removes a stream with its records, then its source if that was soft-deleted and this was its last fork.
    static func purge(_ db: SQLiteConnection, _ row: StreamRow, changed: inout Set<Int64>) throws(StoreError) {
        try SlotHead.persist(db, slotID: row.slotID)  // the slot's newest records may be this stream's
        try run(db, "DELETE FROM records WHERE stream_id = ?", [.int(row.id)])
        try run(db, "DELETE FROM producers WHERE stream_id = ?", [.int(row.id)])
        try run(db, "DELETE FROM streams WHERE id = ?", [.int(row.id)])
        changed.insert(row.id)
        if let parentID = row.parentID { try releaseSource(db, parentID, changed: &changed) }
    }

    /// A fork of `sourceID` is gone: the source has one fork fewer, and goes too if it was deleted and this was its last.
    static func releaseSource(_ db: SQLiteConnection, _ sourceID: Int64, changed: inout Set<Int64>) throws(StoreError) {
        try run(db, "UPDATE streams SET fork_count = fork_count - 1 WHERE id = ?", [.int(sourceID)])
        if let source = try load(db, id: sourceID), source.forkCount == 0, source.deleted {
            try purge(db, source, changed: &changed)
        }
    }

    // MARK: Reading

    private static func segments(_ db: SQLiteConnection, of row: StreamRow) throws(StoreError) -> [StreamSegment] {
        try row.lineage { id throws(StoreError) in try load(db, id: id) }
    }

    /// Records after `after`, oldest first, stopping once `maxBytes` or `maxRecords` is reached (at least one record).
    /// Reading from the start skips what retention removed; any other offset below it throws `.belowRetention`.
    /// `start` is where the read really began: past the removed records when it skipped them.
    static func records(_ db: SQLiteConnection, of row: StreamRow, after: Offset, maxBytes: Int,
                        maxRecords: Int) throws(StoreError) -> (records: [StoredRecord], start: Offset) {
        var out: [StoredRecord] = []
        var bytes = 0
        var from = after.position
        var start = after
        for segment in try segments(db, of: row) where segment.high > from {
            guard let low = try segment.readStart(after: after, from: &from, start: &start) else { continue }
            do {
                let s = try db.statement("SELECT pos, seq, ts_ms, type, body FROM records WHERE stream_id = ? AND pos > ? AND pos <= ? ORDER BY pos",
                                         [.int(segment.stream), .int(low), .int(segment.high)])
                defer { sqlite3_reset(s.handle) }
                while try s.step() {
                    let body = s.blob(4)
                    out.append(StoredRecord(offset: Offset(UInt64(s.int(0))), seq: UInt64(s.int(1)), timestampMilliseconds: s.int(2),
                                            type: s.optionalText(3), body: body))
                    bytes += body.readableBytes
                    if bytes >= maxBytes || out.count >= maxRecords { return (out, start) }
                }
            } catch {
                throw error.storeError
            }
        }
        return (out, start)
    }

    /// The record at `position` of `row`'s lineage, with the end of the append batch it belongs to.
    private static func record(_ db: SQLiteConnection, of row: StreamRow, at position: UInt64) throws(StoreError) -> (body: ByteBuffer, batchEnd: UInt64)? {
        for segment in try segments(db, of: row) where segment.low < position && position <= segment.high {
            return try db.first("SELECT body, batch_end FROM records WHERE stream_id = ? AND pos = ?", [.int(segment.stream), .int(position)]) {
                ($0.blob(0), min(UInt64($0.int(1)), segment.high))
            }
        }
        return nil
    }

    // MARK: Helpers

    static func run(_ db: SQLiteConnection, _ sql: String, _ values: [SQLValue] = []) throws(StoreError) {
        do { try db.run(sql, values) } catch { throw error.storeError }
    }
}
