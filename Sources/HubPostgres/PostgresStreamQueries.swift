import Foundation
import HubCore
import NIOCore
import PostgresNIO

/// The stream store's SQL for PostgreSQL: the same steps as HubSQLite's `StreamQueries`, with the decisions taken by
/// `StreamRow`'s rules. Writers run after `PostgresSlotLogQueries.lockSlot` took the slot's row lock.
enum PostgresStreamQueries {
    static let columns = """
        id, path, slot_id, content_type, created_ms, accessed_ms, ttl_s, expires_at_ms, expires_at_text, closed,
        stream_seq, head, parent_id, parent_head, fork_source, fork_offset, fork_sub_offset, fork_count, deleted,
        trimmed_pos, trimmed_seq
        """

    static func row(_ r: PostgresRandomAccessRow) throws -> StreamRow { try row(r, from: 0) }

    /// The stream columns of `r` starting at column `c` (after others a joined query selected first).
    static func row(_ r: PostgresRandomAccessRow, from c: Int) throws -> StreamRow {
        guard let path = StreamPath(try r.text(c + 1)), let type = ContentType(validating: try r.text(c + 3)) else {
            throw StoreError.backend("corrupt stream row \(try r.int(c))")
        }
        return StreamRow(id: try r.int(c), path: path, slotID: try r.int(c + 2), contentType: type, createdMs: try r.int(c + 4),
                         accessedMs: try r.int(c + 5), ttlSeconds: try r.optionalInt(c + 6), expiresAtMs: try r.optionalInt(c + 7),
                         expiresAtText: try r.optionalText(c + 8), closed: try r.bool(c + 9), streamSeq: try r.optionalText(c + 10),
                         head: try r.seq(c + 11), parentID: try r.optionalInt(c + 12), parentHead: try r.optionalInt(c + 13).map(UInt64.init),
                         forkSource: try r.optionalText(c + 14), forkOffset: try r.optionalInt(c + 15), forkSubOffset: try r.int(c + 16),
                         forkCount: try r.int(c + 17), deleted: try r.bool(c + 18), trimmedPos: try r.seq(c + 19), trimmedSeq: try r.seq(c + 20))
    }

    /// `columns` qualified with a table alias.
    static func columns(of alias: String) -> String {
        columns.split(separator: ",").map { alias + "." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }.joined(separator: ", ")
    }

    // MARK: Loading

    static func load(_ db: PostgresSession, path: StreamPath) async throws -> StreamRow? {
        try await db.first("SELECT \(unescaped: columns) FROM streams WHERE path = \(path.rawValue)").map(row)
    }

    static func load(_ db: PostgresSession, id: Int64) async throws -> StreamRow? {
        try await db.first("SELECT \(unescaped: columns) FROM streams WHERE id = \(id)").map(row)
    }

    static func readable(_ db: PostgresSession, path: StreamPath, nowMs: Int64) async throws -> StreamRow {
        guard let row = try await load(db, path: path) else { throw StoreError.streamNotFound(path) }
        try row.requireReadable(nowMs: nowMs)
        return row
    }

    /// The stream at `path` for a writer; expired streams are removed on the way (soft-deleted while forks read them).
    static func live(_ db: PostgresSession, path: StreamPath, nowMs: Int64, changed: inout Set<Int64>) async throws -> StreamRow? {
        try await live(db, try await load(db, path: path), nowMs: nowMs, changed: &changed)
    }

    /// `live` for a row already loaded.
    static func live(_ db: PostgresSession, _ loaded: StreamRow?, nowMs: Int64, changed: inout Set<Int64>) async throws -> StreamRow? {
        guard var row = loaded else { return nil }
        guard row.isExpired(nowMs: nowMs) else { return row }
        if row.forkCount > 0 {
            if !row.deleted {
                try await db.run("UPDATE streams SET deleted = true WHERE id = \(row.id)")
                row.deleted = true
                changed.insert(row.id)
            }
            return row
        }
        try await purge(db, row, changed: &changed)
        return nil
    }

    // MARK: Create

