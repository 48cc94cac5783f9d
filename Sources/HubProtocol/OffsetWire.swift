import HubCore

extension Offset {
    /// Width of the wire form. Zero-padded decimal, so string order equals numeric order
    /// (clients, CDNs and `Last-Event-ID` compare offsets as text).
    public static let wireWidth = 20

    /// `00000000000000000042` for position 42.
    public var wire: String {
        // Written in place, right to left: one allocation (every response and control event carries an offset; the
        // padded concatenation built three strings, ~3 % of a long-poll answer).
        String(unsafeUninitializedCapacity: Self.wireWidth) { buffer in
            var value = position
            for index in stride(from: Self.wireWidth - 1, through: 0, by: -1) {
                buffer[index] = UInt8(truncatingIfNeeded: value % 10) &+ 0x30
                value /= 10
            }
            return Self.wireWidth
        }
    }

    /// The reference server's name for the start of a stream. Its clients send it as a fork point and a read offset,
    /// so it is accepted as `.start` — this exact literal only; every other offset is hubd's own form.
    public static let referenceZero = "0000000000000000_0000000000000000"

    /// Parses the wire form; nil for anything that is not exactly 20 ASCII digits or `referenceZero`.
    public init?(wire: some StringProtocol) {
        if wire.utf8.count == Self.referenceZero.utf8.count {
            guard wire.utf8.elementsEqual(Self.referenceZero.utf8) else { return nil }
            self = .start
            return
        }
        guard wire.utf8.count == Self.wireWidth, wire.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
              let value = UInt64(wire) else { return nil }
        self.init(value)
    }
}

/// Where a read starts (Durable Streams §7.1): the beginning (`-1` or no offset), the tail (`now`), or an offset.
public enum ReadStart: Equatable, Sendable {
    case beginning
    case now
    case after(Offset)

    /// Parses every `offset` value of the query. Missing means `.beginning` unless `required`
    /// (long-poll and SSE need an explicit offset).
    public static func parse(_ values: [String], required: Bool) throws(ProtocolError) -> ReadStart {
        guard values.count <= 1 else { throw .repeatedParameter("offset") }
        guard let value = values.first else {
            if required { throw .missingParameter("offset") }
            return .beginning
        }
        switch value {
        case "-1": return .beginning
        case "now": return .now
        default:
            guard let offset = Offset(wire: value) else { throw .invalidOffset(value) }
            return .after(offset)
        }
    }
}
