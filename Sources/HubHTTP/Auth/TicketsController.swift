import Foundation
import HubAuth
import HubCore
import HubProtocol
import Hummingbird

/// `POST /v1/tickets`: exchanges a bearer token for a single-use, 60-second ticket bound to one stream path and one
/// scope, for browsers' `EventSource`/`WebSocket`, which cannot send headers (docs/api/auth.md).
struct TicketsController: Sendable {
    let tickets: TicketBook

    struct TicketRequest: Decodable { var path: String; var scope: String? }
    struct TicketDocument: Encodable { var ticket: String; var path: String; var scope: String; var expiresAt: String }

    func addRoutes(to router: Router<HubRequestContext>) {
        router.post("/v1/tickets", use: issue)
    }

    @Sendable func issue(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard let grant = context.grant else { throw AuthError.missingCredentials }
        guard !grant.exactPath else { throw AuthError.invalidTicket }  // a ticket cannot buy more tickets
        let body = try await AdminController.decode(TicketRequest.self, request)
        var raw = Substring(body.path)
        if raw.hasPrefix(StreamsController.prefix) { raw = raw.dropFirst(StreamsController.prefix.count) } else if raw.hasPrefix("/") { raw = raw.dropFirst() }
        guard let path = StreamPath(raw) else { throw HubProblem.invalidPath(String(raw)) }
        guard let scope = Scope(rawValue: body.scope ?? "read"), scope != .admin else {
            throw HubProblem(status: .badRequest, code: "invalid-body", detail: "scope must be read, append, create, delete or consume.")
        }
        let issued = try await tickets.issue(path: path, scope: scope, owner: grant, nowMs: AdminController.nowMs)
        let document = TicketDocument(ticket: issued.ticket, path: path.rawValue, scope: scope.rawValue,
                                      expiresAt: RFC3339.format(millisecondsSince1970: issued.expiresAtMs))
        return try AdminController.json(document, status: .created)
    }
}