    static func create(_ db: PostgresSession, path: StreamPath, request: CreateRequest, nowMs: Int64,
                       changed: inout Set<Int64>) async throws -> CreateOutcome {
        guard let slot = try await PostgresSlotLogQueries.lockSlot(db, path.slot, creating: request.createsSlot, nowMs: nowMs) else {
            throw StoreError.slotNotFound(path.slot)
        }
        if let existing = try await live(db, path: path, nowMs: nowMs, changed: &changed) {
            if existing.deleted { throw StoreError.streamConflict(path, reason: "the path belongs to a deleted stream that forks still read") }
            try existing.requireSameConfiguration(request)
            return CreateOutcome(created: false, info: existing.info)
        }
        var contentType = request.contentType ?? .octetStream
        var expiry = request.expiry
        var parent: (id: Int64, head: UInt64)?
        var partial: NewMessage?
        if let fork = request.fork {
            guard let source = try await live(db, path: fork.source, nowMs: nowMs, changed: &changed) else { throw StoreError.forkSourceNotFound(fork.source) }
            let (at, needsNext) = try source.forkPosition(fork, request: request, path: path)
            let next = needsNext ? try await record(db, of: source, at: at + 1) : nil
            let plan = try source.forkPlan(fork, at: at, next: next, request: request)
            contentType = plan.contentType; expiry = plan.expiry; partial = plan.partial
            parent = (source.id, plan.head)
            try await db.run("UPDATE streams SET fork_count = fork_count + 1 WHERE id = \(source.id)")
        }
        var ttl: Int64?, expiresAtMs: Int64?, expiresAtText: String?
        switch expiry {
        case .ttl(let seconds): ttl = Int64(seconds)
        case .at(let ms, let text): expiresAtMs = ms; expiresAtText = text
        case nil: break
        }
        let parentHead = parent.map { Int64($0.head) }
        let forkOffset = request.fork?.offset.map { Int64($0.position) }
        let forkSubOffset = Int64(request.fork?.subOffset ?? 0)
        guard let inserted = try await db.first("""
            INSERT INTO streams(path, slot_id, content_type, created_ms, accessed_ms, ttl_s, expires_at_ms, expires_at_text, head,
                                parent_id, parent_head, fork_source, fork_offset, fork_sub_offset)
            VALUES(\(path.rawValue), \(slot.id), \(contentType.raw), \(nowMs), \(nowMs), \(ttl), \(expiresAtMs), \(expiresAtText),
                   \(parentHead ?? 0), \(parent?.id), \(parentHead), \(request.fork?.source.rawValue), \(forkOffset), \(forkSubOffset))
            RETURNING id
            """), var row = try await load(db, id: try inserted.int(0)) else { throw StoreError.backend("created stream vanished") }
        if let partial { row.head = try await insert(db, [partial], into: row, nowMs: nowMs) }
        if !request.messages.isEmpty { row.head = try await insert(db, request.messages, into: row, nowMs: nowMs) }
        if partial != nil || !request.messages.isEmpty { changed.insert(ChangeKey.slot(slot.id)) }
        // A stream born with data changed too: subscriptions watching for matching streams hear of it (§11).
        if !request.messages.isEmpty { changed.insert(row.id) }
        if request.closed {
            try await db.run("UPDATE streams SET closed = true WHERE id = \(row.id)")
            row.closed = true
        }
        return CreateOutcome(created: true, info: row.info)
    }

    // MARK: Append

