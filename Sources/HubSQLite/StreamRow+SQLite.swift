import HubCore

extension StreamRow {
    static let columns = """
        id, path, slot_id, content_type, created_ms, accessed_ms, ttl_s, expires_at_ms, expires_at_text, closed,
        stream_seq, head, parent_id, parent_head, fork_source, fork_offset, fork_sub_offset, fork_count, deleted,
        trimmed_pos, trimmed_seq
        """

    init(_ s: Statement) throws(StoreError) {
        guard let path = StreamPath(s.text(1)), let type = ContentType(validating: s.text(3)) else {
            throw .backend("corrupt stream row \(s.int(0))")
        }
        self.init(id: s.int(0), path: path, slotID: s.int(2), contentType: type, createdMs: s.int(4), accessedMs: s.int(5), ttlSeconds: s.optionalInt(6),
                  expiresAtMs: s.optionalInt(7), expiresAtText: s.optionalText(8), closed: s.int(9) != 0, streamSeq: s.optionalText(10),
                  head: UInt64(s.int(11)), parentID: s.optionalInt(12), parentHead: s.optionalInt(13).map(UInt64.init), forkSource: s.optionalText(14),
                  forkOffset: s.optionalInt(15), forkSubOffset: s.int(16), forkCount: s.int(17), deleted: s.int(18) != 0,
                  trimmedPos: UInt64(s.int(19)), trimmedSeq: UInt64(s.int(20)))
    }
}
