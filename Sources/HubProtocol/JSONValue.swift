import FoundationEssentials

/// Any JSON document, for reading the hub's answers without a Codable type per shape and for building
/// request bodies (hubctl), and for request bodies whose fields are checked one by one with clear refusals (the
/// subscription APIs). Object keys serialize sorted, so output is stable.
public indirect enum JSONValue: Sendable, Equatable, Decodable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int64.self) { self = .int(value) }
        else if let value = try? container.decode(Double.self) { self = .double(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    public static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    public subscript(key: String) -> JSONValue? {
        if case let .object(members) = self { return members[key] }
        return nil
    }

    public var string: String? { if case let .string(s) = self { s } else { nil } }
    public var int: Int64? { if case let .int(n) = self { n } else { nil } }
    public var bool: Bool? { if case let .bool(b) = self { b } else { nil } }
    public var array: [JSONValue]? { if case let .array(a) = self { a } else { nil } }
    public var isNull: Bool { self == .null }

    /// Compact JSON text.
    public var serialized: String {
        switch self {
        case .null: "null"
        case let .bool(b): b ? "true" : "false"
        case let .int(n): String(n)
        case let .double(d): d.isFinite ? String(d) : "null"
        case let .string(s): JSONText.quote(s)
        case let .array(items): "[" + items.map(\.serialized).joined(separator: ",") + "]"
        case let .object(members):
            "{" + members.keys.sorted().map { JSONText.quote($0) + ":" + members[$0]!.serialized }.joined(separator: ",") + "}"
        }
    }
}
