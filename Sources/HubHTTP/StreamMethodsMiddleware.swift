import HTTPTypes
import Hummingbird

/// Answers 405 with `Allow` for methods streams do not support (the router alone would answer 404).
struct StreamMethodsMiddleware: RouterMiddleware {
    func handle(_ request: Request, context: HubRequestContext,
                next: (Request, HubRequestContext) async throws -> Response) async throws -> Response {
        if request.uri.path.hasPrefix(StreamsController.prefix), !StreamsController.allowedMethods.contains(request.method) {
            throw HubProblem(status: .methodNotAllowed, code: "method-not-allowed", detail: "Streams answer PUT, POST, GET, HEAD and DELETE.",
                             headers: [.allow: "GET, HEAD, PUT, POST, DELETE, OPTIONS"])
        }
        return try await next(request, context)
    }
}
