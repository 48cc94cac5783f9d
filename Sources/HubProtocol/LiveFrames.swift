import HubCore
import NIOCore

/// The wire forms of the live fronts (docs/api/websocket.md, docs/api/events.md). Pure and tested byte for byte;
/// the fan-out encodes each committed record once per form and shares the bytes with every subscriber.
public enum LiveFrames {
    /// The WebSocket envelopes.
    public enum Envelope: String, Sendable, CaseIterable {
        /// `{"seq":42,"stream":"acme/orders","ts":"…","event":<payload>}`
        case seq
        /// `{"event":"<type>","ts":"…","data":<payload>,"seq":42}`
        case typed
    }

    /// One record as a WebSocket text frame. JSON payloads go inline, text as a JSON string, anything else as base64
    /// with `"encoding":"base64"`. `type` (the event name) is added to `seq` envelopes when the record has one.
    public static func webSocket(_ envelope: Envelope, path: StreamPath, contentType: ContentType, record: StoredRecord) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(record.body.readableBytes + 96)
        let ts = JSONText.quote(RFC3339.format(millisecondsSince1970: record.timestampMilliseconds))
        switch envelope {
        case .seq:
            out.writeString(#"{"seq":\#(record.seq),"stream":\#(JSONText.quote(path.rawValue)),"ts":\#(ts),"event":"#)
            let base64 = writePayload(record.body, contentType, into: &out)
            if let type = record.type { out.writeString(#","type":\#(JSONText.quote(type))"#) }
            if base64 { out.writeStaticString(#","encoding":"base64""#) }
        case .typed:
            out.writeString(#"{"event":\#(JSONText.quote(record.type ?? "message")),"ts":\#(ts),"data":"#)
            let base64 = writePayload(record.body, contentType, into: &out)
            out.writeString(#","seq":\#(record.seq),"stream":\#(JSONText.quote(path.rawValue))"#)
            if base64 { out.writeStaticString(#","encoding":"base64""#) }
        }
        out.writeStaticString("}")
        return out
    }

    /// Writes the payload as JSON; returns true when it was base64-encoded.
    private static func writePayload(_ body: ByteBuffer, _ type: ContentType, into out: inout ByteBuffer) -> Bool {
        if type.isJSON {
            var body = body
            out.writeBuffer(&body)
            return false
        }
        if type.isText {
            out.writeString(JSONText.quote(String(buffer: body)))
            return false
        }
        out.writeStaticString("\"")
        var encoded = Base64.encode(body)
        out.writeBuffer(&encoded)
        out.writeStaticString("\"")
        return true
    }

    /// An events-surface SSE event: `id: {seq}`, `event: {type or "message"}`, `data: {json}`.
    public static func sseEvent(_ record: StoredRecord, into out: inout ByteBuffer) {
        SSE.writeEvent(type: record.type ?? "message", id: String(record.seq), data: record.body, into: &out)
    }

    /// A doorbell (`?wake=1`): only the newest `seq`, as the id and the data.
    public static func sseWake(seq: UInt64, into out: inout ByteBuffer) {
        out.writeString("id: \(seq)\ndata: \(seq)\n\n")
    }

    /// The last event of an SSE response that cannot go on (below retention, stream deleted): the problem document.
    public static func sseError(_ problem: ProblemDocument, into out: inout ByteBuffer) {
        SSE.writeEvent(type: "error", data: ByteBuffer(string: problem.json), into: &out)
    }
}
