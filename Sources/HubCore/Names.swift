/// A slot: the unit of tenancy, ordering and quota (DESIGN §2). Grammar `[a-z0-9][a-z0-9._-]{0,62}`.
public struct SlotName: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init?(_ text: some StringProtocol) {
        let bytes = Array(text.utf8)
        guard (1...63).contains(bytes.count), Self.isLeading(bytes[0]), bytes.dropFirst().allSatisfy(Self.isInner) else { return nil }
        rawValue = String(text)
    }

    public var description: String { rawValue }

    private static func isLeading(_ b: UInt8) -> Bool { (0x61...0x7A).contains(b) || (0x30...0x39).contains(b) }
    private static func isInner(_ b: UInt8) -> Bool { isLeading(b) || b == 0x2E || b == 0x5F || b == 0x2D }
}

/// A stream path: `{slot}` (the slot's inbox) or `{slot}/{segment}/...` with segments `[A-Za-z0-9._~-]+`.
/// `.` and `..` segments are refused so a path can never be read as a relative reference.
public struct StreamPath: Hashable, Sendable, CustomStringConvertible {
    /// Longest accepted path in bytes; keeps keys, logs and ETags bounded.
    public static let maxLength = 512

    public let rawValue: String
    public let slot: SlotName

    public init?(_ text: some StringProtocol) {
        guard text.utf8.count <= Self.maxLength else { return nil }
        let segments = text.split(separator: "/", omittingEmptySubsequences: false)
        guard let first = segments.first, let slot = SlotName(first) else { return nil }
        for segment in segments.dropFirst() {
            guard !segment.isEmpty, segment != ".", segment != "..", segment.utf8.allSatisfy(Self.isSegmentByte) else { return nil }
        }
        self.rawValue = String(text)
        self.slot = slot
    }

    public var description: String { rawValue }
    /// True for the stream whose path is the slot itself.
    public var isInbox: Bool { rawValue == slot.rawValue }

    private static func isSegmentByte(_ b: UInt8) -> Bool {
        (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || (0x30...0x39).contains(b)
            || b == 0x2E || b == 0x5F || b == 0x7E || b == 0x2D
    }
}
