import Hummingbird

/// Sends requests under a stream root's `__ds` segment to the subscription APIs; every other stream request goes on to
/// `StreamsController` (whose path rules refuse a `__ds` segment, so no stream can shadow a control path).
struct SubscriptionRoutesMiddleware: RouterMiddleware {
    let controller: SubscriptionsController?

    func handle(_ request: Request, context: HubRequestContext,
                next: (Request, HubRequestContext) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path.contains(StreamsController.reservedSegment), let route = try SubscriptionRoute.parse(rawPath: path) else {
            return try await next(request, context)
        }
        guard let controller else {
            throw HubProblem(status: .notFound, code: "reserved-path", detail: "This hub does not serve the subscription APIs.")
        }
        return try await controller.handle(route, request, context: context)
    }
}
