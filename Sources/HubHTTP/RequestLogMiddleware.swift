import Foundation
import Hummingbird
import Logging

/// One debug line per request: method, path (never the query, where tickets travel), status, duration, and the
/// request id and token id the logger already carries. Debug level: at tens of thousands of requests per second an
/// info line each would drown the journal.
struct RequestLogMiddleware: RouterMiddleware {
    func handle(_ request: Request, context: HubRequestContext,
                next: (Request, HubRequestContext) async throws -> Response) async throws -> Response {
        guard context.logger.logLevel <= .debug else { return try await next(request, context) }
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let elapsed = ContinuousClock.now - start
        context.logger.debug("request", metadata: [
            "http.method": "\(request.method)", "http.path": "\(request.uri.path)", "http.status": "\(response.status.code)",
            "http.duration_ms": "\(Self.milliseconds(elapsed))",
        ])
        return response
    }

    /// A duration as milliseconds with microsecond precision, for the request line (the hot path logs the same).
    static func milliseconds(_ elapsed: Duration) -> Double {
        Double(elapsed.components.attoseconds / 1_000_000_000_000) / 1000 + Double(elapsed.components.seconds) * 1000
    }
}
