import HubCore

extension SQLiteStreamStore: SlotLog {
    public func appendEvents(_ slot: SlotName, _ events: [NewEvent], createsSlot: Bool, dedupWindowMs: Int64) async throws(StoreError) -> [UInt64] {
        try await writer.perform { db, changed throws(StoreError) in
            let seqs = try SlotLogQueries.appendEvents(db, slot: slot, events: events, createsSlot: createsSlot, dedupWindowMs: dedupWindowMs,
                                                       nowMs: Self.nowMs, changed: &changed)
            try Self.applyRecordLimit(db, slot: slot, changed: &changed)
            return seqs
        }
    }

    /// A slot's record limit holds at every commit, not only at the next sweep: trimming the one or few records an
    /// append pushes over it is cheap. Age and byte limits are applied by the periodic sweep.
    static func applyRecordLimit(_ db: SQLiteConnection, slot name: SlotName, changed: inout Set<Int64>) throws(StoreError) {
        let slot = try SlotLogQueries.slot(db, name)
        try applyRecordLimit(db, SlotLimitState(id: slot.id, headSeq: slot.headSeq, floorSeq: slot.floorSeq, maxRecords: slot.maxRecords),
                             changed: &changed)
    }

    /// The same, with the slot's counters already read (a stream append gets them from its slot update).
    static func applyRecordLimit(_ db: SQLiteConnection, _ slot: SlotLimitState, changed: inout Set<Int64>) throws(StoreError) {
        guard let maxRecords = slot.maxRecords, slot.headSeq > UInt64(maxRecords), slot.headSeq - UInt64(maxRecords) > slot.floorSeq else { return }
        // Capped like a sweep pass: a limit just lowered far below the slot's size is caught up by the sweep.
        let through = min(slot.headSeq - UInt64(maxRecords), slot.floorSeq + SlotLogQueries.trimBatch)
        _ = try SlotLogQueries.trim(db, slotID: slot.id, through: through, changed: &changed)
    }

    public func readLog(_ scope: SlotScope, after: UInt64, limit: Int, maxBytes: Int) async throws(StoreError) -> SlotReadResult {
        try await readers.read { db throws(StoreError) in
            try SlotLogQueries.readLog(db, scope: scope, after: after, limit: limit, maxBytes: maxBytes, nowMs: Self.nowMs)
        }
    }

    public func logState(_ slot: SlotName) async throws(StoreError) -> SlotLogState {
        try await readers.read { db throws(StoreError) in try SlotLogQueries.logState(db, slot) }
    }

    public func openConsumer(_ name: String, scope: SlotScope, ackWaitMs: Int64, maxInFlight: Int64) async throws(StoreError) -> ConsumerState {
        try await writer.perform { db, _ throws(StoreError) in
            try SlotLogQueries.openConsumer(db, name: name, scope: scope, ackWaitMs: ackWaitMs, maxInFlight: maxInFlight, nowMs: Self.nowMs)
        }
    }

    public func acknowledge(_ name: String, slot: SlotName, seq: UInt64) async throws(StoreError) -> UInt64 {
        try await writer.perform { db, _ throws(StoreError) in
            try SlotLogQueries.acknowledge(db, name: name, slot: slot, seq: seq, nowMs: Self.nowMs)
        }
    }

    public func consumers(slot: SlotName?) async throws(StoreError) -> [ConsumerState] {
        try await readers.read { db throws(StoreError) in try SlotLogQueries.consumers(db, slot: slot) }
    }

    public func deleteConsumer(_ name: String, slot: SlotName, actor: String) async throws(StoreError) {
        try await writer.perform { db, _ throws(StoreError) in
            try SlotLogQueries.deleteConsumer(db, name: name, slot: slot, actor: actor, nowMs: Self.nowMs)
        }
    }

    public func applyRetention(dedupWindowMs: Int64) async throws(StoreError) -> Int {
        let slots = try await readers.read { db throws(StoreError) in try SlotLogQueries.slotsWithRetention(db) }
        var removed = 0
        for name in slots {
            // One slot per transaction, repeated while a pass hits its cap, so appends interleave with a long trim.
            while true {
                let n = try await writer.perform { db, changed throws(StoreError) in
                    guard let slot = try? SlotLogQueries.slot(db, name) else { return 0 }
                    return try SlotLogQueries.applyRetention(db, slot: slot, nowMs: Self.nowMs, changed: &changed)
                }
                removed += n
                if n < Int(SlotLogQueries.trimBatch) { break }
            }
        }
        try await writer.perform { db, _ throws(StoreError) in
            try StreamQueries.run(db, "DELETE FROM event_keys WHERE created_ms < ?", [.int(Self.nowMs - dedupWindowMs)])
        }
        return removed
    }
}

/// What a slot's record limit needs to know right after an insert.
struct SlotLimitState {
    let id: Int64
    let headSeq: UInt64
    let floorSeq: UInt64
    let maxRecords: Int64?
}
