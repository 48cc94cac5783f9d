import HTTPTypes
import HubCore
import HubProtocol
import NIOCore

/// The Durable Streams append (`POST /v1/stream/{path}`, §3–§5) between the wire and the store: which request a
/// `POST` makes, and which answer an outcome gets. Both the router's handler and the hot path call these, so the
/// protocol's append rules exist once.
enum StreamAppend {
    /// The store request of a `POST`: its headers parsed strictly, its body split into messages (flattened one level
    /// for JSON). An empty body is only allowed to close the stream; a body needs a content type.
    static func request(_ fields: HTTPFields, body: ByteBuffer) throws -> AppendRequest {
        let headers = try DSRequestHeaders.append(fields.lookup())
        var contentType: ContentType?
        var messages: [NewMessage] = []
        if body.readableBytes == 0 {
            guard headers.closed else { throw ProtocolError.emptyBody }
        } else {
            guard let type = try StreamsController.contentType(fields) else { throw ProtocolError.missingContentType }
            contentType = type
            messages = try StreamsController.messages(body, type: type, allowEmptyArray: false)
        }
        return AppendRequest(contentType: contentType, messages: messages, close: headers.closed, streamSeq: headers.streamSeq,
                             producer: headers.producer)
    }

    /// The status and protocol headers that answer an append's outcome; counts what was stored.
    static func answer(_ outcome: AppendOutcome, to request: AppendRequest, metrics: HubMetrics) -> (status: HTTPResponse.Status, fields: HTTPFields) {
        var fields: HTTPFields = [.streamNextOffset: outcome.info.head.wire]
        if outcome.info.closed { fields[.streamClosed] = "true" }
        switch outcome {
        case .appended(_, producer: nil):
            metrics.recordAppend(request.messages)
            return (.noContent, fields)
        case .appended(_, producer: let ack?):
            metrics.recordAppend(request.messages)
            fields[.producerEpoch] = String(ack.epoch)
            fields[.producerSeq] = String(ack.seq)
            // 200 when the producer's data was stored; a close-only request stored nothing (§5).
            return (request.messages.isEmpty ? .noContent : .ok, fields)
        case .duplicate(_, producer: let ack):
            fields[.producerEpoch] = String(ack.epoch)
            fields[.producerSeq] = String(ack.seq)
            return (.noContent, fields)
        }
    }
}
