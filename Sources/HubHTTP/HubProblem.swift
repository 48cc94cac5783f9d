import HTTPTypes
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

    public init(status: HTTPResponse.Status, code: String, detail: String? = nil, headers: HTTPFields = [:]) {
        self.status = status; self.code = code; self.detail = detail; self.headers = headers
    }

    func response(instance: String) -> Response {
        var headers = headers
        headers[.contentType] = ProblemDocument.contentType
        let document = ProblemDocument(status: Int(status.code), title: status.reasonPhrase, code: code, detail: detail, instance: instance)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: document.json)))
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
        case .payloadTooLarge(let limit): self.init(status: .contentTooLarge, code: "payload-too-large", detail: "Limit: \(limit) bytes.")
        case .schemaTooNew, .backend: self.init(status: .internalServerError, code: "internal")
        case .unavailable: self.init(status: .serviceUnavailable, code: "store-unavailable", headers: [.retryAfter: "1"])
        }
    }

    init(_ error: ProtocolError) {
        self.init(status: .badRequest, code: error.code, detail: error.detail)
    }
}
