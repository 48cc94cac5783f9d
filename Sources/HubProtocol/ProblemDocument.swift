import NIOCore

/// RFC 9457 problem details. `code` is the documented contract (docs/api/errors.md); `detail` is prose and may change.
public struct ProblemDocument: Sendable, Equatable {
    public var status: Int
    public var title: String
    public var code: String
    public var detail: String?
    /// The request path only, never the host.
    public var instance: String?

    public init(status: Int, title: String, code: String, detail: String? = nil, instance: String? = nil) {
        self.status = status; self.title = title; self.code = code; self.detail = detail; self.instance = instance
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
        return JSONText.object(pairs)
    }
}
