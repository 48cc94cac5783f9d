import HubCore
import HubProtocol
import NIOCore
import Testing

@Suite("Live fronts wire forms")
struct LiveFramesTests {
    let path = StreamPath("acme/orders")!
    func record(_ body: String, seq: UInt64 = 42, type: String? = nil) -> StoredRecord {
        StoredRecord(offset: Offset(7), seq: seq, timestampMilliseconds: 1_767_225_600_123, type: type, body: ByteBuffer(string: body))
    }

    @Test("seq envelope: JSON inline, type when present")
    func seqEnvelope() {
        let json = LiveFrames.webSocket(.seq, path: path, contentType: .json, record: record(#"{"a":1}"#, type: "order"))
        #expect(String(buffer: json) == #"{"seq":42,"stream":"acme/orders","ts":"2026-01-01T00:00:00.123Z","event":{"a":1},"type":"order"}"#)
    }

    @Test("typed envelope: text as a JSON string, binary as base64 with its encoding")
    func typedEnvelope() {
        let text = LiveFrames.webSocket(.typed, path: path, contentType: ContentType(validating: "text/plain")!, record: record("he said \"hi\"\n"))
        #expect(String(buffer: text) == #"{"event":"message","ts":"2026-01-01T00:00:00.123Z","data":"he said \"hi\"\n","seq":42,"stream":"acme/orders"}"#)
        let binary = LiveFrames.webSocket(.typed, path: path, contentType: .octetStream, record: record("\u{0}\u{1}\u{2}", type: "blob"))
        #expect(String(buffer: binary) == #"{"event":"blob","ts":"2026-01-01T00:00:00.123Z","data":"AAEC","seq":42,"stream":"acme/orders","encoding":"base64"}"#)
    }

    @Test("events SSE: id is the seq, event the type or message; multi-line JSON stays one event; doorbells carry only the seq")
    func sse() {
        var out = ByteBuffer()
        LiveFrames.sseEvent(record("{\n\"a\":1}", seq: 3), into: &out)
        LiveFrames.sseEvent(record("{}", seq: 4, type: "x"), into: &out)
        #expect(String(buffer: out) == "event: message\nid: 3\ndata:{\ndata:\"a\":1}\n\nevent: x\nid: 4\ndata:{}\n\n")
        var wake = ByteBuffer()
        LiveFrames.sseWake(seq: 9, into: &wake)
        #expect(String(buffer: wake) == "id: 9\ndata: 9\n\n")
        var error = ByteBuffer()
        LiveFrames.sseError(ProblemDocument(status: 410, title: "Gone", code: "below-retention"), into: &error)
        #expect(String(buffer: error) == #"event: error"# + "\n" + #"data:{"type":"/docs/api/errors#below-retention","title":"Gone","status":410,"code":"below-retention"}"# + "\n\n")
    }
}
