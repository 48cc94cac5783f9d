import CSQLite
import HubCore

/// SQL for slots, tokens and the audit log. Mutations run inside the writer's transaction and write their audit
/// entry in the same transaction, so the log never disagrees with the data.
enum AdminQueries {
    static let slotColumns = """
        s.name, s.created_ms, \(SlotHead.sql), s.max_age_s, s.max_bytes, s.max_records, s.max_message_bytes, s.max_subscribers,
        s.anonymous_read, s.anonymous_append,
        (SELECT count(*) FROM streams st WHERE st.slot_id = s.id AND st.deleted = 0),
        (SELECT coalesce(sum(record_count), 0) FROM streams st WHERE st.slot_id = s.id),
        (SELECT coalesce(sum(byte_count), 0) FROM streams st WHERE st.slot_id = s.id)
        """

    static func slotInfo(_ s: Statement) throws(StoreError) -> SlotInfo {
        guard let name = SlotName(s.text(0)) else { throw .backend("corrupt slot name") }
        let settings = SlotSettings(maxAgeSeconds: s.optionalInt(3), maxBytes: s.optionalInt(4), maxRecords: s.optionalInt(5),
                                    maxMessageBytes: s.optionalInt(6), maxSubscribers: s.optionalInt(7),
                                    anonymousRead: s.int(8) != 0, anonymousAppend: s.int(9) != 0)
        return SlotInfo(name: name, settings: settings, createdAtMs: s.int(1), headSeq: UInt64(s.int(2)), streams: s.int(10),
                        records: s.int(11), bytes: s.int(12))
    }

    static func slot(_ db: SQLiteConnection, _ name: SlotName) throws(StoreError) -> SlotInfo? {
        try db.first("SELECT \(slotColumns) FROM slots s WHERE s.name = ?", [.text(name.rawValue)]) { s throws(StoreError) in try slotInfo(s) }
    }

    static func settingsValues(_ settings: SlotSettings) -> [SQLValue] {
        [.optional(settings.maxAgeSeconds), .optional(settings.maxBytes), .optional(settings.maxRecords),
         .optional(settings.maxMessageBytes), .optional(settings.maxSubscribers),
         .int(Int64(settings.anonymousRead ? 1 : 0)), .int(Int64(settings.anonymousAppend ? 1 : 0))]
    }

