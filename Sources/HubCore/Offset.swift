/// A position in one stream: the number of records before it. `Offset.start` (0) is the beginning; the
/// offset *after* record `n` is `n`. Positions continue across a fork point (a fork shares its source's
/// positions up to the fork, then numbers its own records after them), so they only ever grow within a stream.
/// The wire form lives in HubProtocol.
public struct Offset: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let position: UInt64
    public init(_ position: UInt64) { self.position = position }
    public static let start = Offset(0)
    public static func < (a: Offset, b: Offset) -> Bool { a.position < b.position }
    public var description: String { String(position) }
    public func advanced(by n: UInt64) -> Offset { Offset(position + n) }
}
