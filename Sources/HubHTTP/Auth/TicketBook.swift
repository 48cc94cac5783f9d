import Foundation
import HubAuth
import HubCore
import Synchronization

/// Single-use, short-lived tickets for clients that cannot send headers (browser `EventSource` and `WebSocket`):
/// a bearer token is exchanged for a ticket bound to one stream path and one scope, passed as `?ticket=`.
/// Tickets live in memory (a restart invalidates them, which costs a client one more exchange), or, when the store is
/// shared by several nodes (`TicketLedger`), in the store, so the node that redeems one need not be the one that issued it.
public final class TicketBook: Sendable {
    public static let lifetimeMs: Int64 = 60_000
    static let maxTickets = 100_000

    struct Ticket { let grant: Grant; let expiresAtMs: Int64 }
    private let tickets = Mutex([String: Ticket]())

    private let ledger: (any TicketLedger)?

    public init(ledger: (any TicketLedger)? = nil) { self.ledger = ledger }

    /// What a ticket grants: `scope` on exactly `path`, until it expires.
    private static func grant(_ ticket: StoredTicket) -> Grant {
        Grant(tokenID: ticket.tokenID, slot: ticket.path.slot, scopes: [ticket.scope], prefix: ticket.path.rawValue, expiresAtMs: ticket.expiresAtMs,
              exactPath: true)
    }

    /// Issues a ticket for `scope` on exactly `path`, on behalf of `owner` (whose grant must already allow it).
    public func issue(path: StreamPath, scope: Scope, owner: Grant, nowMs: Int64) async throws -> (ticket: String, expiresAtMs: Int64) {
        try owner.authorize(scope, on: path)
        let secret = "tkt_" + BearerToken.generate().secret.dropFirst(BearerToken.prefix.count)
        let expires = nowMs + Self.lifetimeMs
        let ticket = StoredTicket(tokenID: owner.tokenID + "+ticket", path: path, scope: scope, expiresAtMs: expires)
        if let ledger {
            try await ledger.storeTicket(digest: BearerToken.digest(of: secret), ticket)
            return (secret, expires)
        }
        let grant = Self.grant(ticket)
        try tickets.withLock { tickets in
            if tickets.count >= Self.maxTickets { tickets = tickets.filter { $0.value.expiresAtMs > nowMs } }
            guard tickets.count < Self.maxTickets else { throw AuthError.rateLimited(retryAfterSeconds: 60) }
            tickets[BearerToken.digest(of: secret)] = Ticket(grant: grant, expiresAtMs: expires)
        }
        return (secret, expires)
    }

    /// Consumes a ticket: it works once, within its lifetime.
    public func redeem(_ secret: String, nowMs: Int64) async throws -> Grant {
        guard secret.hasPrefix("tkt_"), secret.utf8.count == BearerToken.length else { throw AuthError.invalidTicket }
        if let ledger {
            guard let ticket = try await ledger.redeemTicket(digest: BearerToken.digest(of: secret), nowMs: nowMs) else { throw AuthError.invalidTicket }
            return Self.grant(ticket)
        }
        guard let ticket = tickets.withLock({ $0.removeValue(forKey: BearerToken.digest(of: secret)) }), ticket.expiresAtMs > nowMs else {
            throw AuthError.invalidTicket
        }
        return ticket.grant
    }
}
