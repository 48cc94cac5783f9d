import HubCore
import PostgresNIO

/// Versioned schema for PostgreSQL. Version N is `all[N-1]` (a list of statements: the extended protocol runs one at a
/// time); `hub_schema.version` records the applied version. Append new migrations at the end, never edit a shipped one.
/// Nodes starting together migrate once: the whole migration runs under one transaction-scoped advisory lock.
enum PostgresMigrations {
    /// `pg_advisory_xact_lock` key: "hubd" in ASCII.
    static let lockKey: Int64 = 0x6875_6264

    static let all: [[PostgresQuery]] = [
        // 1: the whole model as of SQLite schema 3 (slots, streams, records, producers, tokens, audit, event keys,
        // consumers) plus tickets, which several nodes must share.
        [
            // COLLATE "C": names and paths sort bytewise, as on SQLite.
            """
            CREATE TABLE slots(
                id BIGSERIAL PRIMARY KEY,
                name TEXT COLLATE "C" NOT NULL UNIQUE,
                head_seq BIGINT NOT NULL DEFAULT 0,
                floor_seq BIGINT NOT NULL DEFAULT 0,
                created_ms BIGINT NOT NULL,
                max_age_s BIGINT,
                max_bytes BIGINT,
                max_records BIGINT,
                max_message_bytes BIGINT,
                max_subscribers BIGINT,
                anonymous_read BOOLEAN NOT NULL DEFAULT false,
                anonymous_append BOOLEAN NOT NULL DEFAULT false
            )
            """,
            // A sequence never reuses an id, so ETags and wake-ups of a deleted stream cannot match its successor.
            """
            CREATE TABLE streams(
                id BIGSERIAL PRIMARY KEY,
                path TEXT COLLATE "C" NOT NULL UNIQUE,
                slot_id BIGINT NOT NULL REFERENCES slots(id),
                content_type TEXT NOT NULL,
                created_ms BIGINT NOT NULL,
                accessed_ms BIGINT NOT NULL,
                ttl_s BIGINT,
                expires_at_ms BIGINT,
                expires_at_text TEXT,
                closed BOOLEAN NOT NULL DEFAULT false,
                stream_seq TEXT COLLATE "C",
                head BIGINT NOT NULL,
                parent_id BIGINT REFERENCES streams(id),
                parent_head BIGINT,
                fork_source TEXT,
                fork_offset BIGINT,
                fork_sub_offset BIGINT NOT NULL DEFAULT 0,
                fork_count BIGINT NOT NULL DEFAULT 0,
                deleted BOOLEAN NOT NULL DEFAULT false,
                record_count BIGINT NOT NULL DEFAULT 0,
                byte_count BIGINT NOT NULL DEFAULT 0,
                trimmed_pos BIGINT NOT NULL DEFAULT 0,
                trimmed_seq BIGINT NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX streams_slot ON streams(slot_id)",
            "CREATE INDEX streams_parent ON streams(parent_id) WHERE parent_id IS NOT NULL",
            """
            CREATE TABLE records(
                stream_id BIGINT NOT NULL,
                pos BIGINT NOT NULL,
                slot_id BIGINT NOT NULL,
                seq BIGINT NOT NULL,
                batch_end BIGINT NOT NULL,
                ts_ms BIGINT NOT NULL,
                type TEXT,
                body BYTEA NOT NULL,
                PRIMARY KEY(stream_id, pos)
            )
            """,
            "CREATE UNIQUE INDEX records_slot_seq ON records(slot_id, seq)",
            "CREATE INDEX records_stream_seq ON records(stream_id, seq)",
            """
            CREATE TABLE producers(
                stream_id BIGINT NOT NULL,
                producer TEXT NOT NULL,
                epoch BIGINT NOT NULL,
                last_seq BIGINT NOT NULL,
                updated_ms BIGINT NOT NULL,
                PRIMARY KEY(stream_id, producer)
            )
            """,
            """
            CREATE TABLE tokens(
                id TEXT PRIMARY KEY,
                digest TEXT NOT NULL UNIQUE,
                slot TEXT COLLATE "C",
                scopes TEXT NOT NULL,
                prefix TEXT,
                label TEXT NOT NULL,
                created_ms BIGINT NOT NULL,
                expires_ms BIGINT,
                last_used_ms BIGINT,
                last_used_addr TEXT,
                revoked_ms BIGINT,
                rotated_from TEXT
            )
            """,
            "CREATE INDEX tokens_slot ON tokens(slot)",
            """
            CREATE TABLE audit(
                id BIGSERIAL PRIMARY KEY,
                at_ms BIGINT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT NOT NULL,
                detail TEXT
            )
            """,
            """
            CREATE TABLE event_keys(
                slot_id BIGINT NOT NULL,
                key TEXT NOT NULL,
                seq BIGINT NOT NULL,
                created_ms BIGINT NOT NULL,
                PRIMARY KEY(slot_id, key)
            )
            """,
            "CREATE INDEX event_keys_age ON event_keys(created_ms)",
            """
            CREATE TABLE consumers(
                slot_id BIGINT NOT NULL,
                name TEXT COLLATE "C" NOT NULL,
                stream TEXT,
                acked_seq BIGINT NOT NULL DEFAULT 0,
                ack_wait_ms BIGINT NOT NULL,
                max_in_flight BIGINT NOT NULL,
                created_ms BIGINT NOT NULL,
                updated_ms BIGINT NOT NULL,
                PRIMARY KEY(slot_id, name)
            )
            """,
            // Single-use tickets (browser EventSource/WebSocket auth): issued on one node, redeemed on any.
            """
            CREATE TABLE tickets(
                digest TEXT PRIMARY KEY,
                token_id TEXT NOT NULL,
                path TEXT NOT NULL,
                scope TEXT NOT NULL,
                expires_ms BIGINT NOT NULL
            )
            """,
            "CREATE INDEX tickets_expiry ON tickets(expires_ms)",
        ],
        // 2: group commit of stream appends in one statement (`PostgresStreamStore+AppendGroups`). hubd decided every
        // append with the protocol's rules against the stream rows it had cached, each with the row version (`xmin`) it
        // was read at; this only writes, and only if every one of those rows is still that version (checked under the
        // slot locks, which every stream writer takes first). Otherwise it raises HUB02 and changes nothing, and hubd
        // reloads and decides again. A slot with a record limit raises HUB01: those appends take the transaction path,
        // which trims.
        [
            """
            CREATE FUNCTION hub_append_group(
                s_id BIGINT[], s_version TEXT[], s_slot BIGINT[], s_head BIGINT[], s_records BIGINT[], s_bytes BIGINT[],
                s_closed BOOLEAN[], s_seq TEXT[], s_has_seq BOOLEAN[], now_ms BIGINT,
                r_stream BIGINT[], r_pos BIGINT[], r_slot BIGINT[], r_index BIGINT[], r_batch_end BIGINT[],
                r_type TEXT[], r_has_type BOOLEAN[], r_body BYTEA[],
                p_stream BIGINT[], p_name TEXT[], p_epoch BIGINT[], p_seq BIGINT[], wake TEXT)
            RETURNS TABLE(written_id BIGINT, written_version TEXT) LANGUAGE plpgsql AS $$
            #variable_conflict use_column
            BEGIN
                -- The slots first, in id order (the order every writer takes them in). A statement of its own: a locking
                -- subquery inside EXISTS does not wait for the locks.
                PERFORM 1 FROM slots l WHERE l.id = ANY(s_slot) ORDER BY l.id FOR UPDATE;
                IF EXISTS (SELECT 1 FROM slots l WHERE l.id = ANY(s_slot) AND l.max_records IS NOT NULL) THEN
                    RAISE EXCEPTION 'a slot of this group has a record limit' USING ERRCODE = 'HUB01';
                END IF;
                -- A new snapshot: every stream row as committed by whoever held those locks before.
                IF (SELECT count(*) FROM streams st JOIN unnest(s_id, s_version) AS v(id, version) ON st.id = v.id
                    WHERE st.xmin::text = v.version AND NOT st.deleted) <> cardinality(s_id) THEN
                    RAISE EXCEPTION 'a stream changed since it was read' USING ERRCODE = 'HUB02';
                END IF;
                WITH counts AS (SELECT r.slot, count(*) AS n FROM unnest(r_slot) AS r(slot) GROUP BY r.slot),
                bumped AS (UPDATE slots SET head_seq = head_seq + counts.n FROM counts WHERE slots.id = counts.slot
                           RETURNING slots.id, slots.head_seq - counts.n AS base)
                INSERT INTO records(stream_id, pos, slot_id, seq, batch_end, ts_ms, type, body)
                SELECT r.stream, r.pos, r.slot, b.base + r.idx, r.batch_end, now_ms, CASE WHEN r.has_type THEN r.type END, r.body
                FROM unnest(r_stream, r_pos, r_slot, r_index, r_batch_end, r_type, r_has_type, r_body)
                     AS r(stream, pos, slot, idx, batch_end, type, has_type, body)
                JOIN bumped b ON b.id = r.slot;
                INSERT INTO producers(stream_id, producer, epoch, last_seq, updated_ms)
                SELECT p.stream, p.name, p.epoch, p.seq, now_ms FROM unnest(p_stream, p_name, p_epoch, p_seq) AS p(stream, name, epoch, seq)
                ON CONFLICT(stream_id, producer) DO UPDATE SET epoch = excluded.epoch, last_seq = excluded.last_seq,
                    updated_ms = excluded.updated_ms;
                PERFORM pg_notify('hub_changes', wake);  -- PostgresChangeSignal.channel
                RETURN QUERY
                UPDATE streams st SET head = v.head, record_count = st.record_count + v.records, byte_count = st.byte_count + v.bytes,
                    accessed_ms = now_ms, closed = v.closed, stream_seq = CASE WHEN v.has_seq THEN v.seq ELSE st.stream_seq END
                FROM unnest(s_id, s_head, s_records, s_bytes, s_closed, s_seq, s_has_seq) AS v(id, head, records, bytes, closed, seq, has_seq)
                WHERE st.id = v.id
                RETURNING st.id, st.xmin::text;
            END
            $$
            """,
        ],
        // 3: Durable Streams subscriptions (§11): one JSON document each, `due_ms` for the lease and delivery timer;
        // secrets every node shares (the webhook signing key).
        [
            """
            CREATE TABLE subscriptions(
                namespace TEXT COLLATE "C" NOT NULL,
                id TEXT COLLATE "C" NOT NULL,
                doc TEXT NOT NULL,
                due_ms BIGINT,
                PRIMARY KEY(namespace, id)
            )
            """,
            "CREATE INDEX subscriptions_due ON subscriptions(due_ms) WHERE due_ms IS NOT NULL",
            "CREATE TABLE secrets(name TEXT PRIMARY KEY, value BYTEA NOT NULL)",
        ],
    ]

    /// Brings the database to the newest schema in one transaction; refuses a database a newer hubd wrote.
    static func migrate(_ session: PostgresSession) async throws {
        try await session.run("BEGIN")
        do {
            // No statement_timeout here: waiting for another node's migration, or a long one, is not an outage.
            try await session.run("SET LOCAL statement_timeout = 0")
            try await session.run("SELECT pg_advisory_xact_lock(\(lockKey))")
            try await session.run("CREATE TABLE IF NOT EXISTS hub_schema(version INTEGER NOT NULL)")
            let current = try await session.first("SELECT max(version)::bigint FROM hub_schema").flatMap { try $0.optionalInt(0) } ?? 0
            if current > all.count { throw StoreError.schemaTooNew(found: Int(current), supported: all.count) }
            if current < all.count {
                for version in (Int(current) + 1)...all.count {
                    for statement in all[version - 1] { try await session.run(statement) }
                }
                try await session.run("DELETE FROM hub_schema")
                try await session.run("INSERT INTO hub_schema(version) VALUES (\(Int64(all.count)))")
            }
            try await session.run("COMMIT")
        } catch {
            try? await session.run("ROLLBACK")
            throw error
        }
    }
}
