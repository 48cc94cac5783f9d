import NIOCore

/// Server-Sent Events framing. Pure functions over bytes, tested byte for byte.
public enum SSE {
    /// Writes one event. Every CR, LF or CRLF in `data` starts a new `data:` line, so a payload can never inject
    /// its own `event:`/`id:` fields or end the event early (CWE-93). `type` and `id` come from us and must not
    /// contain line breaks.
    ///
    /// Lines are written `data:<line>` with no space, the form Durable Streams clients and the conformance suite
    /// match on. A line that itself starts with a space gets `data: <line>`: parsers strip exactly one leading
    /// space, so the payload's own space survives.
    public static func writeEvent(type: String?, id: String? = nil, data: ByteBuffer, into out: inout ByteBuffer) {
        if let type { out.writeStaticString("event: "); out.writeString(type); out.writeStaticString("\n") }
        if let id { out.writeStaticString("id: "); out.writeString(id); out.writeStaticString("\n") }
        data.withUnsafeReadableBytes { bytes in
            var lineStart = 0
            var i = 0
            func writeLine(_ line: UnsafeRawBufferPointer) {
                out.writeStaticString(line.first == 0x20 ? "data: " : "data:")
                out.writeBytes(line)
                out.writeStaticString("\n")
            }
            while i < bytes.count {
                let c = bytes[i]
                if c == 0x0A || c == 0x0D {
                    writeLine(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<i]))
                    if c == 0x0D, i + 1 < bytes.count, bytes[i + 1] == 0x0A { i += 1 }
                    lineStart = i + 1
                }
                i += 1
            }
            writeLine(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<bytes.count]))
        }
        out.writeStaticString("\n")
    }

    /// A comment line: keeps proxies and load balancers from closing an idle stream.
    public static let keepAlive = ByteBuffer(string: ": keep-alive\n\n")

    /// `retry: <ms>` tells `EventSource` how long to wait before reconnecting.
    public static func retry(milliseconds: Int) -> ByteBuffer { ByteBuffer(string: "retry: \(milliseconds)\n\n") }
}
