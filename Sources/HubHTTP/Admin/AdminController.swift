import Foundation
import HTTPTypes
import HubAuth
import HubCore
import Hummingbird
import NIOCore

/// The admin API under `/v1/admin` (docs/api/admin.md): slots, tokens, streams, the audit log. Every call needs
/// the `admin` scope; a slot-scoped admin token reaches only its own slot. Mutations clear the auth caches so a
/// revoked token stops working on the very next request.
struct AdminController: Sendable {
    let store: any StreamStore & AdminStore & SlotLog
    let auth: Authenticator
    let facts: ServerFacts
    let metrics: HubMetrics
    /// Admin bodies are small documents.
    static let maxBodyBytes = 64 << 10
    static let maxLabel = 200
    static let maxExpirySeconds: Int64 = 10 * 365 * 86_400

    func addRoutes(to router: Router<HubRequestContext>) {
        let admin = router.group("/v1/admin")
        admin.post("slots", use: createSlot)
        admin.get("slots", use: listSlots)
        admin.get("slots/:name", use: showSlot)
        admin.patch("slots/:name", use: updateSlot)
        admin.delete("slots/:name", use: deleteSlot)
        admin.post("tokens", use: mintToken)
        admin.get("tokens", use: listTokens)
        admin.post("tokens/:id/rotate", use: rotateToken)
        admin.delete("tokens/:id", use: revokeToken)
        admin.get("streams", use: listStreams)
        admin.get("streams/**", use: showStream)
        admin.get("audit", use: listAudit)
        admin.get("stats", use: stats)
        admin.get("config", use: config)
        admin.get("connections", use: connections)
        admin.get("consumers", use: listConsumers)
        admin.delete("consumers/:slot/:consumer", use: resetConsumer)
        admin.post("backup", use: backup)
    }

    // MARK: Slots

    @Sendable func createSlot(_ request: Request, context: HubRequestContext) async throws -> Response {
        let grant = try context.requireHubAdmin()
        let body = try await Self.decode(SlotRequest.self, request)
        guard let raw = body.name else { throw HubProblem(status: .badRequest, code: "invalid-body", detail: "name is required.") }
        let name = try Self.slotName(raw)
        let info = try await store.createSlot(name, settings: try body.settings(), actor: grant.tokenID)
        auth.invalidate()
        return try Self.json(SlotDocument(info), status: .created)
    }

    @Sendable func listSlots(_ request: Request, context: HubRequestContext) async throws -> Response {
        let grant = try context.requireAdmin()
        let slots = try await store.slots().filter { grant.reaches(slot: $0.name) }
        return try Self.json(ListDocument(items: slots.map(SlotDocument.init)))
    }

    @Sendable func showSlot(_ request: Request, context: HubRequestContext) async throws -> Response {
        let name = try reachableSlot(context)
        return try Self.json(SlotDocument(try await store.slot(name)))
    }

    @Sendable func updateSlot(_ request: Request, context: HubRequestContext) async throws -> Response {
        let name = try reachableSlot(context)
        let body = try await Self.decode(SlotRequest.self, request)
        if let renamed = body.name, renamed != name.rawValue {
            throw HubProblem(status: .badRequest, code: "invalid-body", detail: "Slots cannot be renamed.")
        }
        let current = try await store.slot(name)
        let info = try await store.updateSlot(name, settings: try body.settings(updating: current.settings), actor: try context.requireAdmin().tokenID)
        auth.invalidate()
        return try Self.json(SlotDocument(info))
    }

    @Sendable func deleteSlot(_ request: Request, context: HubRequestContext) async throws -> Response {
        let grant = try context.requireHubAdmin()
        try await store.deleteSlot(try Self.slotName(context.parameters.require("name")), actor: grant.tokenID)
        auth.invalidate()
        return Response(status: .noContent)
    }

    // MARK: Tokens

