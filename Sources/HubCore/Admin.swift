/// What a token may do (DESIGN §2). `admin` implies every other scope within the token's reach.
public enum Scope: String, Sendable, CaseIterable, Hashable, Codable {
    case read, append, create, delete, consume, admin
}

/// A stored token: everything but the secret, of which only the SHA-256 digest is kept.
public struct TokenRecord: Sendable, Hashable {
    /// Public identifier shown in listings and logs (`tok_…`); never the secret.
    public var id: String
    /// Lowercase hex SHA-256 of the secret.
    public var digest: String
    /// nil for a global token (`"*"` on the wire).
    public var slot: SlotName?
    public var scopes: Set<Scope>
    /// Optional stream-path prefix inside the slot the token is limited to.
    public var prefix: String?
    public var label: String
    public var createdAtMs: Int64
    public var expiresAtMs: Int64?
    public var lastUsedAtMs: Int64?
    public var revokedAtMs: Int64?
    /// The token this one replaced by rotation.
    public var rotatedFrom: String?
    /// The client address of the last recorded use.
    public var lastUsedAddress: String?

    public init(id: String, digest: String, slot: SlotName?, scopes: Set<Scope>, prefix: String?, label: String, createdAtMs: Int64,
                expiresAtMs: Int64?, lastUsedAtMs: Int64? = nil, revokedAtMs: Int64? = nil, rotatedFrom: String? = nil,
                lastUsedAddress: String? = nil) {
        self.id = id; self.digest = digest; self.slot = slot; self.scopes = scopes; self.prefix = prefix; self.label = label
        self.createdAtMs = createdAtMs; self.expiresAtMs = expiresAtMs; self.lastUsedAtMs = lastUsedAtMs; self.revokedAtMs = revokedAtMs
        self.rotatedFrom = rotatedFrom; self.lastUsedAddress = lastUsedAddress
    }

    public func isUsable(atMs now: Int64) -> Bool {
        revokedAtMs == nil && (expiresAtMs.map { now < $0 } ?? true)
    }
}

/// A slot's settings (DESIGN §2). nil limits mean "no limit of its own" (server defaults apply).
public struct SlotSettings: Sendable, Hashable {
    public var maxAgeSeconds: Int64?
    public var maxBytes: Int64?
    public var maxRecords: Int64?
    public var maxMessageBytes: Int64?
    public var maxSubscribers: Int64?
    public var anonymousRead: Bool
    public var anonymousAppend: Bool

    public init(maxAgeSeconds: Int64? = nil, maxBytes: Int64? = nil, maxRecords: Int64? = nil, maxMessageBytes: Int64? = nil,
                maxSubscribers: Int64? = nil, anonymousRead: Bool = false, anonymousAppend: Bool = false) {
        self.maxAgeSeconds = maxAgeSeconds; self.maxBytes = maxBytes; self.maxRecords = maxRecords
        self.maxMessageBytes = maxMessageBytes; self.maxSubscribers = maxSubscribers
        self.anonymousRead = anonymousRead; self.anonymousAppend = anonymousAppend
    }
}

/// A slot as listed by the admin API.
public struct SlotInfo: Sendable, Hashable {
    public var name: SlotName
    public var settings: SlotSettings
    public var createdAtMs: Int64
    /// The last assigned `seq`.
    public var headSeq: UInt64
    public var streams: Int64
    public var records: Int64
    public var bytes: Int64

    public init(name: SlotName, settings: SlotSettings, createdAtMs: Int64, headSeq: UInt64, streams: Int64, records: Int64, bytes: Int64) {
        self.name = name; self.settings = settings; self.createdAtMs = createdAtMs; self.headSeq = headSeq
        self.streams = streams; self.records = records; self.bytes = bytes
    }
}

/// A stream as listed by the admin API.
public struct StreamSummary: Sendable, Hashable {
    public var path: StreamPath
    public var contentType: ContentType
    public var head: Offset
    public var records: Int64
    public var bytes: Int64
    public var closed: Bool
    public var deleted: Bool
    public var createdAtMs: Int64
    public var forkedFrom: String?

