import Foundation
import HubAuth
import Hummingbird
import Logging

/// Authenticates every request before any work: a `?ticket=` or the `Authorization` header becomes a grant on the
/// context (handlers then authorize the specific action), and rate limits apply: per token when authenticated,
/// per client address for anonymous requests and failed credentials. Logs carry the token id (`hub.token`), never
/// the secret. Open mode grants everything and limits nothing.
struct AuthMiddleware: RouterMiddleware {
    let authenticator: Authenticator
    let tickets: TicketBook

    func handle(_ request: Request, context: HubRequestContext,
                next: (Request, HubRequestContext) async throws -> Response) async throws -> Response {
        var context = context
        if authenticator.configuration.mode == .open {
            context.grant = .everything("open")
            return try await next(request, context)
        }
        if SubscriptionRoute.authenticatesItself(rawPath: request.uri.path) {
            // A subscription callback, ack or release: its bearer is the wake's callback token, checked by the handler.
            try limitAddress(context)
            return try await next(request, context)
        }
                // Most requests carry no query at all: parse it only when there is one.
        let query = request.uri.query == nil ? nil : request.uri.queryParameters
        do {
            if let ticket = query?["ticket"] {
                context.grant = try await tickets.redeem(String(ticket), nowMs: Int64(Date().timeIntervalSince1970 * 1000))
            } else {
                context.grant = try await authenticator.grant(authorization: request.headers[.authorization], queryToken: query?.has("access_token") ?? false,
                                                              address: context.remoteAddress?.ipAddress)
            }
        } catch {
            try limitAddress(context)  // failed credentials count against the address: no free guessing
            throw error
        }
        if let grant = context.grant {
            context.logger[metadataKey: "hub.token"] = "\(grant.tokenID)"
            if let retry = authenticator.tokenLimiter.take(grant.tokenID) { throw AuthError.rateLimited(retryAfterSeconds: retry) }
        } else {
            try limitAddress(context)
        }
        return try await next(request, context)
    }

    private func limitAddress(_ context: HubRequestContext) throws {
        let key = context.remoteAddress?.ipAddress ?? "unknown"
        if let retry = authenticator.addressLimiter.take(key) { throw AuthError.rateLimited(retryAfterSeconds: retry) }
    }
}
