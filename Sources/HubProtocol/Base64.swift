import NIOCore

/// Standard base64 (RFC 4648 §4, padded), for binary streams over SSE.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ input: ByteBuffer) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity((input.readableBytes + 2) / 3 * 4)
        input.withUnsafeReadableBytes { b in
            var i = 0
            while i + 3 <= b.count {
                let n = UInt32(b[i]) << 16 | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2])
                out.writeBytes([alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]])
                i += 3
            }
            let rest = b.count - i
            if rest == 1 {
                let n = UInt32(b[i]) << 16
                out.writeBytes([alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")])
            } else if rest == 2 {
                let n = UInt32(b[i]) << 16 | UInt32(b[i + 1]) << 8
                out.writeBytes([alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], UInt8(ascii: "=")])
            }
        }
        return out
    }
}
