import HubAuth
import Hummingbird

/// On the local admin unix socket every request acts as a global admin named `local` (audit entries say so).
struct LocalAdminMiddleware: RouterMiddleware {
    func handle(_ request: Request, context: HubRequestContext,
                next: (Request, HubRequestContext) async throws -> Response) async throws -> Response {
        var context = context
        context.grant = .everything("local")
        return try await next(request, context)
    }
}
