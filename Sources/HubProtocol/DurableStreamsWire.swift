import HubCore
import NIOCore

/// Header names of the Durable Streams protocol (compared case-insensitively by HTTP).
public enum DSHeader {
    public static let nextOffset = "Stream-Next-Offset"
    public static let upToDate = "Stream-Up-To-Date"
    public static let cursor = "Stream-Cursor"
    public static let closed = "Stream-Closed"
    public static let seq = "Stream-Seq"
    public static let ttl = "Stream-TTL"
    public static let expiresAt = "Stream-Expires-At"
    public static let forkedFrom = "Stream-Forked-From"
    public static let forkOffset = "Stream-Fork-Offset"
    public static let forkSubOffset = "Stream-Fork-Sub-Offset"
    public static let producerID = "Producer-Id"
    public static let producerEpoch = "Producer-Epoch"
    public static let producerSeq = "Producer-Seq"
    public static let producerExpectedSeq = "Producer-Expected-Seq"
    public static let producerReceivedSeq = "Producer-Received-Seq"
    public static let sseDataEncoding = "stream-sse-data-encoding"
}

/// SSE events of a Durable Streams read (§7.6).
public enum DSEvents {
    /// `event: data` with the batch: a JSON array for JSON streams, text as is, anything else base64.
    public static func writeData(_ records: [StoredRecord], contentType: ContentType, into out: inout ByteBuffer) {
        let payload = DSBody.encode(records, contentType: contentType)
        SSE.writeEvent(type: "data", data: contentType.isText ? payload : Base64.encode(payload), into: &out)
    }

    /// `event: control`: where to resume, the cursor while open, and the up-to-date / closed flags.
    public static func writeControl(next: Offset, cursor: String?, upToDate: Bool, closed: Bool, into out: inout ByteBuffer) {
        var pairs = [("streamNextOffset", JSONText.quote(next.wire))]
        if let cursor, !closed { pairs.append(("streamCursor", JSONText.quote(cursor))) }
        if upToDate { pairs.append(("upToDate", "true")) }
        if closed { pairs.append(("streamClosed", "true")) }
        SSE.writeEvent(type: "control", data: ByteBuffer(string: JSONText.object(pairs)), into: &out)
    }
}

/// The body of a catch-up or long-poll read.
public enum DSBody {
    /// JSON streams: one array of every message; other types: the records' bytes back to back.
    public static func encode(_ records: [StoredRecord], contentType: ContentType) -> ByteBuffer {
        if contentType.isJSON { return JSONMessages.array(records.lazy.map(\.body)) }
        var out = ByteBuffer()
        out.reserveCapacity(records.reduce(0) { $0 + $1.body.readableBytes })
        for record in records { var body = record.body; out.writeBuffer(&body) }
        return out
    }
}

/// Entity tags for reads (§7.3): `"{stream id}:{start}:{end}"`, with `:c` once the response includes the close,
/// so the tag changes when new data arrives, when the stream closes, and when a path is re-created.
public enum DSETag {
    public static func make(stream: Int64, start: Offset, end: Offset, closed: Bool) -> String {
        "\"\(stream):\(start.wire):\(end.wire)\(closed ? ":c" : "")\""
    }

    /// RFC 9110 §13.1.2 weak comparison against an `If-None-Match` list (or `*`).
    public static func matches(ifNoneMatch header: String, etag: String) -> Bool {
        for candidate in header.split(separator: ",") {
            var tag = candidate.trimmingCharacters(in: " \t")
            if tag == "*" { return true }
            if tag.hasPrefix("W/") { tag.removeFirst(2) }
            if tag == etag { return true }
        }
        return false
    }
}

/// CDN request-collapsing cursors (§7.7): 20-second intervals since 2024-10-09T00:00:00Z, never going backwards.
public struct CursorClock: Sendable {
    public static let epochMilliseconds: Int64 = 1_728_432_000_000
    public let intervalMilliseconds: Int64

    public init(intervalMilliseconds: Int64 = 20_000) { self.intervalMilliseconds = intervalMilliseconds }

    /// The cursor for a response. When the client already holds the current interval (or a later one),
    /// answer strictly more: its value plus 1–3600 s of jitter in intervals, so collapsed requests spread out.
    public func cursor(nowMilliseconds: Int64, client: String?, jitterSeconds: Int) -> String {
        let current = max(0, (nowMilliseconds - Self.epochMilliseconds) / intervalMilliseconds)
        guard let client, let held = Int64(client), held >= current, held >= 0 else { return String(current) }
        let jitterIntervals = max(1, (Int64(min(max(jitterSeconds, 1), 3600)) * 1000 + intervalMilliseconds - 1) / intervalMilliseconds)
        return String(held + jitterIntervals)
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}