    @Sendable func mintToken(_ request: Request, context: HubRequestContext) async throws -> Response {
        let grant = try context.requireAdmin()
        let body = try await Self.decode(TokenRequest.self, request)
        let record = try newToken(slot: body.slot, scopes: body.scopes, prefix: body.prefix, label: body.label, expiresInS: body.expiresInS, by: grant)
        try await store.insertToken(record.token, actor: grant.tokenID)
        return try Self.json(TokenDocument(record.token, secret: record.secret.secret), status: .created)
    }

    @Sendable func listTokens(_ request: Request, context: HubRequestContext) async throws -> Response {
        let grant = try context.requireAdmin()
        let slot = try request.uri.queryParameters["slot"].map { try Self.slotName(String($0)) }
        if let own = grant.slot, slot != own { throw AuthError.outOfReach }
        let tokens = try await store.tokens(slot: slot ?? grant.slot)
        return try Self.json(ListDocument(items: tokens.map { TokenDocument($0) }))
    }

    @Sendable func rotateToken(_ request: Request, context: HubRequestContext) async throws -> Response {
        let grant = try context.requireAdmin()
        let id = try context.parameters.require("id")
        guard let old = try await store.token(id: id), old.isUsable(atMs: Self.nowMs) else { throw StoreError.tokenNotFound(id) }
        try requireReach(old, grant)
        let body = try await Self.decode(RotateRequest.self, request, emptyAs: RotateRequest())
        let overlap = body.overlapS ?? 0
        guard (0...(30 * 86_400)).contains(overlap) else {
            throw HubProblem(status: .badRequest, code: "invalid-body", detail: "overlap_s must be 0 to 2592000 seconds.")
        }
        let secret = BearerToken.generate()
        let now = Self.nowMs
        let replacement = TokenRecord(id: TokenID.generate(), digest: secret.digest, slot: old.slot, scopes: old.scopes, prefix: old.prefix,
                                      label: old.label, createdAtMs: now, expiresAtMs: old.expiresAtMs, rotatedFrom: old.id)
        try await store.rotateToken(id, replacement: replacement, overlapUntilMs: now + overlap * 1000, actor: grant.tokenID)
        auth.invalidate()
        return try Self.json(TokenDocument(replacement, secret: secret.secret), status: .created)
    }

    @Sendable func revokeToken(_ request: Request, context: HubRequestContext) async throws -> Response {
        let grant = try context.requireAdmin()
        let id = try context.parameters.require("id")
        guard let token = try await store.token(id: id) else { throw StoreError.tokenNotFound(id) }
        try requireReach(token, grant)
        try await store.revokeToken(id, actor: grant.tokenID)
        auth.invalidate()
        return Response(status: .noContent)
    }

    // MARK: Streams and audit

    @Sendable func listStreams(_ request: Request, context: HubRequestContext) async throws -> Response {
        let grant = try context.requireAdmin()
        let slot = try request.uri.queryParameters["slot"].map { try Self.slotName(String($0)) }
        if let own = grant.slot, slot != own { throw AuthError.outOfReach }
        let limit = min(Int(request.uri.queryParameters["limit"].map(String.init) ?? "") ?? 1000, 10_000)
        let streams = try await store.streams(slot: slot ?? grant.slot, limit: max(1, limit))
        return try Self.json(ListDocument(items: streams.map(StreamDocument.init)))
    }

    @Sendable func showStream(_ request: Request, context: HubRequestContext) async throws -> Response {
        let grant = try context.requireAdmin()
        let raw = request.uri.path.dropFirst("/v1/admin/streams/".count)
        guard let path = StreamPath(raw) else { throw HubProblem.invalidPath(String(raw)) }
        guard grant.reaches(path) else { throw AuthError.outOfReach }
        guard let summary = try await store.streams(slot: path.slot, limit: 100_000).first(where: { $0.path == path }) else {
            throw StoreError.streamNotFound(path)
        }
        return try Self.json(StreamDocument(summary))
    }

