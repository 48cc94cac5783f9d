import HubCore
import PostgresNIO

extension PostgresStreamStore: AdminStore {
    public func createSlot(_ name: SlotName, settings: SlotSettings, actor: String) async throws(StoreError) -> SlotInfo {
        try await write { db, _ in try await PostgresAdminQueries.createSlot(db, name, settings, actor: actor, nowMs: Self.nowMs) }
    }

    public func slots() async throws(StoreError) -> [SlotInfo] {
        try await single { db in try await PostgresAdminQueries.slots(db) }
    }

    public func slot(_ name: SlotName) async throws(StoreError) -> SlotInfo {
        try await single { db in
            guard let info = try await PostgresAdminQueries.slot(db, name) else { throw StoreError.slotNotFound(name) }
            return info
        }
    }

    public func updateSlot(_ name: SlotName, settings: SlotSettings, actor: String) async throws(StoreError) -> SlotInfo {
        try await write { db, _ in try await PostgresAdminQueries.updateSlot(db, name, settings, actor: actor, nowMs: Self.nowMs) }
    }

    public func deleteSlot(_ name: SlotName, actor: String) async throws(StoreError) {
        try await write { db, changed in try await PostgresAdminQueries.deleteSlot(db, name, actor: actor, nowMs: Self.nowMs, changed: &changed) }
    }

    public func insertToken(_ token: TokenRecord, actor: String) async throws(StoreError) {
        try await write { db, _ in try await PostgresAdminQueries.insertToken(db, token, actor: actor, nowMs: Self.nowMs) }
    }

    public func tokens(slot: SlotName?) async throws(StoreError) -> [TokenRecord] {
        try await single { db in
            let columns = PostgresAdminQueries.tokenColumns
            if let slot {
                return try await db.rows("SELECT \(unescaped: columns) FROM tokens WHERE slot = \(slot.rawValue) ORDER BY created_ms, id")
                    .map(PostgresAdminQueries.token)
            }
            return try await db.rows("SELECT \(unescaped: columns) FROM tokens ORDER BY created_ms, id").map(PostgresAdminQueries.token)
        }
    }

    public func token(digest: String) async throws(StoreError) -> TokenRecord? {
        try await single { db in
            try await db.first("SELECT \(unescaped: PostgresAdminQueries.tokenColumns) FROM tokens WHERE digest = \(digest)").map(PostgresAdminQueries.token)
        }
    }

    public func token(id: String) async throws(StoreError) -> TokenRecord? {
        try await single { db in try await PostgresAdminQueries.token(db, id: id) }
    }

    public func rotateToken(_ id: String, replacement: TokenRecord, overlapUntilMs: Int64, actor: String) async throws(StoreError) {
        try await write { db, _ in
            let now = Self.nowMs
            guard let old = try await db.first("SELECT \(unescaped: PostgresAdminQueries.tokenColumns) FROM tokens WHERE id = \(id) FOR UPDATE")
                .map(PostgresAdminQueries.token), old.isUsable(atMs: now) else { throw StoreError.tokenNotFound(id) }
            try await PostgresAdminQueries.insertToken(db, replacement, actor: actor, nowMs: now, action: "token.rotate")
            // The old secret keeps working only for the overlap window (and never longer than it would have).
            let until = min(overlapUntilMs, old.expiresAtMs ?? Int64.max)
            try await db.run("UPDATE tokens SET expires_ms = \(until) WHERE id = \(id)")
        }
    }

    public func revokeToken(_ id: String, actor: String) async throws(StoreError) {
        try await write { db, _ in
            let now = Self.nowMs
            guard try await db.first("UPDATE tokens SET revoked_ms = \(now) WHERE id = \(id) AND revoked_ms IS NULL RETURNING 1") != nil else {
                throw StoreError.tokenNotFound(id)
            }
            try await PostgresAdminQueries.audit(db, actor: actor, action: "token.revoke", target: id, nowMs: now)
        }
    }