    static func append(_ db: PostgresSession, path: StreamPath, request: AppendRequest, nowMs: Int64,
                       changed: inout Set<Int64>) async throws -> AppendOutcome {
        // The slot's lock first, then the stream with the producer's state in one statement. (Not in the locking
        // statement: after waiting for the lock, PostgreSQL refreshes only the locked row, so a stream read there would
        // be the one from before the previous append committed.)
        guard try await PostgresSlotLogQueries.lockSlot(db, path.slot) != nil,
              let loaded = try await db.first("""
                  SELECT \(unescaped: columns(of: "st")), p.epoch, p.last_seq FROM streams st
                  LEFT JOIN producers p ON p.stream_id = st.id AND p.producer = \(request.producer?.id ?? "")
                  WHERE st.path = \(path.rawValue)
                  """),
              var row = try await live(db, try row(loaded), nowMs: nowMs, changed: &changed) else { throw StoreError.streamNotFound(path) }
        if row.deleted { throw StoreError.streamGone(path) }
        var state: ProducerAck?
        if request.producer != nil, let epoch = try loaded.optionalInt(21), let last = try loaded.optionalInt(22) {
            state = ProducerAck(epoch: UInt64(epoch), seq: UInt64(last))
        }
        switch try row.checkAppend(request, producerState: state) {
        case .duplicate(let ack):
            try await touch(db, row, nowMs: nowMs)
            return .duplicate(row.info, producer: ack)
        case .alreadyClosed:
            try await touch(db, row, nowMs: nowMs)
            return .appended(row.info, producer: nil)
        case .write:
            break
        }
        var appended = (count: 0, bytes: 0, firstSeq: UInt64(0))
        if !request.messages.isEmpty {
            appended = try await insertRecords(db, request.messages, into: row, nowMs: nowMs)
            row.head += UInt64(appended.count)
        }
        row.closed = request.close
        changed.insert(row.id)
        if appended.count > 0 { changed.insert(ChangeKey.slot(row.slotID)) }
        // The stream row, the producer's state and the wake-up for other nodes in one statement (its CTEs all run).
        let producer = request.producer
        try await db.run("""
            WITH stream AS (
                UPDATE streams SET head = \(Int64(row.head)), record_count = record_count + \(Int64(appended.count)),
                    byte_count = byte_count + \(Int64(appended.bytes)), accessed_ms = \(nowMs), closed = \(request.close),
                    stream_seq = coalesce(\(request.streamSeq), stream_seq) WHERE id = \(row.id) RETURNING id),
            producer AS (
                INSERT INTO producers(stream_id, producer, epoch, last_seq, updated_ms)
                SELECT \(row.id), \(producer?.id ?? ""), \(Int64(producer?.epoch ?? 0)), \(Int64(producer?.seq ?? 0)), \(nowMs)
                WHERE \(producer != nil)
                ON CONFLICT(stream_id, producer) DO UPDATE SET epoch = excluded.epoch, last_seq = excluded.last_seq, updated_ms = excluded.updated_ms)
            SELECT pg_notify(\(PostgresChangeSignal.channel), \(db.notification(changed))) FROM stream
            """)
        db.notified()
        let ack = producer.map { ProducerAck(epoch: $0.epoch, seq: $0.seq) }
        return .appended(row.info, producer: ack)
    }

    /// Appends `messages` after the stream's head and updates the stream row. Returns the new head.
    static func insert(_ db: PostgresSession, _ messages: [NewMessage], into row: StreamRow, nowMs: Int64) async throws -> UInt64 {
        let appended = try await insertRecords(db, messages, into: row, nowMs: nowMs)
        let head = row.head + UInt64(appended.count)
        try await db.run("""
            UPDATE streams SET head = \(Int64(head)), record_count = record_count + \(Int64(appended.count)),
                byte_count = byte_count + \(Int64(appended.bytes)) WHERE id = \(row.id)
            """)
        return head
    }

