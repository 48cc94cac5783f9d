import HTTPTypes
import HubAuth
import HubCore
import HubProtocol
import Hummingbird
import NIOCore

/// An error response: status, stable `code`, prose `detail` and any protocol headers. Rendered as RFC 9457
/// problem+json by `ProblemMiddleware`, the one place errors become responses.
public struct HubProblem: Error, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var detail: String?
    public var headers: HTTPFields
    public var protocolError: ProblemDocument.ProtocolErrorMember?

    public init(status: HTTPResponse.Status, code: String, detail: String? = nil, headers: HTTPFields = [:],
                protocolError: ProblemDocument.ProtocolErrorMember? = nil) {
        self.status = status; self.code = code; self.detail = detail; self.headers = headers; self.protocolError = protocolError
    }

    func response(instance: String) -> Response {
        let (headers, body) = rendered(instance: instance)
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }

    /// The headers and problem+json body of the response (the router's and the hot path's).
    func rendered(instance: String) -> (headers: HTTPFields, body: ByteBuffer) {
        var headers = headers
        headers[.contentType] = ProblemDocument.contentType
        return (headers, ByteBuffer(string: document(instance: instance).json))
    }

    /// The problem document alone, for answers inside a stream (an SSE `error` event, a WebSocket frame).
    func document(instance: String?) -> ProblemDocument {
        ProblemDocument(status: Int(status.code), title: status.reasonPhrase, code: code, detail: detail, instance: instance,
                        protocolError: protocolError)
    }
}

extension HubProblem {
    /// The only place a `StoreError` gets a status (Durable Streams §12).
    init(_ error: StoreError) {
        switch error {
        case .streamNotFound(let p): self.init(status: .notFound, code: "stream-not-found", detail: "No stream at '\(p)'.")
        case .streamGone(let p): self.init(status: .gone, code: "stream-gone", detail: "The stream at '\(p)' was deleted.")
        case .streamConflict(let p, let reason):
            self.init(status: .conflict, code: "stream-exists", detail: "Cannot create '\(p)': \(reason).")
        case .streamClosed(let head):
            self.init(status: .conflict, code: "stream-closed", detail: "The stream is closed; it accepts no more data.",
                      headers: [.streamClosed: "true", .streamNextOffset: head.wire])
        case .contentTypeMismatch(let expected):
            self.init(status: .conflict, code: "content-type-mismatch", detail: "This stream holds \(expected).")
        case .streamSeqRegression(let last):
            self.init(status: .conflict, code: "stream-seq-regression", detail: "Stream-Seq must sort after '\(last.prefix(64))'.")
        case .producerStaleEpoch(let current):
            self.init(status: .forbidden, code: "producer-stale-epoch", detail: "A newer producer epoch (\(current)) is active.",
                      headers: [.producerEpoch: String(current)])
        case .producerEpochSeqNotZero:
            self.init(status: .badRequest, code: "producer-epoch-seq", detail: "A new producer epoch must start at Producer-Seq 0.")
        case .producerSeqGap(let expected, let received):
            self.init(status: .conflict, code: "producer-seq-gap", detail: "Expected Producer-Seq \(expected), got \(received).",
                      headers: [.producerExpectedSeq: String(expected), .producerReceivedSeq: String(received)])
        case .forkSourceNotFound(let p): self.init(status: .notFound, code: "fork-source-not-found", detail: "No stream at '\(p)' to fork.")
        case .forkSourceGone(let p): self.init(status: .conflict, code: "fork-source-gone", detail: "The stream at '\(p)' was deleted.")
        case .invalidFork(let reason): self.init(status: .badRequest, code: "invalid-fork", detail: reason)
        case .offsetOutOfRange(let o):
            self.init(status: .badRequest, code: "invalid-offset", detail: "Offset \(o.wire) is past this stream's tail.")
        case .belowRetention(let floor):
            let cursor = switch floor {
            case .offset(let offset): offset.wire
            case .seq(let seq): String(seq)
            }
            self.init(status: .gone, code: "below-retention",
                      detail: "Records up to \(cursor) were removed by the slot's retention; re-read from the oldest retained record.",
                      headers: [.retentionFloor: cursor])
        case .seqOutOfRange(let requested, let head):
            self.init(status: .badRequest, code: "invalid-since", detail: "since=\(requested) is past the slot's last seq (\(head)).")
        case .consumerConflict(let name, let existing):
            self.init(status: .conflict, code: "consumer-conflict", detail: "Consumer '\(name.prefix(64))' already follows \(existing).")
        case .consumerNotFound(let name): self.init(status: .notFound, code: "consumer-not-found", detail: "No consumer named '\(name.prefix(64))'.")
        case .payloadTooLarge(let limit): self.init(status: .contentTooLarge, code: "payload-too-large", detail: "Limit: \(limit) bytes.")
        case .slotNotFound(let s): self.init(status: .notFound, code: "slot-not-found", detail: "No slot named '\(s)'.")
        case .slotExists(let s): self.init(status: .conflict, code: "slot-exists", detail: "A slot named '\(s)' exists.")
        case .capacityExhausted(let reason):
            self.init(status: .init(code: 507, reasonPhrase: "Insufficient Storage"), code: "capacity-exhausted", detail: reason)
        case .backupFailed(let reason): self.init(status: .unprocessableContent, code: "backup-failed", detail: reason)
        case .tokenNotFound(let id): self.init(status: .notFound, code: "token-not-found", detail: "No usable token with id '\(id.prefix(64))'.")
        case .schemaTooNew, .backend: self.init(status: .internalServerError, code: "internal")
        case .unavailable: self.init(status: .serviceUnavailable, code: "store-unavailable", headers: [.retryAfter: "1"])
        }
    }

