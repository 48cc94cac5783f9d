import HubCore

/// Durable Streams request headers, parsed strictly from a header lookup (`name -> value`), so the rules are
/// testable without an HTTP server. Anything malformed is a `ProtocolError` (400).
public enum DSRequestHeaders {
    public struct Create: Equatable, Sendable {
        public var expiry: StreamExpiry?
        public var closed: Bool
        /// The `Stream-Forked-From` value as sent (a path such as `/v1/stream/src`); the router resolves it.
        public var forkSource: String?
        public var forkOffset: Offset?
        public var forkSubOffset: UInt64
    }

    public struct Append: Equatable, Sendable {
        public var closed: Bool
        public var streamSeq: String?
        public var producer: ProducerClaim?
    }

    /// PUT (§2, §8): TTL xor Expires-At, `Stream-Closed`, and the fork headers with their dependencies.
    public static func create(_ header: (String) -> String?) throws(ProtocolError) -> Create {
        let ttl = header(DSHeader.ttl)
        let expiresAt = header(DSHeader.expiresAt)
        var expiry: StreamExpiry?
        switch (ttl, expiresAt) {
        case (.some, .some): throw .conflictingHeaders(DSHeader.ttl, DSHeader.expiresAt)
        case (let ttl?, nil): expiry = .ttl(seconds: try HeaderValues.ttlSeconds(ttl))
        case (nil, let text?):
            guard let ms = RFC3339.parse(text) else {
                throw .invalidHeader(name: DSHeader.expiresAt, reason: "must be an RFC 3339 timestamp such as 2026-01-02T03:04:05Z")
            }
            expiry = .at(millisecondsSince1970: ms, text: text)
        case (nil, nil): break
        }
        let source = header(DSHeader.forkedFrom)
        var forkOffset: Offset?
        if let value = header(DSHeader.forkOffset) {
            guard source != nil else { throw .invalidHeader(name: DSHeader.forkOffset, reason: "needs Stream-Forked-From") }
            guard let offset = Offset(wire: value) else { throw .invalidHeader(name: DSHeader.forkOffset, reason: "is not an offset this server issued") }
            forkOffset = offset
        }
        var subOffset: UInt64 = 0
        if let value = header(DSHeader.forkSubOffset) {
            subOffset = try HeaderValues.subOffset(value)
            guard source != nil else { throw .invalidHeader(name: DSHeader.forkSubOffset, reason: "needs Stream-Forked-From") }
            guard subOffset == 0 || forkOffset != nil else {
                throw .invalidHeader(name: DSHeader.forkSubOffset, reason: "above 0 needs Stream-Fork-Offset")
            }
        }
        if let source, source.isEmpty { throw .invalidHeader(name: DSHeader.forkedFrom, reason: "is empty") }
        return Create(expiry: expiry, closed: HeaderValues.isTrue(header(DSHeader.closed)), forkSource: source,
                      forkOffset: forkOffset, forkSubOffset: subOffset)
    }

    /// POST (§3–§5): `Stream-Closed`, `Stream-Seq`, and the producer triple (all three or none).
    public static func append(_ header: (String) -> String?) throws(ProtocolError) -> Append {
        let id = header(DSHeader.producerID), epoch = header(DSHeader.producerEpoch), seq = header(DSHeader.producerSeq)
        var producer: ProducerClaim?
        switch (id, epoch, seq) {
        case (nil, nil, nil): break
        case (let id?, let epoch?, let seq?):
            guard !id.isEmpty, id.utf8.count <= 256 else { throw .invalidHeader(name: DSHeader.producerID, reason: "must be 1 to 256 bytes") }
            producer = ProducerClaim(id: id, epoch: try HeaderValues.producerNumber(epoch, header: DSHeader.producerEpoch),
                                     seq: try HeaderValues.producerNumber(seq, header: DSHeader.producerSeq))
        default:
            throw .invalidHeader(name: DSHeader.producerID, reason: "Producer-Id, Producer-Epoch and Producer-Seq go together")
        }
        let streamSeq = header(DSHeader.seq)
        if let streamSeq, streamSeq.isEmpty || streamSeq.utf8.count > 256 {
            throw .invalidHeader(name: DSHeader.seq, reason: "must be 1 to 256 bytes")
        }
        return Append(closed: HeaderValues.isTrue(header(DSHeader.closed)), streamSeq: streamSeq, producer: producer)
    }
}
