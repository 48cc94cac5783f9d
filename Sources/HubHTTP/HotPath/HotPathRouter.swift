import HTTPTypes
import HubAuth
import HubCore

/// The one place that decides which path a request takes (docs/architecture.md, "Two paths, one set of rules").
///
/// The hot path serves the requests that dominate a busy hub from the connection's event loop, with no Swift task,
/// no middleware chain and no body stream: today the Durable Streams append. Everything else, and every request
/// whose answer needs anything the event loop cannot decide on its own (a token not yet verified, a ticket, an
/// anonymous caller, `Expect: 100-continue`, a store without `AppendSubmitting`), goes to the general router
/// (Hummingbird), which gives the full answer. Both paths apply the same rules: `StreamAppend` (the request and its
/// answer), `StreamsController.streamPath`, `Grant.authorize`, the rate limiter, `ProblemMiddleware.problem(for:)`.
public struct HotPathRouter: Sendable {
    public enum Route: Sendable {
        /// The general router (Hummingbird) answers.
        case general
        /// `POST /v1/stream/{path}`, authorized for `tokenID`; the hot path collects the body and appends.
        case streamAppend(StreamPath, tokenID: String)
    }

    let appender: (any AppendSubmitting)?
    let auth: Authenticator

    /// - Parameter store: the hot path appends only through a store that takes appends from an event loop.
    public init(store: any StreamStore, auth: Authenticator) {
        appender = store as? any AppendSubmitting
        self.auth = auth
    }

    /// Where `request` goes. A hot route has passed authentication, authorization and the token's rate limit.
    func route(_ request: HTTPRequest, remoteAddress: @autoclosure () -> String?) -> Route {
        guard appender != nil, request.method == .post, let target = request.path, target.hasPrefix(StreamsController.prefix),
              !target.contains("?"),  // queries carry tickets and access tokens: the router's business
              request.headerFields[.expect] == nil
        else { return .general }
        guard let path = try? StreamsController.streamPath(rawPath: target),
              let grant = auth.cachedGrant(authorization: request.headerFields[.authorization], address: remoteAddress()),
              (try? grant.authorize(.append, on: path)) != nil
        else { return .general }
        // Refusals are the router's to render (it takes the limiter again and answers 429 with Retry-After).
        if auth.configuration.mode == .tokens, auth.tokenLimiter.take(grant.tokenID) != nil { return .general }
        return .streamAppend(path, tokenID: grant.tokenID)
    }
}