    /// Inserts `messages` as records after `row.head`, each with the slot's next `seq` (the slot row is locked by this
    /// transaction, so the numbers are this commit's alone), and keeps the slot's record limit (`max_records` holds at
    /// every commit; age and byte limits are the sweep's). The caller updates the stream row and wakes readers.
    static func insertRecords(_ db: PostgresSession, _ messages: [NewMessage], into row: StreamRow,
                              nowMs: Int64) async throws -> (count: Int, bytes: Int, firstSeq: UInt64) {
        let count = Int64(messages.count)
        let batchEnd = Int64(row.head) + count
        var bytes = 0
        // Rows of a multi-row VALUES list: one round trip per chunk instead of per message. The seq of message i is
        // the slot's new head - count + i; the first chunk goes in the same statement that takes those numbers.
        func values(_ chunk: Range<Int>, binds: inout PostgresBindings) -> String {
            var sql = ""
            for i in chunk {
                let message = messages[i]
                bytes += message.body.readableBytes
                let p = binds.count
                binds.append(Int64(row.head) + 1 + Int64(i)); binds.append(Int64(i)); binds.append(message.type); binds.append(message.body)
                sql += (sql.isEmpty ? "" : ", ") + "($\(p + 1)::bigint, $\(p + 2)::bigint, $\(p + 3)::text, $\(p + 4)::bytea)"
            }
            return sql
        }
        var binds = PostgresBindings()
        binds.append(count); binds.append(row.slotID); binds.append(row.id); binds.append(batchEnd); binds.append(nowMs)
        let first = 0..<min(insertChunk, messages.count)
        let rows = values(first, binds: &binds)
        guard let slot = try await db.first(PostgresQuery(unsafeSQL: """
            WITH slot AS (UPDATE slots SET head_seq = head_seq + $1 WHERE id = $2 RETURNING head_seq, floor_seq, max_records),
            inserted AS (INSERT INTO records(stream_id, pos, slot_id, seq, batch_end, ts_ms, type, body)
                SELECT $3, v.pos, $2, slot.head_seq - $1 + 1 + v.i, $4, $5, v.type, v.body FROM slot, (VALUES \(rows)) AS v(pos, i, type, body))
            SELECT head_seq, floor_seq, max_records FROM slot
            """, binds: binds)) else {
            throw StoreError.backend("slot \(row.slotID) missing")
        }
        let head = try slot.seq(0), floor = try slot.seq(1)
        let firstSeq = head - UInt64(count) + 1
        var index = first.upperBound
        while index < messages.count {
            let chunk = index..<min(index + insertChunk, messages.count)
            var binds = PostgresBindings()
            binds.append(Int64(firstSeq)); binds.append(row.slotID); binds.append(row.id); binds.append(batchEnd); binds.append(nowMs)
            let rows = values(chunk, binds: &binds)
            try await db.run(PostgresQuery(unsafeSQL: """
                INSERT INTO records(stream_id, pos, slot_id, seq, batch_end, ts_ms, type, body)
                SELECT $3, v.pos, $2, $1 + v.i, $4, $5, v.type, v.body FROM (VALUES \(rows)) AS v(pos, i, type, body)
                """, binds: binds))
            index = chunk.upperBound
        }
        // Capped like a sweep pass: a limit just lowered far below the slot's size is caught up by the sweep.
        if let maxRecords = try slot.optionalInt(2), head > UInt64(maxRecords), head - UInt64(maxRecords) > floor {
            _ = try await PostgresSlotLogQueries.trim(db, slotID: row.slotID, through: min(head - UInt64(maxRecords), floor + PostgresSlotLogQueries.trimBatch))
        }
        return (messages.count, bytes, firstSeq)
    }

    /// Rows per multi-row INSERT (8 parameters each, far below the protocol's 65 535).
    private static let insertChunk = 256

    static func touch(_ db: PostgresSession, _ row: StreamRow, nowMs: Int64) async throws {
        guard row.ttlSeconds != nil else { return }
        try await db.run("UPDATE streams SET accessed_ms = \(nowMs) WHERE id = \(row.id)")
    }

    // MARK: Delete

    static func delete(_ db: PostgresSession, path: StreamPath, nowMs: Int64, changed: inout Set<Int64>) async throws {
        guard let row = try await live(db, path: path, nowMs: nowMs, changed: &changed) else { throw StoreError.streamNotFound(path) }
        if row.deleted { throw StoreError.streamGone(path) }
        if row.forkCount > 0 {
            // Forks still read this stream's records: hide it, keep the data (Durable Streams §8).
            try await db.run("UPDATE streams SET deleted = true WHERE id = \(row.id)")
            changed.insert(row.id)
        } else {
            try await purge(db, row, changed: &changed)
        }
    }

