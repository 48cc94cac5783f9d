/// A stream's content type: the exact string it was created with (echoed on every response) and its
/// lowercased essence `type/subtype` (compared case-insensitively, parameters ignored).
public struct ContentType: Hashable, Sendable, CustomStringConvertible {
    public let raw: String
    public let essence: String

    public static let octetStream = ContentType(validating: "application/octet-stream")!
    public static let json = ContentType(validating: "application/json")!

    /// Accepts `type/subtype` followed by optional `;` parameters; nil for anything else.
    public init?(validating raw: String) {
        let trimmed = raw.trimmingSpaces
        let bytes = trimmed.utf8
        guard bytes.count <= 255, !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return nil }
        // `type/subtype` up to the first ';', spaces around it ignored; one pass (this runs on every append).
        let headEnd = bytes.firstIndex(of: UInt8(ascii: ";")) ?? bytes.endIndex
        var head = bytes[..<headEnd]
        while let last = head.last, last == 0x20 || last == 0x09 { head = head.dropLast() }
        var slashes = 0, typeLength = 0, subtypeLength = 0, lowercase = true
        for b in head {
            if b == UInt8(ascii: "/") { slashes += 1; continue }
            guard Self.isTokenByte(b) else { return nil }
            if slashes == 0 { typeLength += 1 } else { subtypeLength += 1 }
            if (0x41...0x5A).contains(b) { lowercase = false }
        }
        guard slashes == 1, typeLength > 0, subtypeLength > 0 else { return nil }
        self.raw = trimmed
        let essence = String(Substring(head))
        self.essence = lowercase ? essence : essence.lowercased()
    }

    public var description: String { raw }
    /// JSON mode (Durable Streams §6): `application/json` and `+json` suffixes.
    public var isJSON: Bool { essence == "application/json" || essence.hasSuffix("+json") }
    /// Types whose bytes are sent as UTF-8 text over SSE; every other type is base64-encoded.
    public var isText: Bool { essence.hasPrefix("text/") || isJSON }
    public func matches(_ other: ContentType) -> Bool { essence == other.essence }

    private static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"),
            UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"),
            UInt8(ascii: "|"), UInt8(ascii: "~"): true
        default: false
        }
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return String(s)
    }
}
