import Foundation
import HubProtocol

/// Any JSON document, for reading the hub's answers without a Codable type per shape and for building
/// request bodies. Object keys serialize sorted, so output is stable.
indirect enum JSONValue: Sendable, Equatable, Decodable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int64.self) { self = .int(value) }
        else if let value = try? container.decode(Double.self) { self = .double(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    subscript(key: String) -> JSONValue? {
        if case let .object(members) = self { return members[key] }
        return nil
    }

    var string: String? { if case let .string(s) = self { s } else { nil } }
    var int: Int64? { if case let .int(n) = self { n } else { nil } }
    var bool: Bool? { if case let .bool(b) = self { b } else { nil } }
    var array: [JSONValue]? { if case let .array(a) = self { a } else { nil } }
    var isNull: Bool { self == .null }

    /// Compact JSON text.
    var serialized: String {
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

    /// How a value reads in a table cell: strings bare, absent and null as "-".
    var cell: String {
        switch self {
        case .null: "-"
        case let .string(s): s
        case let .array(items): items.map(\.cell).joined(separator: ",")
        default: serialized
        }
    }
}

extension Optional where Wrapped == JSONValue {
    var cell: String { self?.cell ?? "-" }
}