    /// 401 for credentials that are missing or no good, 403 for good ones that do not allow this (RFC 6750 §3).
    init(_ error: AuthError) {
        let invalidToken: HTTPFields = [.wwwAuthenticate: #"Bearer realm="eventhub", error="invalid_token""#]
        switch error {
        case .missingCredentials:
            self.init(status: .unauthorized, code: "unauthorized", detail: "This needs a bearer token: Authorization: Bearer hub_…",
                      headers: [.wwwAuthenticate: #"Bearer realm="eventhub""#])
        case .malformedToken:
            self.init(status: .unauthorized, code: "invalid-token", detail: "The Authorization header is not a Bearer hub_… token.", headers: invalidToken)
        case .invalidToken:
            self.init(status: .unauthorized, code: "invalid-token", detail: "The token is unknown, expired or revoked.", headers: invalidToken)
        case .tokenInQuery:
            self.init(status: .unauthorized, code: "token-in-query",
                      detail: "Tokens in query strings leak into logs; send Authorization: Bearer, or exchange the token for a ticket.",
                      headers: invalidToken)
        case .invalidTicket:
            self.init(status: .unauthorized, code: "invalid-ticket", detail: "The ticket is unknown, used, expired, or for another path.",
                      headers: invalidToken)
        case .insufficientScope(let scope):
            self.init(status: .forbidden, code: "insufficient-scope", detail: "The token lacks the '\(scope.rawValue)' scope.",
                      headers: [.wwwAuthenticate: #"Bearer realm="eventhub", error="insufficient_scope", scope="\#(scope.rawValue)""#])
        case .outOfReach:
            self.init(status: .forbidden, code: "out-of-reach", detail: "The token is limited to another slot or path.",
                      headers: [.wwwAuthenticate: #"Bearer realm="eventhub", error="insufficient_scope""#])
        case .rateLimited(let seconds):
            self.init(status: .tooManyRequests, code: "rate-limited", detail: "Too many requests; retry in \(seconds) s.",
                      headers: [.retryAfter: String(seconds)])
        }
    }

    /// A stream path outside the grammar, in an admin or ticket request body.
    static func invalidPath(_ raw: String) -> HubProblem {
        HubProblem(ProtocolError.invalidStreamPath(raw))
    }

    /// The subscription APIs' refusals (§11): the protocol's status and `error.code`, and a problem `code` of our own.
    init(_ error: SubscriptionError) {
        let status: HTTPResponse.Status = switch error {
        case .invalidRequest, .webhookURLRejected: .badRequest
        case .notFound: .notFound
        case .alreadyExists, .fenced, .alreadyClaimed, .noPendingWork, .invalidOffset: .conflict
        case .tokenInvalid, .tokenExpired: .unauthorized
        }
        var members: [String: String] = [:]
        if case .alreadyClaimed(let holder, let generation) = error {
            members = ["current_holder": JSONText.quote(holder), "generation": String(generation)]
        }
        let slug = String(error.code.lowercased().map { $0 == "_" ? "-" : $0 })
        self.init(status: status, code: slug.hasPrefix("subscription") ? slug : "subscription-" + slug,
                  detail: error.message, protocolError: .init(code: error.code, message: error.message, members: members))
    }

    init(_ error: ProtocolError) {
        self.init(status: .badRequest, code: error.code, detail: error.detail)
    }
}
