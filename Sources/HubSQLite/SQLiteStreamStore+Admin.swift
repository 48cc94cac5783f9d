import Foundation
import HubCore

extension SQLiteStreamStore: AdminStore {
    public func createSlot(_ name: SlotName, settings: SlotSettings, actor: String) async throws(StoreError) -> SlotInfo {
        try await writer.perform { db, _ throws(StoreError) in try AdminQueries.createSlot(db, name, settings, actor: actor, nowMs: Self.nowMs) }
    }

    public func slots() async throws(StoreError) -> [SlotInfo] {
        try await readers.read { db throws(StoreError) in
            try db.query("SELECT \(AdminQueries.slotColumns) FROM slots s ORDER BY s.name") { s throws(StoreError) in try AdminQueries.slotInfo(s) }
        }
    }

    public func slot(_ name: SlotName) async throws(StoreError) -> SlotInfo {
        try await readers.read { db throws(StoreError) in
            guard let info = try AdminQueries.slot(db, name) else { throw StoreError.slotNotFound(name) }
            return info
        }
    }

    public func updateSlot(_ name: SlotName, settings: SlotSettings, actor: String) async throws(StoreError) -> SlotInfo {
        try await writer.perform { db, _ throws(StoreError) in try AdminQueries.updateSlot(db, name, settings, actor: actor, nowMs: Self.nowMs) }
    }

    public func deleteSlot(_ name: SlotName, actor: String) async throws(StoreError) {
        try await writer.perform { db, changed throws(StoreError) in
            try AdminQueries.deleteSlot(db, name, actor: actor, nowMs: Self.nowMs, changed: &changed)
        }
    }

    public func insertToken(_ token: TokenRecord, actor: String) async throws(StoreError) {
        try await writer.perform { db, _ throws(StoreError) in try AdminQueries.insertToken(db, token, actor: actor, nowMs: Self.nowMs) }
    }

    public func tokens(slot: SlotName?) async throws(StoreError) -> [TokenRecord] {
        try await readers.read { db throws(StoreError) in
            if let slot {
                return try db.query("SELECT \(AdminQueries.tokenColumns) FROM tokens WHERE slot = ? ORDER BY created_ms", [.text(slot.rawValue)]) {
                    s throws(StoreError) in try AdminQueries.token(s)
                }
            }
            return try db.query("SELECT \(AdminQueries.tokenColumns) FROM tokens ORDER BY created_ms") { s throws(StoreError) in try AdminQueries.token(s) }
        }
    }

    public func token(digest: String) async throws(StoreError) -> TokenRecord? {
        try await readers.read { db throws(StoreError) in
            try db.first("SELECT \(AdminQueries.tokenColumns) FROM tokens WHERE digest = ?", [.text(digest)]) { s throws(StoreError) in try AdminQueries.token(s) }
        }
    }

    public func token(id: String) async throws(StoreError) -> TokenRecord? {
        try await readers.read { db throws(StoreError) in
            try db.first("SELECT \(AdminQueries.tokenColumns) FROM tokens WHERE id = ?", [.text(id)]) { s throws(StoreError) in try AdminQueries.token(s) }
        }
    }

    public func rotateToken(_ id: String, replacement: TokenRecord, overlapUntilMs: Int64, actor: String) async throws(StoreError) {
        try await writer.perform { db, _ throws(StoreError) in
            let now = Self.nowMs
            guard let old = try db.first("SELECT \(AdminQueries.tokenColumns) FROM tokens WHERE id = ?", [.text(id)], { s throws(StoreError) in
                try AdminQueries.token(s)
            }), old.isUsable(atMs: now) else { throw StoreError.tokenNotFound(id) }
            try AdminQueries.insertToken(db, replacement, actor: actor, nowMs: now, action: "token.rotate")
            // The old secret keeps working only for the overlap window (and never longer than it would have).
            let until = min(overlapUntilMs, old.expiresAtMs ?? Int64.max)
            try StreamQueries.run(db, "UPDATE tokens SET expires_ms = ? WHERE id = ?", [.int(until), .text(id)])
        }
    }

    public func revokeToken(_ id: String, actor: String) async throws(StoreError) {
        try await writer.perform { db, _ throws(StoreError) in
            let now = Self.nowMs
            try StreamQueries.run(db, "UPDATE tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL", [.int(now), .text(id)])
            guard db.changes == 1 else { throw StoreError.tokenNotFound(id) }
            try AdminQueries.audit(db, actor: actor, action: "token.revoke", target: id, nowMs: now)
        }
    }

    public func touchToken(_ id: String, atMs: Int64, address: String?) async throws(StoreError) {
        try await writer.perform { db, _ throws(StoreError) in
            try StreamQueries.run(db, "UPDATE tokens SET last_used_ms = ?, last_used_addr = ? WHERE id = ?", [.int(atMs), .optional(address), .text(id)])
        }
    }

    public func hasGlobalAdminToken() async throws(StoreError) -> Bool {
        let now = Self.nowMs
        return try await readers.read { db throws(StoreError) in
            try db.first("""
                SELECT count(*) FROM tokens WHERE slot IS NULL AND ',' || scopes || ',' LIKE '%,admin,%' AND revoked_ms IS NULL
                AND (expires_ms IS NULL OR expires_ms > ?)
                """, [.int(now)]) { $0.int(0) } ?? 0 > 0
        }
    }

    public func streams(slot: SlotName?, limit: Int) async throws(StoreError) -> [StreamSummary] {
        try await readers.read { db throws(StoreError) in
            let columns = "s.path, s.content_type, s.head, s.record_count, s.byte_count, s.closed, s.deleted, s.created_ms, s.fork_source"
            let map: (Statement) throws(StoreError) -> StreamSummary = { s throws(StoreError) in
                guard let path = StreamPath(s.text(0)), let type = ContentType(validating: s.text(1)) else { throw .backend("corrupt stream row") }
                return StreamSummary(path: path, contentType: type, head: Offset(UInt64(s.int(2))), records: s.int(3), bytes: s.int(4),
                                     closed: s.int(5) != 0, deleted: s.int(6) != 0, createdAtMs: s.int(7), forkedFrom: s.optionalText(8))
            }
            if let slot {
                return try db.query("SELECT \(columns) FROM streams s JOIN slots sl ON s.slot_id = sl.id WHERE sl.name = ? ORDER BY s.path LIMIT ?",
                                    [.text(slot.rawValue), .int(Int64(limit))], map)
            }
            return try db.query("SELECT \(columns) FROM streams s ORDER BY s.path LIMIT ?", [.int(Int64(limit))], map)
        }
    }

    public func audit(limit: Int) async throws(StoreError) -> [AuditEntry] {
        try await readers.read { db throws(StoreError) in
            try db.query("SELECT id, at_ms, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ?", [.int(Int64(limit))]) {
                AuditEntry(id: $0.int(0), atMs: $0.int(1), actor: $0.text(2), action: $0.text(3), target: $0.text(4), detail: $0.optionalText(5))
            }
        }
    }

    public func recordAudit(actor: String, action: String, target: String) async throws(StoreError) {
        try await writer.perform { db, _ throws(StoreError) in
            try AdminQueries.audit(db, actor: actor, action: action, target: target, nowMs: Self.nowMs)
        }
    }
}
