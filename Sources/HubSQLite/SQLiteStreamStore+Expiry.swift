import HubCore

extension SQLiteStreamStore: ExpirySweeping {
    public func sweepExpired(limit: Int) async throws(StoreError) -> Int {
        try await writer.perform { db, changed throws(StoreError) in
            let now = Self.nowMs
            let paths = try db.query("""
                SELECT path FROM streams WHERE deleted = 0 AND
                    ((expires_at_ms IS NOT NULL AND expires_at_ms <= ?) OR (ttl_s IS NOT NULL AND accessed_ms + ttl_s * 1000 <= ?))
                LIMIT ?
                """, [.int(now), .int(now), .int(Int64(limit))]) { $0.text(0) }
            // `live` applies the same rule as every access: purge, or soft-delete while forks read the stream.
            for path in paths.compactMap(StreamPath.init) { _ = try StreamQueries.live(db, path: path, nowMs: now, changed: &changed) }
            return paths.count
        }
    }
}
