import NIOCore

/// One parsed Server-Sent Event.
public struct SSEEvent: Equatable, Sendable {
    public var type: String
    public var data: String
    public var id: String?
}

/// Incremental SSE parser per the WHATWG rules: lines end in CR, LF or CRLF; `data:` lines join with LF;
/// a blank line dispatches; comments are ignored.
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
        while let end = pending.firstIndex(where: { $0 == 0x0A || $0 == 0x0D }) {
            // A CR at the very end may be the first half of a CRLF: wait for more.
            if pending[end] == 0x0D && end + 1 == pending.count { break }
            let line = String(decoding: pending[..<end], as: UTF8.self)
            let skip = pending[end] == 0x0D && pending[end + 1] == 0x0A ? 2 : 1
            pending.removeFirst(end + skip)
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
        return events
    }
}
