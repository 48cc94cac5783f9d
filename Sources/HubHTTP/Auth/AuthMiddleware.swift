import HubAuth
import Hummingbird
import Logging

/// Authenticates every request before any work: resolves the `Authorization` header into a grant on the context.
/// Handlers then authorize the specific action. Logs carry the token id (`hub.token`), never the secret.
struct AuthMiddleware: RouterMiddleware {
    let authenticator: Authenticator

    func handle(_ request: Request, context: HubRequestContext,
                next: (Request, HubRequestContext) async throws -> Response) async throws -> Response {
        var context = context
        let query = request.uri.queryParameters
        context.grant = try await authenticator.grant(authorization: request.headers[.authorization],
                                                      queryToken: query.has("access_token"))
        if let id = context.grant?.tokenID { context.logger[metadataKey: "hub.token"] = "\(id)" }
        return try await next(request, context)
    }
}
