import HTTPTypes
import Hummingbird

/// Headers every response carries, errors included (Durable Streams §0): `nosniff` everywhere, a resource
/// policy on reads, and permissive CORS so browser clients of the protocol work from any origin.
/// Auth is by bearer header, never cookies, so `*` does not expose credentials.
struct ResponseHeadersMiddleware: RouterMiddleware {
    let metrics: HubMetrics

    static let exposed = [
        "Stream-Next-Offset", "Stream-Up-To-Date", "Stream-Cursor", "Stream-Closed", "Stream-TTL", "Stream-Expires-At",
        "Producer-Epoch", "Producer-Seq", "Producer-Expected-Seq", "Producer-Received-Seq", "stream-sse-data-encoding", "Hub-Retention-Floor",
        "ETag", "Location", "Retry-After", "Content-Type",
    ].joined(separator: ", ")
    static let allowed = [
        "Authorization", "Content-Type", "If-None-Match", "Last-Event-ID", "Stream-Closed", "Stream-TTL", "Stream-Expires-At",
        "Stream-Seq", "Stream-Forked-From", "Stream-Fork-Offset", "Stream-Fork-Sub-Offset", "Producer-Id", "Producer-Epoch",
        "Producer-Seq", "Idempotency-Key", "Event-Type",
    ].joined(separator: ", ")

    func handle(_ request: Request, context: HubRequestContext,
                next: (Request, HubRequestContext) async throws -> Response) async throws -> Response {
        var response: Response
        if request.method == .options {
            response = Response(status: .noContent)
            response.headers[.accessControlAllowMethods] = "GET, HEAD, PUT, POST, DELETE, OPTIONS"
            response.headers[.accessControlAllowHeaders] = Self.allowed
            response.headers[.accessControlMaxAge] = "600"
        } else {
            response = try await next(request, context)
        }
        metrics.recordResponse(status: Int(response.status.code))
        Self.add(to: &response.headers, method: request.method)
        return response
    }

    /// The headers above, for a response to `method` (the hot path adds them to its own responses).
    static func add(to fields: inout HTTPFields, method: HTTPRequest.Method) {
        fields[.xContentTypeOptions] = "nosniff"
        fields[.accessControlAllowOrigin] = "*"
        fields[.accessControlExposeHeaders] = Self.exposed
        if method == .get || method == .head {
            fields[.crossOriginResourcePolicy] = "cross-origin"
        }
    }
}
