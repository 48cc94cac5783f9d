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
        guard trimmed.utf8.count <= 255, !trimmed.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return nil }
        let head = trimmed.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)[0].trimmingSpaces.lowercased()
        let parts = head.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy(Self.isTokenByte) }) else { return nil }
        self.raw = trimmed
        self.essence = head
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
