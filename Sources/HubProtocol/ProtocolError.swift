/// Malformed input at the wire level. Every case is a client error (HTTP 400); HubHTTP renders it.
public enum ProtocolError: Error, Sendable, Equatable {
    case invalidOffset(String)
    case repeatedParameter(String)
    case missingParameter(String)
    case invalidParameter(name: String, value: String)
    case invalidHeader(name: String, reason: String)
    case conflictingHeaders(String, String)
    case missingContentType
    case emptyBody
    case invalidJSON(String)
    case emptyJSONArray
    case invalidStreamPath(String)

    /// Stable machine-readable code (docs/api/errors.md).
    public var code: String {
        switch self {
        case .invalidOffset: "invalid-offset"
        case .repeatedParameter: "repeated-parameter"
        case .missingParameter: "missing-parameter"
        case .invalidParameter: "invalid-parameter"
        case .invalidHeader: "invalid-header"
        case .conflictingHeaders: "conflicting-headers"
        case .missingContentType: "missing-content-type"
        case .emptyBody: "empty-body"
        case .invalidJSON: "invalid-json"
        case .emptyJSONArray: "empty-json-array"
        case .invalidStreamPath: "invalid-stream-path"
        }
    }

    public var detail: String {
        switch self {
        case .invalidOffset(let v): "Offset '\(v.prefix(64))' is not -1, now, or an offset this server issued."
        case .repeatedParameter(let n): "Query parameter '\(n)' may appear only once."
        case .missingParameter(let n): "Query parameter '\(n)' is required here."
        case .invalidParameter(let n, let v): "Query parameter '\(n)' has an invalid value '\(v.prefix(64))'."
        case .invalidHeader(let n, let r): "Header \(n): \(r)"
        case .conflictingHeaders(let a, let b): "Headers \(a) and \(b) cannot be used together."
        case .missingContentType: "A request with a body needs a Content-Type."
        case .emptyBody: "The body is empty; send data, or Stream-Closed: true to close."
        case .invalidJSON(let r): "The body is not valid JSON: \(r)"
        case .emptyJSONArray: "An empty JSON array appends nothing; send at least one value."
        case .invalidStreamPath(let p): "'\(p.prefix(80))' is not a valid stream path: {slot} or {slot}/{segment}/..., slot [a-z0-9][a-z0-9._-]{0,62}, segments [A-Za-z0-9._~-]+."
        }
    }
}