    public init(path: StreamPath, contentType: ContentType, head: Offset, records: Int64, bytes: Int64, closed: Bool, deleted: Bool,
                createdAtMs: Int64, forkedFrom: String?) {
        self.path = path; self.contentType = contentType; self.head = head; self.records = records; self.bytes = bytes
        self.closed = closed; self.deleted = deleted; self.createdAtMs = createdAtMs; self.forkedFrom = forkedFrom
    }
}

/// One admin action, kept in the store (who, what, when).
public struct AuditEntry: Sendable, Hashable {
    public var id: Int64
    public var atMs: Int64
    /// The acting token's id, or `local` for the admin unix socket.
    public var actor: String
    public var action: String
    public var target: String
    public var detail: String?

    public init(id: Int64, atMs: Int64, actor: String, action: String, target: String, detail: String?) {
        self.id = id; self.atMs = atMs; self.actor = actor; self.action = action; self.target = target; self.detail = detail
    }
}

/// Slots, tokens and the audit log. Every mutation records an audit entry in the same transaction.
public protocol AdminStore: Sendable {
    func createSlot(_ name: SlotName, settings: SlotSettings, actor: String) async throws(StoreError) -> SlotInfo
    func slots() async throws(StoreError) -> [SlotInfo]
    func slot(_ name: SlotName) async throws(StoreError) -> SlotInfo
    func updateSlot(_ name: SlotName, settings: SlotSettings, actor: String) async throws(StoreError) -> SlotInfo
    /// Deletes the slot with its streams, tokens and consumers.
    func deleteSlot(_ name: SlotName, actor: String) async throws(StoreError)

    func insertToken(_ token: TokenRecord, actor: String) async throws(StoreError)
    func tokens(slot: SlotName?) async throws(StoreError) -> [TokenRecord]
    func token(digest: String) async throws(StoreError) -> TokenRecord?
    func token(id: String) async throws(StoreError) -> TokenRecord?
    /// Inserts `replacement` and shortens the old token's life to `overlapUntilMs`.
    func rotateToken(_ id: String, replacement: TokenRecord, overlapUntilMs: Int64, actor: String) async throws(StoreError)
    func revokeToken(_ id: String, actor: String) async throws(StoreError)
    /// Records use; callers throttle it (at most once a minute per token).
    func touchToken(_ id: String, atMs: Int64, address: String?) async throws(StoreError)
    /// True when any usable global admin token exists (first-start bootstrap).
    func hasGlobalAdminToken() async throws(StoreError) -> Bool

    func streams(slot: SlotName?, limit: Int) async throws(StoreError) -> [StreamSummary]
    func audit(limit: Int) async throws(StoreError) -> [AuditEntry]
    /// Records an admin action that changed nothing in the store itself (a backup, say).
    func recordAudit(actor: String, action: String, target: String) async throws(StoreError)
}

/// Optional: a store that can write a consistent copy of itself while writes continue (`as?`-discovered).
public protocol OnlineBackup: Sendable {
    /// Writes the copy to `path`, which must not exist. Returns the copy's size in bytes.
    func backup(to path: String) async throws(StoreError) -> Int64
}

/// A single-use ticket as a shared store keeps it (see HubHTTP's `TicketBook`).
public struct StoredTicket: Sendable, Hashable {
    public var tokenID: String
    public var path: StreamPath
    public var scope: Scope
    public var expiresAtMs: Int64
    public init(tokenID: String, path: StreamPath, scope: Scope, expiresAtMs: Int64) {
        self.tokenID = tokenID; self.path = path; self.scope = scope; self.expiresAtMs = expiresAtMs
    }
}

/// Optional: a store that several nodes share keeps tickets, so a ticket issued on one node is redeemed on any, once.
public protocol TicketLedger: Sendable {
    func storeTicket(digest: String, _ ticket: StoredTicket) async throws(StoreError)
    /// Removes the ticket and returns it if it had not expired at `nowMs`; nil when unknown, used or expired.
    func redeemTicket(digest: String, nowMs: Int64) async throws(StoreError) -> StoredTicket?
}
