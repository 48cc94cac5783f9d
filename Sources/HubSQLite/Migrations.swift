import CSQLite
import HubCore

/// Versioned schema. Version N is `migrations[N-1]`; `PRAGMA user_version` records the applied version.
/// Append new migrations at the end, never edit a shipped one. A database newer than `migrations.count` is refused.
enum Migrations {
    static let all: [String] = [
        // 1: slots, streams (with fork lineage and producer/closed state), the slot log, producer state.
        """
        CREATE TABLE slots(
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            head_seq INTEGER NOT NULL DEFAULT 0,
            created_ms INTEGER NOT NULL
        );
        -- AUTOINCREMENT: a re-created path never reuses an id, so ETags and wake-ups of the old stream cannot match it.
        CREATE TABLE streams(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL UNIQUE,
            slot_id INTEGER NOT NULL REFERENCES slots(id),
            content_type TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            accessed_ms INTEGER NOT NULL,
            ttl_s INTEGER,
            expires_at_ms INTEGER,
            expires_at_text TEXT,
            closed INTEGER NOT NULL DEFAULT 0,
            stream_seq TEXT,
            head INTEGER NOT NULL,
            parent_id INTEGER REFERENCES streams(id),
            parent_head INTEGER,
            fork_source TEXT,
            fork_offset INTEGER,
            fork_sub_offset INTEGER NOT NULL DEFAULT 0,
            fork_count INTEGER NOT NULL DEFAULT 0,
            deleted INTEGER NOT NULL DEFAULT 0,
            record_count INTEGER NOT NULL DEFAULT 0,
            byte_count INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE records(
            stream_id INTEGER NOT NULL,
            pos INTEGER NOT NULL,
            slot_id INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            batch_end INTEGER NOT NULL,
            ts_ms INTEGER NOT NULL,
            type TEXT,
            body BLOB NOT NULL,
            PRIMARY KEY(stream_id, pos)
        );
        CREATE UNIQUE INDEX records_slot_seq ON records(slot_id, seq);
        CREATE TABLE producers(
            stream_id INTEGER NOT NULL,
            producer TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            last_seq INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL,
            PRIMARY KEY(stream_id, producer)
        ) WITHOUT ROWID;
        """,
        // 2: slot settings, tokens (digests only), the audit log.
        """
        ALTER TABLE slots ADD COLUMN max_age_s INTEGER;
        ALTER TABLE slots ADD COLUMN max_bytes INTEGER;
        ALTER TABLE slots ADD COLUMN max_records INTEGER;
        ALTER TABLE slots ADD COLUMN max_message_bytes INTEGER;
        ALTER TABLE slots ADD COLUMN max_subscribers INTEGER;
        ALTER TABLE slots ADD COLUMN anonymous_read INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE slots ADD COLUMN anonymous_append INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE tokens(
            id TEXT PRIMARY KEY,
            digest TEXT NOT NULL UNIQUE,
            slot TEXT,
            scopes TEXT NOT NULL,
            prefix TEXT,
            label TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            expires_ms INTEGER,
            last_used_ms INTEGER,
            last_used_addr TEXT,
            revoked_ms INTEGER,
            rotated_from TEXT
        );
        CREATE INDEX tokens_slot ON tokens(slot);
        CREATE TABLE audit(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at_ms INTEGER NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            detail TEXT
        );
        """,
        // 3: the slot log: retention floors, event dedup keys, durable consumers.
        """
        ALTER TABLE slots ADD COLUMN floor_seq INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE streams ADD COLUMN trimmed_pos INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE streams ADD COLUMN trimmed_seq INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX records_stream_seq ON records(stream_id, seq);
        CREATE TABLE event_keys(
            slot_id INTEGER NOT NULL,
            key TEXT NOT NULL,
            seq INTEGER NOT NULL,
            created_ms INTEGER NOT NULL,
            PRIMARY KEY(slot_id, key)
        ) WITHOUT ROWID;
        CREATE INDEX event_keys_age ON event_keys(created_ms);
        CREATE TABLE consumers(
            slot_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            stream TEXT,
            acked_seq INTEGER NOT NULL DEFAULT 0,
            ack_wait_ms INTEGER NOT NULL,
            max_in_flight INTEGER NOT NULL,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL,
            PRIMARY KEY(slot_id, name)
        ) WITHOUT ROWID;
        """,
        // 4: Durable Streams subscriptions (§11): one JSON document each, `due_ms` for the lease and delivery timer;
        // secrets every node shares (the webhook signing key).
        """
        CREATE TABLE subscriptions(
            namespace TEXT NOT NULL,
            id TEXT NOT NULL,
            doc TEXT NOT NULL,
            due_ms INTEGER,
            PRIMARY KEY(namespace, id)
        ) WITHOUT ROWID;
        CREATE INDEX subscriptions_due ON subscriptions(due_ms) WHERE due_ms IS NOT NULL;
        CREATE TABLE secrets(
            name TEXT PRIMARY KEY,
            value BLOB NOT NULL
        ) WITHOUT ROWID;
        """,
        // 5: no (stream_id, seq) index: within a stream seq grows with pos, so a read by seq finds its start by a
        // search over the primary key (`SlotLogQueries.firstPosition`). One B-tree fewer to write on every append:
        // ~1 WAL page per commit, +17 % on 100-message batches (Benchmarks/RESULTS.md).
        """
        DROP INDEX records_stream_seq;
        """,
        // 6: a record's rowid is `slot_id << 43 | seq` (`RecordKey`): the table is ordered by (slot, seq), so the
        // (slot_id, seq) index goes too — one B-tree less per append; slot reads and trims are rowid ranges.
        // `slot_id` and `seq` stay as generated columns. Rewrites the table once (the guard below checks the bounds).
        """
        CREATE TABLE records_by_seq(
            id INTEGER PRIMARY KEY,
            stream_id INTEGER NOT NULL,
            pos INTEGER NOT NULL,
            batch_end INTEGER NOT NULL,
            ts_ms INTEGER NOT NULL,
            type TEXT,
            body BLOB NOT NULL,
            slot_id INTEGER GENERATED ALWAYS AS (id >> 43) VIRTUAL,
            seq INTEGER GENERATED ALWAYS AS (id & 8796093022207) VIRTUAL
        );
        INSERT INTO records_by_seq(id, stream_id, pos, batch_end, ts_ms, type, body)
            SELECT (slot_id << 43) | seq, stream_id, pos, batch_end, ts_ms, type, body FROM records ORDER BY slot_id, seq;
        DROP TABLE records;
        ALTER TABLE records_by_seq RENAME TO records;
        CREATE UNIQUE INDEX records_stream_pos ON records(stream_id, pos);
        """,
    ]

