import HubCore
import NIOCore

/// Subscriptions (§11) in the `subscriptions` table: each change is one job of the writer, so it commits whole.
extension SQLiteStreamStore: SubscriptionStore {
    public func changeSubscription<R: Sendable>(_ key: SubscriptionKey, alsoHeadsOf extra: [StreamPath],
                                                _ body: @escaping @Sendable (inout SubscriptionChange) -> R) async throws(StoreError) -> R {
        try await writer.perform { db, changed throws(StoreError) in
            let now = Self.nowMs
            let before = try Self.subscription(db, key)
            var paths = Set(extra)
            if let before { paths.formUnion(before.linkedPaths) }
            if let wake = before?.config.wakeStream, let path = key.absolute(wake) { paths.insert(path) }
            var heads: [StreamPath: StreamTail] = [:]
            for path in paths { if let row = try? StreamQueries.readable(db, path: path, nowMs: now) { heads[path] = StreamTail(id: row.id, head: row.info.head) } }
            var change = SubscriptionChange(subscription: before, heads: heads, nowMs: now)
            let result = body(&change)
            if change.subscription != before {
                if let after = change.subscription {
                    try StreamQueries.run(db, "INSERT OR REPLACE INTO subscriptions(namespace, id, doc, due_ms) VALUES (?, ?, ?, ?)",
                                          [.text(key.namespace), .text(key.id), .text(after.document), .optional(after.dueAtMs)])
                } else {
                    try StreamQueries.run(db, "DELETE FROM subscriptions WHERE namespace = ? AND id = ?", [.text(key.namespace), .text(key.id)])
                }
            }
            for event in change.wakeEvents {
                guard let row = try? StreamQueries.readable(db, path: event.stream, nowMs: now), row.contentType.isJSON, !row.closed else { continue }
                _ = try StreamQueries.append(db, path: event.stream, request: AppendRequest(
                    contentType: row.contentType, messages: [NewMessage(body: ByteBuffer(string: event.json))]), nowMs: now, changed: &changed)
            }
            return result
        }
    }

    private static func subscription(_ db: SQLiteConnection, _ key: SubscriptionKey) throws(StoreError) -> Subscription? {
        guard let doc = try db.first("SELECT doc FROM subscriptions WHERE namespace = ? AND id = ?", [.text(key.namespace), .text(key.id)],
                                     { $0.text(0) }) else { return nil }
        return try Subscription(document: doc)
    }

    public func subscription(_ key: SubscriptionKey) async throws(StoreError) -> Subscription? {
        try await readers.read { db throws(StoreError) in try Self.subscription(db, key) }
    }

    public func allSubscriptions() async throws(StoreError) -> [Subscription] {
        try await readers.read { db throws(StoreError) in
            try db.query("SELECT doc FROM subscriptions ORDER BY namespace, id") { s throws(StoreError) in try Subscription(document: s.text(0)) }
        }
    }

    public func dueSubscriptions(nowMs: Int64, limit: Int) async throws(StoreError) -> [SubscriptionKey] {
        try await readers.read { db throws(StoreError) in
            try db.query("SELECT namespace, id FROM subscriptions WHERE due_ms IS NOT NULL AND due_ms <= ? ORDER BY due_ms LIMIT ?",
                         [.int(nowMs), .int(Int64(limit))]) { s in SubscriptionKey(namespace: s.text(0), id: s.text(1)) }.compactMap { $0 }
        }
    }

    public func streamPaths(ids: [Int64]) async throws(StoreError) -> [StreamPath] {
        guard !ids.isEmpty else { return [] }
        return try await readers.read { db throws(StoreError) in
            try db.query("SELECT path FROM streams WHERE deleted = 0 AND id IN (SELECT value FROM json_each(?))",
                         [.text("[" + ids.map(String.init).joined(separator: ",") + "]")]) { StreamPath($0.text(0)) }.compactMap { $0 }
        }
    }

    public func streamPaths(under prefix: String, limit: Int) async throws(StoreError) -> [StreamPath] {
        try await readers.read { db throws(StoreError) in
            // `path >= 'p/' AND path < 'p0'` is every path under `p/` ('0' sorts right after '/'), using the unique index.
            let sql = "SELECT path FROM streams WHERE deleted = 0 AND (path = ? OR (path >= ? AND path < ?)) ORDER BY path LIMIT ?"
            let values: [SQLValue] = prefix.isEmpty ? [.text(""), .text(""), .text("\u{10FFFF}"), .int(Int64(limit))]
                : [.text(prefix), .text(prefix + "/"), .text(prefix + "0"), .int(Int64(limit))]
            return try db.query(sql, values) { StreamPath($0.text(0)) }.compactMap { $0 }
        }
    }

    public func sharedSecret(_ name: String, make: @escaping @Sendable () -> [UInt8]) async throws(StoreError) -> [UInt8] {
        try await writer.perform { db, _ throws(StoreError) in
            if let value = try db.first("SELECT value FROM secrets WHERE name = ?", [.text(name)], { Array($0.blob(0).readableBytesView) }) {
                return value
            }
            let value = make()
            try StreamQueries.run(db, "INSERT INTO secrets(name, value) VALUES (?, ?)", [.text(name), .blob(ByteBuffer(bytes: value))])
            return value
        }
    }
}
