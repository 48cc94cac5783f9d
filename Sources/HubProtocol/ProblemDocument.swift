import NIOCore

/// RFC 9457 problem details. `code` is the documented contract (docs/api/errors.md); `detail` is prose and may change.
public struct ProblemDocument: Sendable, Equatable {
    public var status: Int
    public var title: String
    public var code: String
    public var detail: String?
    /// The request path only, never the host.
    public var instance: String?
    /// The Durable Streams subscription APIs' own error member (`"error":{"code":"FENCED","message":…}`, §11), which
    /// their clients read; an extension member of the problem document, so both kinds of client find their field.
    public var protocolError: ProtocolErrorMember?

    public struct ProtocolErrorMember: Sendable, Equatable {
        public var code: String
        public var message: String
        /// Extra members of the error object (`current_holder`, `generation`), as JSON values.
        public var members: [String: String]
        public init(code: String, message: String, members: [String: String] = [:]) { self.code = code; self.message = message; self.members = members }
    }

    public init(status: Int, title: String, code: String, detail: String? = nil, instance: String? = nil,
                protocolError: ProtocolErrorMember? = nil) {
        self.status = status; self.title = title; self.code = code; self.detail = detail; self.instance = instance
        self.protocolError = protocolError
    }

    public static let contentType = "application/problem+json"

    public var json: String {
        var pairs: [(String, String)] = [
            ("type", JSONText.quote("/docs/api/errors#\(code)")),
            ("title", JSONText.quote(title)),
            ("status", String(status)),
            ("code", JSONText.quote(code)),
        ]
        if let detail { pairs.append(("detail", JSONText.quote(detail))) }
        if let instance { pairs.append(("instance", JSONText.quote(instance))) }
        if let error = protocolError {
            let members = [("code", JSONText.quote(error.code)), ("message", JSONText.quote(error.message))]
                + error.members.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            pairs.append(("error", JSONText.object(members)))
        }
        return JSONText.object(pairs)
    }
}
