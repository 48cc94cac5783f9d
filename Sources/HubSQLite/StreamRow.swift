import HubCore
import NIOCore

/// One row of `streams`, as the store's SQL sees it.
struct StreamRow {
    static let columns = """
        id, path, slot_id, content_type, created_ms, accessed_ms, ttl_s, expires_at_ms, expires_at_text, closed,
        stream_seq, head, parent_id, parent_head, fork_source, fork_offset, fork_sub_offset, fork_count, deleted,
        trimmed_pos, trimmed_seq
        """

    var id: Int64
    var path: StreamPath
    var slotID: Int64
    var contentType: ContentType
    var createdMs: Int64
    var accessedMs: Int64
    var ttlSeconds: Int64?
    var expiresAtMs: Int64?
    var expiresAtText: String?
    var closed: Bool
    var streamSeq: String?
    var head: UInt64
    var parentID: Int64?
    var parentHead: UInt64?
    var forkSource: String?
    var forkOffset: Int64?
    var forkSubOffset: Int64
    var forkCount: Int64
    var deleted: Bool
    /// Retention removed this stream's records up to this position (and up to this slot `seq`).
    var trimmedPos: UInt64
    var trimmedSeq: UInt64

    init(_ s: Statement) throws(StoreError) {
        guard let path = StreamPath(s.text(1)), let type = ContentType(validating: s.text(3)) else {
            throw .backend("corrupt stream row \(s.int(0))")
        }
        id = s.int(0); self.path = path; slotID = s.int(2); contentType = type
        createdMs = s.int(4); accessedMs = s.int(5); ttlSeconds = s.optionalInt(6); expiresAtMs = s.optionalInt(7)
        expiresAtText = s.optionalText(8); closed = s.int(9) != 0; streamSeq = s.optionalText(10)
        head = UInt64(s.int(11)); parentID = s.optionalInt(12); parentHead = s.optionalInt(13).map(UInt64.init)
        forkSource = s.optionalText(14); forkOffset = s.optionalInt(15); forkSubOffset = s.int(16); forkCount = s.int(17)
        deleted = s.int(18) != 0
        trimmedPos = UInt64(s.int(19)); trimmedSeq = UInt64(s.int(20))
    }

    var expiry: StreamExpiry? {
        if let ttlSeconds { return .ttl(seconds: UInt64(ttlSeconds)) }
        if let expiresAtMs { return .at(millisecondsSince1970: expiresAtMs, text: expiresAtText ?? "") }
        return nil
    }

    func isExpired(nowMs: Int64) -> Bool {
        if let expiresAtMs, nowMs >= expiresAtMs { return true }
        if let ttlSeconds, nowMs >= accessedMs + ttlSeconds * 1000 { return true }
        return false
    }

    var info: StreamInfo {
        StreamInfo(id: id, path: path, contentType: contentType, head: Offset(head), closed: closed, expiry: expiry,
                   createdAtMilliseconds: createdMs)
    }
}
