import NIOCore

/// Transport framing done once per batch instead of once per reader: the tail push writes these bytes straight to
/// every parked connection's socket side (`WireOutlet`), past the HTTP and WebSocket encoders that would otherwise
/// frame the same bytes again for each reader. Both framings are stateless on the wire, so bytes framed here and
/// bytes framed by the encoders may follow each other on one connection.
public enum WireFraming {
    /// One HTTP/1.1 chunk (RFC 9112 §7.1): the size in hex, CRLF, the data, CRLF. Empty data would be the last chunk,
    /// which only the response's end may send, so it is refused by returning an empty buffer.
    public static func httpChunk(_ data: ByteBuffer) -> ByteBuffer {
        guard data.readableBytes > 0 else { return ByteBuffer() }
        var out = ByteBuffer()
        let size = String(data.readableBytes, radix: 16)
        out.reserveCapacity(size.utf8.count + data.readableBytes + 4)
        out.writeString(size)
        out.writeStaticString("\r\n")
        var data = data
        out.writeBuffer(&data)
        out.writeStaticString("\r\n")
        return out
    }

    /// Unmasked, unfragmented WebSocket text frames (RFC 6455 §5.2) as a server sends them with no extension: FIN and
    /// opcode 1, then the payload length in 7 bits, or 126 and 16 bits, or 127 and 64 bits, then the payload.
    public static func webSocketTextFrames(_ payloads: [ByteBuffer]) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(payloads.reduce(0) { $0 + $1.readableBytes + 10 })
        for var payload in payloads {
            out.writeInteger(UInt8(0x81))
            let length = payload.readableBytes
            if length < 126 {
                out.writeInteger(UInt8(length))
            } else if length <= Int(UInt16.max) {
                out.writeInteger(UInt8(126))
                out.writeInteger(UInt16(length))
            } else {
                out.writeInteger(UInt8(127))
                out.writeInteger(UInt64(length))
            }
            out.writeBuffer(&payload)
        }
        return out
    }
}
