import HubCore
import PostgresNIO

/// Slots, tokens, tickets and the audit log on PostgreSQL (HubSQLite's `AdminQueries`). Every mutation writes its
/// audit entry in the same transaction.
enum PostgresAdminQueries {
    static let slotColumns = """
        s.name, s.created_ms, s.head_seq, s.max_age_s, s.max_bytes, s.max_records, s.max_message_bytes, s.max_subscribers,
        s.anonymous_read, s.anonymous_append,
        (SELECT count(*) FROM streams st WHERE st.slot_id = s.id AND NOT st.deleted),
        (SELECT coalesce(sum(record_count), 0)::bigint FROM streams st WHERE st.slot_id = s.id),
        (SELECT coalesce(sum(byte_count), 0)::bigint FROM streams st WHERE st.slot_id = s.id)
        """

    static func slotInfo(_ r: PostgresRandomAccessRow) throws -> SlotInfo {
        guard let name = SlotName(try r.text(0)) else { throw StoreError.backend("corrupt slot name") }
        let settings = SlotSettings(maxAgeSeconds: try r.optionalInt(3), maxBytes: try r.optionalInt(4), maxRecords: try r.optionalInt(5),
                                    maxMessageBytes: try r.optionalInt(6), maxSubscribers: try r.optionalInt(7),
                                    anonymousRead: try r.bool(8), anonymousAppend: try r.bool(9))
        return SlotInfo(name: name, settings: settings, createdAtMs: try r.int(1), headSeq: try r.seq(2), streams: try r.int(10),
                        records: try r.int(11), bytes: try r.int(12))
    }

    static func slots(_ db: PostgresSession) async throws -> [SlotInfo] {
        try await db.rows("SELECT \(unescaped: slotColumns) FROM slots s ORDER BY s.name").map(slotInfo)
    }

    static func slot(_ db: PostgresSession, _ name: SlotName) async throws -> SlotInfo? {
        try await db.first("SELECT \(unescaped: slotColumns) FROM slots s WHERE s.name = \(name.rawValue)").map(slotInfo)
    }

    static func createSlot(_ db: PostgresSession, _ name: SlotName, _ settings: SlotSettings, actor: String, nowMs: Int64) async throws -> SlotInfo {
        let s = settings
        guard try await db.first("""
            INSERT INTO slots(name, created_ms, max_age_s, max_bytes, max_records, max_message_bytes, max_subscribers, anonymous_read, anonymous_append)
            VALUES(\(name.rawValue), \(nowMs), \(s.maxAgeSeconds), \(s.maxBytes), \(s.maxRecords), \(s.maxMessageBytes), \(s.maxSubscribers),
                   \(s.anonymousRead), \(s.anonymousAppend))
            ON CONFLICT (name) DO NOTHING RETURNING id
            """) != nil else { throw StoreError.slotExists(name) }
        try await audit(db, actor: actor, action: "slot.create", target: name.rawValue, nowMs: nowMs)
        guard let info = try await slot(db, name) else { throw StoreError.backend("created slot vanished") }
        return info
    }

    static func updateSlot(_ db: PostgresSession, _ name: SlotName, _ settings: SlotSettings, actor: String, nowMs: Int64) async throws -> SlotInfo {
        let s = settings
        guard try await db.first("""
            UPDATE slots SET max_age_s = \(s.maxAgeSeconds), max_bytes = \(s.maxBytes), max_records = \(s.maxRecords),
                max_message_bytes = \(s.maxMessageBytes), max_subscribers = \(s.maxSubscribers), anonymous_read = \(s.anonymousRead),
                anonymous_append = \(s.anonymousAppend)
            WHERE name = \(name.rawValue) RETURNING id
            """) != nil else { throw StoreError.slotNotFound(name) }
        try await audit(db, actor: actor, action: "slot.update", target: name.rawValue, nowMs: nowMs)
        guard let info = try await slot(db, name) else { throw StoreError.backend("updated slot vanished") }
        return info
    }

