import Foundation
import HubAuth
import HubCore
import Synchronization

/// Single-use, short-lived tickets for clients that cannot send headers (browser `EventSource` and `WebSocket`):
/// a bearer token is exchanged for a ticket bound to one stream path and one scope, passed as `?ticket=`.
/// Tickets live in memory: a restart invalidates them, which costs a client one more exchange.
public final class TicketBook: Sendable {
    public static let lifetimeMs: Int64 = 60_000
    static let maxTickets = 100_000

    struct Ticket { let grant: Grant; let expiresAtMs: Int64 }
    private let tickets = Mutex([String: Ticket]())

    public init() {}

    /// Issues a ticket for `scope` on exactly `path`, on behalf of `owner` (whose grant must already allow it).
    public func issue(path: StreamPath, scope: Scope, owner: Grant, nowMs: Int64) throws -> (ticket: String, expiresAtMs: Int64) {
        try owner.authorize(scope, on: path)
        let secret = "tkt_" + BearerToken.generate().secret.dropFirst(BearerToken.prefix.count)
        let expires = nowMs + Self.lifetimeMs
        let grant = Grant(tokenID: owner.tokenID + "+ticket", slot: path.slot, scopes: [scope], prefix: path.rawValue, expiresAtMs: expires,
                          exactPath: true)
        try tickets.withLock { tickets in
            if tickets.count >= Self.maxTickets { tickets = tickets.filter { $0.value.expiresAtMs > nowMs } }
            guard tickets.count < Self.maxTickets else { throw AuthError.rateLimited(retryAfterSeconds: 60) }
            tickets[BearerToken.digest(of: secret)] = Ticket(grant: grant, expiresAtMs: expires)
        }
        return (secret, expires)
    }

    /// Consumes a ticket: it works once, within its lifetime.
    public func redeem(_ secret: String, nowMs: Int64) throws(AuthError) -> Grant {
        guard secret.hasPrefix("tkt_"), secret.utf8.count == BearerToken.length else { throw .invalidTicket }
        guard let ticket = tickets.withLock({ $0.removeValue(forKey: BearerToken.digest(of: secret)) }), ticket.expiresAtMs > nowMs else {
            throw .invalidTicket
        }
        return ticket.grant
    }
}
