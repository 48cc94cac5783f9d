import HubCore

/// Why a request was refused by auth. 401s say the credentials are no good; 403s say they are good but not for this.
public enum AuthError: Error, Sendable, Equatable {
    /// No credentials where they are required.
    case missingCredentials
    /// Not a `hub_…` token, or an `Authorization` header that is not `Bearer`.
    case malformedToken
    /// Unknown, expired or revoked: deliberately indistinguishable to the client.
    case invalidToken
    /// A token in the query string, which leaks into logs and history (refused unless enabled).
    case tokenInQuery
    /// A missing, used or expired ticket, or one for another path.
    case invalidTicket
    case insufficientScope(Scope)
    /// The token is limited to another slot or path prefix.
    case outOfReach
    /// Too many requests; retry after the given number of seconds.
    case rateLimited(retryAfterSeconds: Int)

    public var isUnauthenticated: Bool {
        switch self {
        case .missingCredentials, .malformedToken, .invalidToken, .tokenInQuery, .invalidTicket: true
        case .insufficientScope, .outOfReach, .rateLimited: false
        }
    }
}
