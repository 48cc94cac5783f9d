import HubProtocol

extension JSONValue {
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