    @Sendable func listAudit(_ request: Request, context: HubRequestContext) async throws -> Response {
        try context.requireHubAdmin()
        let limit = min(Int(request.uri.queryParameters["limit"].map(String.init) ?? "") ?? 100, 1000)
        return try Self.json(ListDocument(items: try await store.audit(limit: max(1, limit)).map(AuditDocument.init)))
    }

    // MARK: Operations

    struct StatsDocument: Encodable {
        var version: String
        var uptimeS: Int64
        var slots: Int
        var streams: Int64
        var records: Int64
        var bytes: Int64
        var liveReadersWaiting: Int
        var httpListener: String?
        var appendedTotal: Int
        var deliveredTotal: Int
    }

    @Sendable func stats(_ request: Request, context: HubRequestContext) async throws -> Response {
        let grant = try context.requireAdmin()
        let slots = try await store.slots().filter { grant.reaches(slot: $0.name) }
        return try Self.json(StatsDocument(version: facts.version, uptimeS: (Self.nowMs - facts.startedAtMs) / 1000, slots: slots.count,
                                           streams: slots.reduce(0) { $0 + $1.streams }, records: slots.reduce(0) { $0 + $1.records },
                                           bytes: slots.reduce(0) { $0 + $1.bytes }, liveReadersWaiting: facts.liveReaders(),
                                           httpListener: facts.httpListener(), appendedTotal: metrics.totals.appended,
                                           deliveredTotal: metrics.totals.delivered))
    }

    @Sendable func config(_ request: Request, context: HubRequestContext) async throws -> Response {
        try context.requireHubAdmin()
        return try Self.json(facts.effectiveConfig)
    }

    struct ConnectionsDocument: Encodable { var http: Int; var sse: Int; var longPoll: Int; var websocket: Int }

    /// Open client connections (every listener), and the live responses among them by transport.
    @Sendable func connections(_ request: Request, context: HubRequestContext) async throws -> Response {
        try context.requireHubAdmin()
        let open = metrics.openConnections
        return try Self.json(ConnectionsDocument(http: open.http, sse: open.sse, longPoll: open.longPoll, websocket: open.webSocket))
    }

    // MARK: Consumers

    @Sendable func listConsumers(_ request: Request, context: HubRequestContext) async throws -> Response {
        let grant = try context.requireAdmin()
        let slot = try request.uri.queryParameters["slot"].map { try Self.slotName(String($0)) }
        if let own = grant.slot, slot != own { throw AuthError.outOfReach }
        let consumers = try await store.consumers(slot: slot ?? grant.slot)
        return try Self.json(ListDocument(items: consumers.map(ConsumerDocument.init)))
    }

    /// Deletes the consumer's cursor: its next connection starts over (from `since`, or the oldest retained record).
    @Sendable func resetConsumer(_ request: Request, context: HubRequestContext) async throws -> Response {
        let grant = try context.requireAdmin()
        let slot = try Self.slotName(context.parameters.require("slot"))
        guard grant.reaches(slot: slot) else { throw AuthError.outOfReach }
        let name = try context.parameters.require("consumer")
        guard ConsumerState.isValidName(name) else { throw StoreError.consumerNotFound(name) }
        try await store.deleteConsumer(name, slot: slot, actor: grant.tokenID)
        return Response(status: .noContent)
    }

    struct BackupRequest: Decodable { var path: String }
    struct BackupDocument: Encodable { var path: String; var bytes: Int64 }

    /// An online copy of the store while writes continue. The path is on the server's filesystem, written as the
    /// server's user: global admins only.
    @Sendable func backup(_ request: Request, context: HubRequestContext) async throws -> Response {
        let grant = try context.requireHubAdmin()
        let body = try await Self.decode(BackupRequest.self, request)
        guard let backup = store as? any OnlineBackup else {
            throw HubProblem(status: .notImplemented, code: "backup-unsupported", detail: "This hub keeps its data in PostgreSQL, which backs it up with its own tools (pg_dump, pg_basebackup, WAL archiving); see docs/operations/postgres.md.")
        }
        let bytes = try await backup.backup(to: body.path)
        try await store.recordAudit(actor: grant.tokenID, action: "backup", target: body.path)
        return try Self.json(BackupDocument(path: body.path, bytes: bytes), status: .created)
    }

