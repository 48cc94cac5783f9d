/// Parsers for Durable Streams header values. Each is strict: anything unexpected is a 400, never a guess.
public enum HeaderValues {
    /// Largest integer a JavaScript client can represent exactly; producer epochs and seqs stay below it.
    public static let maxSafeInteger: UInt64 = (1 << 53) - 1

    /// `Stream-TTL`: `^(0|[1-9][0-9]*)$` seconds.
    public static func ttlSeconds(_ value: String) throws(ProtocolError) -> UInt64 {
        guard let n = plainDecimal(value), n <= maxSafeInteger else {
            throw .invalidHeader(name: "Stream-TTL", reason: "must be a whole number of seconds without sign or leading zeros")
        }
        return n
    }

    /// A plain non-negative decimal, no sign, no leading zeros (except "0" itself), no other characters.
    public static func plainDecimal(_ value: String) -> UInt64? {
        let bytes = value.utf8
        guard let first = bytes.first, bytes.count <= 19, bytes.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        if first == 0x30 && bytes.count > 1 { return nil }
        return UInt64(value)
    }

    /// Producer epoch or seq: decimal 0...2^53-1.
    public static func producerNumber(_ value: String, header: String) throws(ProtocolError) -> UInt64 {
        let bytes = value.utf8
        guard !bytes.isEmpty, bytes.count <= 16, bytes.allSatisfy({ (0x30...0x39).contains($0) }),
              let n = UInt64(value), n <= maxSafeInteger else {
            throw .invalidHeader(name: header, reason: "must be an integer from 0 to 2^53-1")
        }
        return n
    }

    /// `Stream-Closed` counts only when it equals `true`, case-insensitively; anything else is absent.
    public static func isTrue(_ value: String?) -> Bool {
        value?.lowercased() == "true"
    }

    /// `Stream-Fork-Sub-Offset`: a non-negative integer.
    public static func subOffset(_ value: String) throws(ProtocolError) -> UInt64 {
        let bytes = value.utf8
        guard !bytes.isEmpty, bytes.count <= 19, bytes.allSatisfy({ (0x30...0x39).contains($0) }), let n = UInt64(value) else {
            throw .invalidHeader(name: "Stream-Fork-Sub-Offset", reason: "must be a non-negative integer")
        }
        return n
    }
}
