import Foundation
import HTTPTypes
import HubCore
import HubProtocol

/// JSON shapes of the admin API (docs/api/admin.md). Keys are snake_case on the wire.
struct SlotDocument: Codable {
    struct Retention: Codable { var maxAgeS: Int64?; var maxBytes: Int64?; var maxRecords: Int64? }
    struct Limits: Codable { var maxMessageBytes: Int64?; var maxSubscribers: Int64? }
    struct Anonymous: Codable { var read: Bool?; var append: Bool? }
    var name: String
    var retention: Retention
    var limits: Limits
    var anonymous: Anonymous
    var createdAt: String?
    var headSeq: UInt64?
    var streams: Int64?
    var records: Int64?
    var bytes: Int64?

    init(_ info: SlotInfo) {
        let s = info.settings
        name = info.name.rawValue
        retention = Retention(maxAgeS: s.maxAgeSeconds, maxBytes: s.maxBytes, maxRecords: s.maxRecords)
        limits = Limits(maxMessageBytes: s.maxMessageBytes, maxSubscribers: s.maxSubscribers)
        anonymous = Anonymous(read: s.anonymousRead, append: s.anonymousAppend)
        createdAt = RFC3339.format(millisecondsSince1970: info.createdAtMs)
        headSeq = info.headSeq; streams = info.streams; records = info.records; bytes = info.bytes
    }
}

/// `POST /v1/admin/slots` and `PATCH /v1/admin/slots/{name}` bodies. Absent fields keep their value on PATCH.
struct SlotRequest: Decodable {
    var name: String?
    var retention: SlotDocument.Retention?
    var limits: SlotDocument.Limits?
    var anonymous: SlotDocument.Anonymous?

    func settings(updating base: SlotSettings = SlotSettings()) throws -> SlotSettings {
        var s = base
        if let r = retention {
            s.maxAgeSeconds = try Self.positive(r.maxAgeS, "retention.max_age_s")
            s.maxBytes = try Self.positive(r.maxBytes, "retention.max_bytes")
            s.maxRecords = try Self.positive(r.maxRecords, "retention.max_records")
        }
        if let l = limits {
            s.maxMessageBytes = try Self.positive(l.maxMessageBytes, "limits.max_message_bytes")
            s.maxSubscribers = try Self.positive(l.maxSubscribers, "limits.max_subscribers")
        }
        if let a = anonymous {
            if let read = a.read { s.anonymousRead = read }
            if let append = a.append { s.anonymousAppend = append }
        }
        return s
    }

    private static func positive(_ value: Int64?, _ field: String) throws -> Int64? {
        if let value, value <= 0 { throw HubProblem(status: .badRequest, code: "invalid-body", detail: "\(field) must be positive (or absent for no limit).") }
        return value
    }
}

struct TokenDocument: Codable {
    var id: String
    /// The secret: present only in the answer that created it.
    var token: String?
    var slot: String
    var scopes: [String]
    var prefix: String?
    var label: String
    var createdAt: String
    var expiresAt: String?
    var lastUsedAt: String?
    var lastUsedAddress: String?
    var revokedAt: String?
    var rotatedFrom: String?

    init(_ t: TokenRecord, secret: String? = nil) {
        id = t.id; token = secret; slot = t.slot?.rawValue ?? "*"; scopes = t.scopes.map(\.rawValue).sorted(); prefix = t.prefix; label = t.label
        createdAt = RFC3339.format(millisecondsSince1970: t.createdAtMs)
        expiresAt = t.expiresAtMs.map { RFC3339.format(millisecondsSince1970: $0) }
        lastUsedAt = t.lastUsedAtMs.map { RFC3339.format(millisecondsSince1970: $0) }
        lastUsedAddress = t.lastUsedAddress
        revokedAt = t.revokedAtMs.map { RFC3339.format(millisecondsSince1970: $0) }
        rotatedFrom = t.rotatedFrom
    }
}

/// `POST /v1/admin/tokens` body.
struct TokenRequest: Decodable {
    var slot: String
    var scopes: [String]
    var prefix: String?
    var label: String
    var expiresInS: Int64?
}

struct RotateRequest: Decodable {
    var overlapS: Int64?
}

struct StreamDocument: Codable {
    var path: String
    var contentType: String
    var nextOffset: String
    var records: Int64
    var bytes: Int64
    var closed: Bool
    var deleted: Bool
    var createdAt: String
    var forkedFrom: String?

    init(_ s: StreamSummary) {
        path = s.path.rawValue; contentType = s.contentType.raw; nextOffset = s.head.wire; records = s.records; bytes = s.bytes
        closed = s.closed; deleted = s.deleted; createdAt = RFC3339.format(millisecondsSince1970: s.createdAtMs); forkedFrom = s.forkedFrom
    }
}

struct AuditDocument: Codable {
    var id: Int64
    var at: String
    var actor: String
    var action: String
    var target: String
    var detail: String?

    init(_ e: AuditEntry) {
        id = e.id; at = RFC3339.format(millisecondsSince1970: e.atMs); actor = e.actor; action = e.action; target = e.target; detail = e.detail
    }
}

/// A list under a named key, so list answers can grow fields (paging) without breaking clients.
struct ListDocument<Item: Encodable>: Encodable {
    var items: [Item]
}

/// A durable consumer with its lag (`GET /v1/admin/consumers`).
struct ConsumerDocument: Encodable {
    var slot: String
    var name: String
    var stream: String?
    var ackedSeq: UInt64
    var headSeq: UInt64
    var lag: UInt64
    var ackWaitMs: Int64
    var maxInFlight: Int64
    var createdAt: String
    var updatedAt: String

    init(_ c: ConsumerState) {
        slot = c.slot.rawValue; name = c.name; stream = c.scope.streamPath?.rawValue; ackedSeq = c.ackedSeq; headSeq = c.headSeq; lag = c.lag
        ackWaitMs = c.ackWaitMs; maxInFlight = c.maxInFlight
        createdAt = RFC3339.format(millisecondsSince1970: c.createdAtMs); updatedAt = RFC3339.format(millisecondsSince1970: c.updatedAtMs)
    }
}