    /// Refuses a migration the data cannot take, before it runs (the transaction then leaves the file as it was).
    private static func guardBefore(_ version: Int, _ db: SQLiteConnection) throws {
        guard version == 6 else { return }
        let outside = try db.first("SELECT count(*) FROM slots WHERE id > ? OR head_seq > ?",
                                   [.int(RecordKey.maxSlotID), .int(RecordKey.maxSeq)]) { $0.int(0) } ?? 0
        if outside > 0 {
            throw StoreError.capacityExhausted("\(outside) slot(s) have an id above \(RecordKey.maxSlotID) or more than \(RecordKey.maxSeq) records: this hubd cannot upgrade the store")
        }
    }

    /// Brings `db` to the newest schema inside one transaction. `progress` runs before the first migration and then
    /// about every 10 s while they run.
    static func migrate(_ db: SQLiteConnection, progress: (@Sendable () -> Void)? = nil) throws(StoreError) {
        do {
            let current = try db.first("PRAGMA user_version") { Int($0.int(0)) } ?? 0
            if current > all.count { throw StoreError.schemaTooNew(found: current, supported: all.count) }
            guard current < all.count else { return }
            let ticker = progress.map { ProgressTicker(db, every: .seconds(10), $0) }
            defer { ticker?.stop() }
            try db.exec("BEGIN IMMEDIATE")
            do {
                for version in (current + 1)...all.count {
                    try guardBefore(version, db)
                    try db.exec(all[version - 1])
                    try db.exec("PRAGMA user_version = \(version)")
                }
                try db.exec("COMMIT")
            } catch {
                try? db.exec("ROLLBACK")
                throw error
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw .backend("migration failed: \(error)")
        }
    }
}

/// Calls `tick` now and then, at most once per `interval`, from SQLite's progress handler while statements run on
/// `db` (every 100 000 virtual-machine steps it looks at the clock).
private final class ProgressTicker {
    private let db: SQLiteConnection
    private let interval: Duration
    private let tick: @Sendable () -> Void
    private var last = ContinuousClock.now

    init(_ db: SQLiteConnection, every interval: Duration, _ tick: @escaping @Sendable () -> Void) {
        self.db = db; self.interval = interval; self.tick = tick
        tick()
        sqlite3_progress_handler(db.handle, 100_000, { context in
            let ticker = Unmanaged<ProgressTicker>.fromOpaque(context!).takeUnretainedValue()
            if ContinuousClock.now - ticker.last >= ticker.interval {
                ticker.last = .now
                ticker.tick()
            }
            return 0  // go on
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Removes the handler; call before the ticker goes away.
    func stop() { sqlite3_progress_handler(db.handle, 0, nil, nil) }
}