    /// Deletes the slot with its streams, tokens, consumers and keys; refused while another slot's stream forks one of its streams.
    static func deleteSlot(_ db: PostgresSession, _ name: SlotName, actor: String, nowMs: Int64, changed: inout Set<Int64>) async throws {
        guard let slot = try await PostgresSlotLogQueries.lockSlot(db, name) else { throw StoreError.slotNotFound(name) }
        let id = slot.id
        let foreignForks = try await db.first("""
            SELECT count(*) FROM streams child JOIN streams parent ON child.parent_id = parent.id WHERE parent.slot_id = \(id) AND child.slot_id != \(id)
            """).map { try $0.int(0) } ?? 0
        if foreignForks > 0 {
            throw StoreError.streamConflict(StreamPath(name.rawValue)!, reason: "\(foreignForks) stream(s) in other slots are forks of this slot's streams")
        }
        let streamIDs = try await db.rows("SELECT id FROM streams WHERE slot_id = \(id)").map { try $0.int(0) }
        changed.formUnion(streamIDs)
        // Forks here of streams in other slots go with the slot: their sources are released.
        let outsideSources = try await db.rows("""
            SELECT child.parent_id FROM streams child JOIN streams parent ON child.parent_id = parent.id
            WHERE child.slot_id = \(id) AND parent.slot_id != \(id)
            """).map { try $0.int(0) }
        // The slot's forks point at their sources: drop the links first (a released source may be purged at once).
        try await db.run("UPDATE streams SET parent_id = NULL WHERE slot_id = \(id)")
        for source in outsideSources { try await PostgresStreamQueries.releaseSource(db, source, changed: &changed) }
        try await db.run("DELETE FROM records WHERE slot_id = \(id)")
        try await db.run("DELETE FROM producers WHERE stream_id IN (SELECT id FROM streams WHERE slot_id = \(id))")
        try await db.run("DELETE FROM streams WHERE slot_id = \(id)")
        try await db.run("DELETE FROM tokens WHERE slot = \(name.rawValue)")
        try await db.run("DELETE FROM consumers WHERE slot_id = \(id)")
        try await db.run("DELETE FROM event_keys WHERE slot_id = \(id)")
        changed.insert(ChangeKey.slot(id))
        try await db.run("DELETE FROM slots WHERE id = \(id)")
        try await audit(db, actor: actor, action: "slot.delete", target: name.rawValue, detail: "\(streamIDs.count) stream(s)", nowMs: nowMs)
    }

    // MARK: Tokens

    static let tokenColumns = "id, digest, slot, scopes, prefix, label, created_ms, expires_ms, last_used_ms, revoked_ms, rotated_from, last_used_addr"

    static func token(_ r: PostgresRandomAccessRow) throws -> TokenRecord {
        let scopes = Set(try r.text(3).split(separator: ",").compactMap { Scope(rawValue: String($0)) })
        return TokenRecord(id: try r.text(0), digest: try r.text(1), slot: try r.optionalText(2).flatMap { SlotName($0) }, scopes: scopes,
                           prefix: try r.optionalText(4), label: try r.text(5), createdAtMs: try r.int(6), expiresAtMs: try r.optionalInt(7),
                           lastUsedAtMs: try r.optionalInt(8), revokedAtMs: try r.optionalInt(9), rotatedFrom: try r.optionalText(10),
                           lastUsedAddress: try r.optionalText(11))
    }

    static func token(_ db: PostgresSession, id: String) async throws -> TokenRecord? {
        try await db.first("SELECT \(unescaped: tokenColumns) FROM tokens WHERE id = \(id)").map(token)
    }

    static func insertToken(_ db: PostgresSession, _ t: TokenRecord, actor: String, nowMs: Int64, action: String = "token.mint") async throws {
        if let slot = t.slot, try await db.first("SELECT 1 FROM slots WHERE name = \(slot.rawValue)") == nil { throw StoreError.slotNotFound(slot) }
        let scopes = t.scopes.map(\.rawValue).sorted().joined(separator: ",")
        try await db.run("""
            INSERT INTO tokens(id, digest, slot, scopes, prefix, label, created_ms, expires_ms, rotated_from)
            VALUES(\(t.id), \(t.digest), \(t.slot?.rawValue), \(scopes), \(t.prefix), \(t.label), \(t.createdAtMs), \(t.expiresAtMs), \(t.rotatedFrom))
            """)
        try await audit(db, actor: actor, action: action, target: t.id, detail: "slot=\(t.slot?.rawValue ?? "*") scopes=\(scopes)", nowMs: nowMs)
    }

    static func audit(_ db: PostgresSession, actor: String, action: String, target: String, detail: String? = nil, nowMs: Int64) async throws {
        try await db.run("INSERT INTO audit(at_ms, actor, action, target, detail) VALUES(\(nowMs), \(actor), \(action), \(target), \(detail))")
    }
}
