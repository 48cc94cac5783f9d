import HubCore
import NIOCore
import PostgresNIO

/// Subscriptions (§11) in the `subscriptions` table. Every change of one subscription first takes a transaction-scoped
/// advisory lock on its key, so changes from any node (creation included, when there is no row to lock yet) apply
/// one after the other.
extension PostgresStreamStore: SubscriptionStore {
    public func changeSubscription<R: Sendable>(_ key: SubscriptionKey, alsoHeadsOf extra: [StreamPath],
                                                _ body: @escaping @Sendable (inout SubscriptionChange) -> R) async throws(StoreError) -> R {
        try await write { db, changed in
            let now = Self.nowMs
            try await db.run("SELECT pg_advisory_xact_lock(hashtextextended(\(key.namespace + "\u{1}" + key.id), 0))")
            let before = try await Self.subscription(db, key)
            var paths = Set(extra)
            if let before { paths.formUnion(before.linkedPaths) }
            if let wake = before?.config.wakeStream, let path = key.absolute(wake) { paths.insert(path) }
            var heads: [StreamPath: StreamTail] = [:]
            for path in paths {
                if let row = try? await PostgresStreamQueries.readable(db, path: path, nowMs: now) { heads[path] = StreamTail(id: row.id, head: row.info.head) }
            }
            var change = SubscriptionChange(subscription: before, heads: heads, nowMs: now)
            let result = body(&change)
            if change.subscription != before {
                if let after = change.subscription {
                    try await db.run("""
                        INSERT INTO subscriptions(namespace, id, doc, due_ms) VALUES (\(key.namespace), \(key.id), \(after.document), \(after.dueAtMs))
                        ON CONFLICT (namespace, id) DO UPDATE SET doc = EXCLUDED.doc, due_ms = EXCLUDED.due_ms
                        """)
                } else {
                    try await db.run("DELETE FROM subscriptions WHERE namespace = \(key.namespace) AND id = \(key.id)")
                }
            }
            for event in change.wakeEvents {
                guard let row = try? await PostgresStreamQueries.readable(db, path: event.stream, nowMs: now), row.contentType.isJSON, !row.closed else { continue }
                _ = try await PostgresStreamQueries.append(db, path: event.stream, request: AppendRequest(
                    contentType: row.contentType, messages: [NewMessage(body: ByteBuffer(string: event.json))]), nowMs: now, changed: &changed)
            }
            return result
        }
    }

    private static func subscription(_ db: PostgresSession, _ key: SubscriptionKey) async throws -> Subscription? {
        guard let row = try await db.first("SELECT doc FROM subscriptions WHERE namespace = \(key.namespace) AND id = \(key.id)") else { return nil }
        return try Subscription(document: try row.text(0))
    }

    public func subscription(_ key: SubscriptionKey) async throws(StoreError) -> Subscription? {
        try await snapshot { db in try await Self.subscription(db, key) }
    }

    public func allSubscriptions() async throws(StoreError) -> [Subscription] {
        try await snapshot { db in
            try await db.rows("SELECT doc FROM subscriptions ORDER BY namespace, id").map { try Subscription(document: try $0.text(0)) }
        }
    }

    public func dueSubscriptions(nowMs: Int64, limit: Int) async throws(StoreError) -> [SubscriptionKey] {
        try await snapshot { db in
            try await db.rows("""
                SELECT namespace, id FROM subscriptions WHERE due_ms IS NOT NULL AND due_ms <= \(nowMs) ORDER BY due_ms LIMIT \(Int64(limit))
                """).compactMap { SubscriptionKey(namespace: try $0.text(0), id: try $0.text(1)) }
        }
    }

    public func streamPaths(ids: [Int64]) async throws(StoreError) -> [StreamPath] {
        guard !ids.isEmpty else { return [] }
        return try await snapshot { db in
            try await db.rows("SELECT path FROM streams WHERE NOT deleted AND id = ANY(\(ids))").compactMap { StreamPath(try $0.text(0)) }
        }
    }

    public func streamPaths(under prefix: String, limit: Int) async throws(StoreError) -> [StreamPath] {
        try await snapshot { db in
            let rows = prefix.isEmpty
                ? try await db.rows("SELECT path FROM streams WHERE NOT deleted ORDER BY path LIMIT \(Int64(limit))")
                : try await db.rows("""
                    SELECT path FROM streams WHERE NOT deleted AND (path = \(prefix) OR (path >= \(prefix + "/") AND path < \(prefix + "0")))
                    ORDER BY path LIMIT \(Int64(limit))
                    """)
            return try rows.compactMap { StreamPath(try $0.text(0)) }
        }
    }

    public func sharedSecret(_ name: String, make: @escaping @Sendable () -> [UInt8]) async throws(StoreError) -> [UInt8] {
        try await write { db, _ in
            let candidate = ByteBuffer(bytes: make())
            // The first node to get here stores its value; everyone reads the stored one.
            try await db.run("INSERT INTO secrets(name, value) VALUES (\(name), \(candidate)) ON CONFLICT (name) DO NOTHING")
            guard let row = try await db.first("SELECT value FROM secrets WHERE name = \(name)") else { throw StoreError.backend("secret \(name) vanished") }
            return Array(try row.bytes(0).readableBytesView)
        }
    }
}
