import NIOCore

/// One parsed Server-Sent Event.
public struct SSEEvent: Equatable, Sendable {
    public var type: String
    public var data: String
    public var id: String?

    public init(type: String, data: String, id: String? = nil) {
        self.type = type
        self.data = data
        self.id = id
    }
}

/// Incremental SSE parser (the reading side of `SSE`, for clients: hubctl and the tests) per the WHATWG rules:
/// lines end in CR, LF or CRLF; `data:` lines join with LF; a blank line dispatches; comments are ignored.
/// `id` persists across events, as the last event id does in `EventSource`.
public struct SSEParser: Sendable {
    private var pending: [UInt8] = []
    private var type = ""
    private var data: [String] = []
    private var id: String?
    private var sawData = false

    public init() {}

    public mutating func feed(_ buffer: ByteBuffer) -> [SSEEvent] {
        pending.append(contentsOf: buffer.readableBytesView)
        var events: [SSEEvent] = []
        var start = 0
        var i = 0
        while i < pending.count {
            let c = pending[i]
            guard c == 0x0A || c == 0x0D else { i += 1; continue }
            // A CR at the very end may be the first half of a CRLF: wait for more.
            if c == 0x0D && i + 1 == pending.count { break }
            let line = String(decoding: pending[start..<i], as: UTF8.self)
            i += (c == 0x0D && pending[i + 1] == 0x0A) ? 2 : 1
            start = i
            if line.isEmpty {
                if sawData { events.append(SSEEvent(type: type.isEmpty ? "message" : type, data: data.joined(separator: "\n"), id: id)) }
                type = ""; data = []; sawData = false
                continue
            }
            if line.hasPrefix(":") { continue }
            let (field, value): (Substring, Substring)
            if let colon = line.firstIndex(of: ":") {
                field = line[..<colon]
                var v = line[line.index(after: colon)...]
                if v.hasPrefix(" ") { v = v.dropFirst() }
                value = v
            } else {
                field = Substring(line); value = ""
            }
            switch field {
            case "event": type = String(value)
            case "data": data.append(String(value)); sawData = true
            case "id": id = String(value)
            default: break
            }
        }
        pending.removeFirst(start)
        return events
    }
}