    public func touchToken(_ id: String, atMs: Int64, address: String?) async throws(StoreError) {
        try await single { db in try await db.run("UPDATE tokens SET last_used_ms = \(atMs), last_used_addr = \(address) WHERE id = \(id)") }
    }

    public func hasGlobalAdminToken() async throws(StoreError) -> Bool {
        let now = Self.nowMs
        return try await single { db in
            try await db.first("""
                SELECT count(*) FROM tokens WHERE slot IS NULL AND ',' || scopes || ',' LIKE '%,admin,%' AND revoked_ms IS NULL
                AND (expires_ms IS NULL OR expires_ms > \(now))
                """).map { try $0.int(0) } ?? 0 > 0
        }
    }

    public func streams(slot: SlotName?, limit: Int) async throws(StoreError) -> [StreamSummary] {
        try await single { db in
            let columns = "s.path, s.content_type, s.head, s.record_count, s.byte_count, s.closed, s.deleted, s.created_ms, s.fork_source"
            let rows: [PostgresRandomAccessRow]
            if let slot {
                rows = try await db.rows("""
                    SELECT \(unescaped: columns) FROM streams s JOIN slots sl ON s.slot_id = sl.id WHERE sl.name = \(slot.rawValue)
                    ORDER BY s.path LIMIT \(Int64(limit))
                    """)
            } else {
                rows = try await db.rows("SELECT \(unescaped: columns) FROM streams s ORDER BY s.path LIMIT \(Int64(limit))")
            }
            return try rows.map { r in
                guard let path = StreamPath(try r.text(0)), let type = ContentType(validating: try r.text(1)) else {
                    throw StoreError.backend("corrupt stream row")
                }
                return StreamSummary(path: path, contentType: type, head: Offset(try r.seq(2)), records: try r.int(3), bytes: try r.int(4),
                                     closed: try r.bool(5), deleted: try r.bool(6), createdAtMs: try r.int(7), forkedFrom: try r.optionalText(8))
            }
        }
    }

    public func audit(limit: Int) async throws(StoreError) -> [AuditEntry] {
        try await single { db in
            try await db.rows("SELECT id, at_ms, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT \(Int64(limit))").map {
                AuditEntry(id: try $0.int(0), atMs: try $0.int(1), actor: try $0.text(2), action: try $0.text(3), target: try $0.text(4),
                           detail: try $0.optionalText(5))
            }
        }
    }

    public func recordAudit(actor: String, action: String, target: String) async throws(StoreError) {
        try await write { db, _ in try await PostgresAdminQueries.audit(db, actor: actor, action: action, target: target, nowMs: Self.nowMs) }
    }
}

extension PostgresStreamStore: SlotLog {
    public func appendEvents(_ slot: SlotName, _ events: [NewEvent], createsSlot: Bool, dedupWindowMs: Int64) async throws(StoreError) -> [UInt64] {
        try await write { db, changed in
            try await PostgresSlotLogQueries.appendEvents(db, slot: slot, events: events, createsSlot: createsSlot, dedupWindowMs: dedupWindowMs,
                                                          nowMs: Self.nowMs, changed: &changed)
        }
    }

    public func readLog(_ scope: SlotScope, after: UInt64, limit: Int, maxBytes: Int) async throws(StoreError) -> SlotReadResult {
        try await snapshot { db in
            try await PostgresSlotLogQueries.readLog(db, scope: scope, after: after, limit: limit, maxBytes: maxBytes, nowMs: Self.nowMs)
        }
    }

    public func logState(_ slot: SlotName) async throws(StoreError) -> SlotLogState {
        try await snapshot { db in try await PostgresSlotLogQueries.logState(db, slot) }
    }

    public func openConsumer(_ name: String, scope: SlotScope, ackWaitMs: Int64, maxInFlight: Int64) async throws(StoreError) -> ConsumerState {
        try await write { db, _ in
            try await PostgresSlotLogQueries.openConsumer(db, name: name, scope: scope, ackWaitMs: ackWaitMs, maxInFlight: maxInFlight, nowMs: Self.nowMs)
        }
    }