    // MARK: Helpers

    /// Builds a token record after checking every field, and that the minting grant may hand out this much.
    func newToken(slot rawSlot: String, scopes rawScopes: [String], prefix: String?, label: String, expiresInS: Int64?,
                  by grant: Grant) throws -> (token: TokenRecord, secret: BearerToken) {
        let slot: SlotName? = rawSlot == "*" ? nil : try Self.slotName(rawSlot)
        var scopes = Set<Scope>()
        for raw in rawScopes {
            guard let scope = Scope(rawValue: raw) else {
                throw HubProblem(status: .badRequest, code: "invalid-body", detail: "Unknown scope '\(raw.prefix(40))'; use read, append, create, delete, consume, admin.")
            }
            scopes.insert(scope)
        }
        guard !scopes.isEmpty else { throw HubProblem(status: .badRequest, code: "invalid-body", detail: "scopes must name at least one scope.") }
        if let prefix {
            guard let path = StreamPath(prefix), let slot, path.slot == slot else {
                throw HubProblem(status: .badRequest, code: "invalid-body", detail: "prefix must be a stream path inside the token's slot.")
            }
        }
        guard !label.isEmpty, label.count <= Self.maxLabel, !label.contains(where: { $0.isNewline }) else {
            throw HubProblem(status: .badRequest, code: "invalid-body", detail: "label must be 1 to \(Self.maxLabel) characters on one line.")
        }
        if let expiresInS, !(1...Self.maxExpirySeconds).contains(expiresInS) {
            throw HubProblem(status: .badRequest, code: "invalid-body", detail: "expires_in_s must be 1 to \(Self.maxExpirySeconds).")
        }
        // A slot admin hands out tokens for its own slot only; global tokens need a global admin.
        if let own = grant.slot, slot != own { throw AuthError.outOfReach }
        let secret = BearerToken.generate()
        let now = Self.nowMs
        let record = TokenRecord(id: TokenID.generate(), digest: secret.digest, slot: slot, scopes: scopes, prefix: prefix, label: label,
                                 createdAtMs: now, expiresAtMs: expiresInS.map { now + $0 * 1000 })
        return (record, secret)
    }

    private func reachableSlot(_ context: HubRequestContext) throws -> SlotName {
        let grant = try context.requireAdmin()
        let name = try Self.slotName(context.parameters.require("name"))
        guard grant.reaches(slot: name) else { throw AuthError.outOfReach }
        return name
    }

    private func requireReach(_ token: TokenRecord, _ grant: Grant) throws {
        if let own = grant.slot, token.slot != own { throw AuthError.outOfReach }
    }

    static func slotName(_ raw: String) throws -> SlotName {
        guard let name = SlotName(raw) else {
            throw HubProblem(status: .badRequest, code: "invalid-slot-name", detail: "'\(raw.prefix(80))' is not a slot name: [a-z0-9][a-z0-9._-]{0,62}.")
        }
        return name
    }

    /// Decodes a JSON body of at most 64 KiB; `emptyAs` answers for an empty body when the call allows one.
    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, emptyAs: T? = nil) async throws -> T {
        let body = try await request.body.collect(upTo: maxBodyBytes)
        if body.readableBytes == 0, let emptyAs { return emptyAs }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode(T.self, from: Data(body.readableBytesView))
        } catch let error as DecodingError {
            throw HubProblem(status: .badRequest, code: "invalid-body", detail: describe(error))
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let c): return "Missing field \((path(c) + "." + key.stringValue).trimmingCharacters(in: ["."]))."
        case .typeMismatch(_, let c), .valueNotFound(_, let c): return "Field \(path(c)) has the wrong type."
        case .dataCorrupted(let c): return c.codingPath.isEmpty ? "The body is not valid JSON." : "Field \(path(c)) is invalid."
        @unknown default: return "The body could not be read."
        }
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static var nowMs: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

