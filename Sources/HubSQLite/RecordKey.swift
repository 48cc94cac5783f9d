import HubCore

/// A record's rowid is its slot and its seq in one integer, `slot_id << 43 | seq` (migration 6). The records table is
/// then ordered by (slot, seq): a slot read or a retention trim is one rowid range, an append lands at the right end
/// of its slot's range, and no (slot_id, seq) index is written per append (one B-tree fewer: +13 % on 100-message
/// batches, Benchmarks/RESULTS.md). `slot_id` and `seq` stay readable as generated columns.
///
/// The price is two fixed bounds, both refused with `StoreError.capacityExhausted` before anything is written:
/// slot ids up to 2^20 − 1 (1 048 575 slots at a time: `newSlotID` reuses the ids of deleted slots) and 2^43 − 1 seqs per
/// slot over its lifetime (8.8 × 10^12 records; 100 days at a sustained million a second).
enum RecordKey {
    static let seqBits = 43
    static let maxSeq: UInt64 = (1 << seqBits) - 1
    static let maxSlotID: Int64 = (1 << 20) - 1

    /// The rowid of the record with `seq` in slot `slot`.
    static func id(slot: Int64, seq: UInt64) -> Int64 { slot << seqBits | Int64(seq) }

    /// The SQL condition "`id` is one of slot `slot`'s records", both given as SQL expressions (columns of a query).
    static func inSlotSQL(id: String, slot: String) -> String {
        "\(id) > (\(slot) << \(seqBits)) AND \(id) <= ((\(slot) << \(seqBits)) | \(maxSeq))"
    }

    /// Bounds for `id > lower AND id <= upper`: the slot's records with a seq after `after`, up to `through`.
    static func range(slot: Int64, after: UInt64, through: UInt64 = maxSeq) -> [SQLValue] {
        [.int(id(slot: slot, seq: after)), .int(id(slot: slot, seq: min(through, maxSeq)))]
    }

    /// The id for a new slot: the highest in use plus one (what SQLite itself would choose) while the key holds it,
    /// else the lowest id no slot has (a deleted slot's; its records went with it). Refuses when every id is taken.
    static func newSlotID(_ db: SQLiteConnection) throws(StoreError) -> Int64 {
        let top = try db.first("SELECT coalesce(max(id), 0) FROM slots") { $0.int(0) } ?? 0
        if top < maxSlotID { return top + 1 }
        let lowestFree = try db.first("""
            SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM slots WHERE id = 1) THEN 1
                   ELSE (SELECT min(a.id) + 1 FROM slots a WHERE NOT EXISTS (SELECT 1 FROM slots b WHERE b.id = a.id + 1)) END
            """) { $0.int(0) } ?? (maxSlotID + 1)
        guard lowestFree <= maxSlotID else {
            throw .capacityExhausted("this store holds at most \(maxSlotID) slots; delete unused slots first")
        }
        return lowestFree
    }

    /// Refuses a slot head the key cannot hold (checked when records are appended).
    static func requireSeq(_ headSeq: UInt64) throws(StoreError) {
        guard headSeq <= maxSeq else {
            throw .capacityExhausted("a slot holds at most \(maxSeq) records over its lifetime; this one has used them all")
        }
    }
}

/// A slot's head seq without a slot-row write per append (one B-tree page less per commit: −10 % CPU per single
/// publish, Benchmarks/RESULTS.md). The newest record of a slot — the end of its rowid range — carries the head;
/// `slots.head_seq` is brought up to date only before records are deleted (`persist`), so a head whose records are
/// gone is never forgotten and a seq is never handed out twice. The head is the larger of the two.
enum SlotHead {
    /// The head as an SQL expression over `slots` aliased `s`: one seek to the end of the slot's range.
    static let sql = """
        max(s.head_seq, coalesce((SELECT max(r.id) FROM records r WHERE \(RecordKey.inSlotSQL(id: "r.id", slot: "s.id"))) \
        & \(RecordKey.maxSeq), 0))
        """

    /// Writes the head into the slot row; in the transaction that is about to delete some of the slot's records.
    static func persist(_ db: SQLiteConnection, slotID: Int64) throws(StoreError) {
        try StreamQueries.run(db, "UPDATE slots AS s SET head_seq = \(sql) WHERE id = ?", [.int(slotID)])
    }
}