    public func acknowledge(_ name: String, slot: SlotName, seq: UInt64) async throws(StoreError) -> UInt64 {
        try await write { db, _ in try await PostgresSlotLogQueries.acknowledge(db, name: name, slot: slot, seq: seq, nowMs: Self.nowMs) }
    }

    public func consumers(slot: SlotName?) async throws(StoreError) -> [ConsumerState] {
        try await single { db in try await PostgresSlotLogQueries.consumers(db, slot: slot) }
    }

    public func deleteConsumer(_ name: String, slot: SlotName, actor: String) async throws(StoreError) {
        try await write { db, _ in try await PostgresSlotLogQueries.deleteConsumer(db, name: name, slot: slot, actor: actor, nowMs: Self.nowMs) }
    }

    public func applyRetention(dedupWindowMs: Int64) async throws(StoreError) -> Int {
        let slots = try await single { db in try await PostgresSlotLogQueries.slotsWithRetention(db) }
        var removed = 0
        for name in slots {
            // One slot per transaction, repeated while a pass hits its cap, so appends interleave with a long trim.
            while true {
                let n = try await write { db, _ in
                    guard let slot = try await PostgresSlotLogQueries.lockSlot(db, name) else { return 0 }
                    return try await PostgresSlotLogQueries.applyRetention(db, slot: slot, nowMs: Self.nowMs)
                }
                removed += n
                if n < Int(PostgresSlotLogQueries.trimBatch) { break }
            }
        }
        try await single { db in
            try await db.run("DELETE FROM event_keys WHERE created_ms < \(Self.nowMs - dedupWindowMs)")
            try await db.run("DELETE FROM tickets WHERE expires_ms < \(Self.nowMs)")
        }
        return removed
    }
}

extension PostgresStreamStore: ExpirySweeping {
    public func sweepExpired(limit: Int) async throws(StoreError) -> Int {
        let now = Self.nowMs
        let paths = try await single { db in
            try await db.rows("""
                SELECT path FROM streams WHERE NOT deleted AND
                    ((expires_at_ms IS NOT NULL AND expires_at_ms <= \(now)) OR (ttl_s IS NOT NULL AND accessed_ms + ttl_s * 1000 <= \(now)))
                LIMIT \(Int64(limit))
                """).compactMap { StreamPath(try $0.text(0)) }
        }
        // One transaction per stream under its slot's lock; `live` applies the same rule as every access.
        for path in paths {
            try await write { db, changed in
                try await PostgresSlotLogQueries.lockSlot(db, path.slot)
                _ = try await PostgresStreamQueries.live(db, path: path, nowMs: now, changed: &changed)
            }
        }
        return paths.count
    }
}

extension PostgresStreamStore: TicketLedger {
    public func storeTicket(digest: String, _ ticket: StoredTicket) async throws(StoreError) {
        try await single { db in
            try await db.run("""
                INSERT INTO tickets(digest, token_id, path, scope, expires_ms)
                VALUES(\(digest), \(ticket.tokenID), \(ticket.path.rawValue), \(ticket.scope.rawValue), \(ticket.expiresAtMs))
                """)
        }
    }

    public func redeemTicket(digest: String, nowMs: Int64) async throws(StoreError) -> StoredTicket? {
        // DELETE … RETURNING: of two nodes redeeming one ticket at once, exactly one gets the row.
        try await single { db in
            guard let r = try await db.first("DELETE FROM tickets WHERE digest = \(digest) RETURNING token_id, path, scope, expires_ms"),
                  let path = StreamPath(try r.text(1)), let scope = Scope(rawValue: try r.text(2)) else { return nil }
            let expires = try r.int(3)
            return expires > nowMs ? StoredTicket(tokenID: try r.text(0), path: path, scope: scope, expiresAtMs: expires) : nil
        }
    }
}