    /// Removes a stream with its records, then its source if that was soft-deleted and this was its last fork.
    static func purge(_ db: PostgresSession, _ row: StreamRow, changed: inout Set<Int64>) async throws {
        try await db.run("DELETE FROM records WHERE stream_id = \(row.id)")
        try await db.run("DELETE FROM producers WHERE stream_id = \(row.id)")
        try await db.run("DELETE FROM streams WHERE id = \(row.id)")
        changed.insert(row.id)
        if let parentID = row.parentID { try await releaseSource(db, parentID, changed: &changed) }
    }

    /// A fork of `sourceID` is gone: the source has one fork fewer, and goes too if it was deleted and this was its last.
    static func releaseSource(_ db: PostgresSession, _ sourceID: Int64, changed: inout Set<Int64>) async throws {
        try await db.run("UPDATE streams SET fork_count = fork_count - 1 WHERE id = \(sourceID)")
        if let source = try await load(db, id: sourceID), source.forkCount == 0, source.deleted {
            try await purge(db, source, changed: &changed)
        }
    }

    // MARK: Reading

    /// The lineage of `row`, oldest ancestor first, its ancestors loaded in one recursive query.
    private static func segments(_ db: PostgresSession, of row: StreamRow) async throws -> [StreamSegment] {
        guard let parentID = row.parentID else { return try row.lineage { (_: Int64) throws(StoreError) in nil } }
        let ancestors = try await db.rows("""
            WITH RECURSIVE chain AS (SELECT \(unescaped: columns) FROM streams WHERE id = \(parentID)
                UNION ALL SELECT \(unescaped: columns(of: "s")) FROM streams s JOIN chain c ON s.id = c.parent_id)
            SELECT \(unescaped: columns) FROM chain
            """).map(Self.row)
        let byID = Dictionary(ancestors.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return try row.lineage { (id: Int64) throws(StoreError) in byID[id] }
    }

    /// Records after `after`, oldest first, stopping at `maxBytes` or `maxRecords` (at least one record); the same
    /// retention rules as SQLite's `StreamQueries.records`.
    static func records(_ db: PostgresSession, of row: StreamRow, after: Offset, maxBytes: Int,
                        maxRecords: Int) async throws -> (records: [StoredRecord], start: Offset) {
        var out: [StoredRecord] = []
        var bytes = 0
        var from = after.position
        var start = after
        for segment in try await segments(db, of: row) where segment.high > from {
            guard let first = try segment.readStart(after: after, from: &from, start: &start) else { continue }
            // Pages of rows, so a byte limit reached early does not fetch the whole segment.
            var low = Int64(first)
            let high = Int64(segment.high)
            while low < high {
                let page = Int64(min(readPage, maxRecords - out.count))
                let rows = try await db.rows("""
                    SELECT pos, seq, ts_ms, type, body FROM records WHERE stream_id = \(segment.stream) AND pos > \(low) AND pos <= \(high)
                    ORDER BY pos LIMIT \(page)
                    """)
                for r in rows {
                    let body = try r.bytes(4)
                    let record = StoredRecord(offset: Offset(try r.seq(0)), seq: try r.seq(1), timestampMilliseconds: try r.int(2),
                                              type: try r.optionalText(3), body: body)
                    out.append(record)
                    bytes += body.readableBytes
                    low = Int64(record.offset.position)
                    if bytes >= maxBytes || out.count >= maxRecords { return (out, start) }
                }
                if rows.count < page { break }
            }
        }
        return (out, start)
    }

    /// Rows per page of a read.
    private static let readPage = 256

    /// The record at `position` of `row`'s lineage, with the end of the append batch it belongs to.
    private static func record(_ db: PostgresSession, of row: StreamRow, at position: UInt64) async throws -> (body: ByteBuffer, batchEnd: UInt64)? {
        for segment in try await segments(db, of: row) where segment.low < position && position <= segment.high {
            return try await db.first("SELECT body, batch_end FROM records WHERE stream_id = \(segment.stream) AND pos = \(Int64(position))").map {
                (try $0.bytes(0), min(try $0.seq(1), segment.high))
            }
        }
        return nil
    }
}
