/// A slot: the unit of tenancy, ordering and quota (DESIGN §2). Grammar `[a-z0-9][a-z0-9._-]{0,62}`.
public struct SlotName: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init?(_ text: some StringProtocol) {
        guard Self.isValid(text.utf8) else { return nil }
        rawValue = String(text)
    }

    /// The grammar, checked in one pass over the bytes (this runs on every request).
    static func isValid(_ bytes: some Collection<UInt8>) -> Bool {
        var count = 0
        for b in bytes {
            guard count == 0 ? isLeading(b) : isInner(b) else { return false }
            count += 1
        }
        return (1...63).contains(count)
    }

    /// A name already checked by `isValid`.
    init(unchecked rawValue: String) { self.rawValue = rawValue }

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
        var raw = String(text)
        // On the contiguous bytes: generic `StringProtocol` index walks cost more than the check itself, and this runs
        // on every request.
        guard let slot = raw.withUTF8({ bytes in
            Self.slotLength(bytes).map { String(decoding: UnsafeBufferPointer(rebasing: bytes[..<$0]), as: UTF8.self) }
        }) else { return nil }
        self.rawValue = raw
        self.slot = SlotName(unchecked: slot)
    }

    /// The length of the path's slot, if the whole path is valid. One pass, no splitting: the slot up to the first
    /// '/', then each segment non-empty, not '.' or '..', of segment bytes only.
    private static func slotLength(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        guard bytes.count <= Self.maxLength else { return nil }
        let slotEnd = bytes.firstIndex(of: UInt8(ascii: "/")) ?? bytes.endIndex
        guard SlotName.isValid(bytes[..<slotEnd]) else { return nil }
        if slotEnd != bytes.endIndex {
            var length = 0, dots = 0
            for b in bytes[(slotEnd + 1)...] {
                if b == UInt8(ascii: "/") {
                    guard length > 0, dots != length || length > 2 else { return nil }
                    length = 0; dots = 0
                    continue
                }
                guard Self.isSegmentByte(b) else { return nil }
                length += 1
                if b == UInt8(ascii: ".") { dots += 1 }
            }
            guard length > 0, dots != length || length > 2 else { return nil }
        }
        return slotEnd
    }

    public var description: String { rawValue }
    /// True for the stream whose path is the slot itself.
    public var isInbox: Bool { rawValue == slot.rawValue }

    private static func isSegmentByte(_ b: UInt8) -> Bool {
        (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || (0x30...0x39).contains(b)
            || b == 0x2E || b == 0x5F || b == 0x7E || b == 0x2D
    }
}