    static func createSlot(_ db: SQLiteConnection, _ name: SlotName, _ settings: SlotSettings, actor: String, nowMs: Int64) throws(StoreError) -> SlotInfo {
        if try slot(db, name) != nil { throw .slotExists(name) }
        try StreamQueries.run(db, """
            INSERT INTO slots(id, name, head_seq, created_ms, max_age_s, max_bytes, max_records, max_message_bytes, max_subscribers,
                              anonymous_read, anonymous_append) VALUES(?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.int(try RecordKey.newSlotID(db)), .text(name.rawValue), .int(nowMs)] + settingsValues(settings))
        try audit(db, actor: actor, action: "slot.create", target: name.rawValue, nowMs: nowMs)
        guard let info = try slot(db, name) else { throw .backend("created slot vanished") }
        return info
    }

    static func updateSlot(_ db: SQLiteConnection, _ name: SlotName, _ settings: SlotSettings, actor: String, nowMs: Int64) throws(StoreError) -> SlotInfo {
        guard try slot(db, name) != nil else { throw .slotNotFound(name) }
        try StreamQueries.run(db, """
            UPDATE slots SET max_age_s = ?, max_bytes = ?, max_records = ?, max_message_bytes = ?, max_subscribers = ?,
                             anonymous_read = ?, anonymous_append = ? WHERE name = ?
            """, settingsValues(settings) + [.text(name.rawValue)])
        try audit(db, actor: actor, action: "slot.update", target: name.rawValue, nowMs: nowMs)
        guard let info = try slot(db, name) else { throw .backend("updated slot vanished") }
        return info
    }

    /// Deletes the slot, its streams (with records and producer state) and its tokens. Refused while a stream in
    /// another slot is a fork of one of its streams: that fork still reads the data.
    static func deleteSlot(_ db: SQLiteConnection, _ name: SlotName, actor: String, nowMs: Int64, changed: inout Set<Int64>) throws(StoreError) {
        guard let id = try db.first("SELECT id FROM slots WHERE name = ?", [.text(name.rawValue)], { $0.int(0) }) else { throw .slotNotFound(name) }
        let foreignForks = try db.first("""
            SELECT count(*) FROM streams child JOIN streams parent ON child.parent_id = parent.id
            WHERE parent.slot_id = ? AND child.slot_id != ?
            """, [.int(id), .int(id)]) { $0.int(0) } ?? 0
        if foreignForks > 0 {
            throw .streamConflict(StreamPath(name.rawValue)!, reason: "\(foreignForks) stream(s) in other slots are forks of this slot's streams")
        }
        let streamIDs = try db.query("SELECT id FROM streams WHERE slot_id = ?", [.int(id)]) { $0.int(0) }
        changed.formUnion(streamIDs)
        // Forks here of streams in other slots go with the slot: their sources are released.
        let outsideSources = try db.query("""
            SELECT child.parent_id FROM streams child JOIN streams parent ON child.parent_id = parent.id
            WHERE child.slot_id = ? AND parent.slot_id != ?
            """, [.int(id), .int(id)]) { $0.int(0) }
        for source in outsideSources { try StreamQueries.releaseSource(db, source, changed: &changed) }
        try StreamQueries.run(db, "DELETE FROM records WHERE stream_id IN (SELECT id FROM streams WHERE slot_id = ?)", [.int(id)])
        try StreamQueries.run(db, "DELETE FROM producers WHERE stream_id IN (SELECT id FROM streams WHERE slot_id = ?)", [.int(id)])
        try StreamQueries.run(db, "DELETE FROM streams WHERE slot_id = ?", [.int(id)])
        try StreamQueries.run(db, "DELETE FROM tokens WHERE slot = ?", [.text(name.rawValue)])
        try StreamQueries.run(db, "DELETE FROM consumers WHERE slot_id = ?", [.int(id)])
        try StreamQueries.run(db, "DELETE FROM event_keys WHERE slot_id = ?", [.int(id)])
        changed.insert(ChangeKey.slot(id))
        try StreamQueries.run(db, "DELETE FROM slots WHERE id = ?", [.int(id)])
        try audit(db, actor: actor, action: "slot.delete", target: name.rawValue, detail: "\(streamIDs.count) stream(s)", nowMs: nowMs)
    }

    // MARK: Tokens

    static let tokenColumns = "id, digest, slot, scopes, prefix, label, created_ms, expires_ms, last_used_ms, revoked_ms, rotated_from, last_used_addr"

    static func token(_ s: Statement) throws(StoreError) -> TokenRecord {
        let slotText = s.optionalText(2)
        let scopes = Set(s.text(3).split(separator: ",").compactMap { Scope(rawValue: String($0)) })
        return TokenRecord(id: s.text(0), digest: s.text(1), slot: slotText.flatMap { SlotName($0) }, scopes: scopes, prefix: s.optionalText(4),
                           label: s.text(5), createdAtMs: s.int(6), expiresAtMs: s.optionalInt(7), lastUsedAtMs: s.optionalInt(8),
                           revokedAtMs: s.optionalInt(9), rotatedFrom: s.optionalText(10), lastUsedAddress: s.optionalText(11))
    }

    static func insertToken(_ db: SQLiteConnection, _ t: TokenRecord, actor: String, nowMs: Int64, action: String = "token.mint") throws(StoreError) {
        if let slot = t.slot, try db.first("SELECT 1 FROM slots WHERE name = ?", [.text(slot.rawValue)], { $0.int(0) }) == nil {
            throw .slotNotFound(slot)
        }
        try StreamQueries.run(db, "INSERT INTO tokens(\(tokenColumns)) VALUES(?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, NULL)", [
            .text(t.id), .text(t.digest), .optional(t.slot?.rawValue), .text(t.scopes.map(\.rawValue).sorted().joined(separator: ",")),
            .optional(t.prefix), .text(t.label), .int(t.createdAtMs), .optional(t.expiresAtMs), .optional(t.rotatedFrom),
        ])
        try audit(db, actor: actor, action: action, target: t.id,
                  detail: "slot=\(t.slot?.rawValue ?? "*") scopes=\(t.scopes.map(\.rawValue).sorted().joined(separator: ","))", nowMs: nowMs)
    }

    static func audit(_ db: SQLiteConnection, actor: String, action: String, target: String, detail: String? = nil, nowMs: Int64) throws(StoreError) {
        try StreamQueries.run(db, "INSERT INTO audit(at_ms, actor, action, target, detail) VALUES(?, ?, ?, ?, ?)",
                              [.int(nowMs), .text(actor), .text(action), .text(target), .optional(detail)])
    }
}
