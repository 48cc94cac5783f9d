import HTTPTypes
import HubProtocol

extension HTTPField.Name {
    static let streamNextOffset = Self(DSHeader.nextOffset)!
    static let streamUpToDate = Self(DSHeader.upToDate)!
    static let streamCursor = Self(DSHeader.cursor)!
    static let streamClosed = Self(DSHeader.closed)!
    static let streamTTL = Self(DSHeader.ttl)!
    static let streamExpiresAt = Self(DSHeader.expiresAt)!
    static let producerEpoch = Self(DSHeader.producerEpoch)!
    static let producerSeq = Self(DSHeader.producerSeq)!
    static let producerExpectedSeq = Self(DSHeader.producerExpectedSeq)!
    static let producerReceivedSeq = Self(DSHeader.producerReceivedSeq)!
    static let streamSSEDataEncoding = Self(DSHeader.sseDataEncoding)!
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
    static let crossOriginResourcePolicy = Self("Cross-Origin-Resource-Policy")!
    static let xAccelBuffering = Self("X-Accel-Buffering")!
    static let accessControlAllowOrigin = Self("Access-Control-Allow-Origin")!
    static let accessControlAllowMethods = Self("Access-Control-Allow-Methods")!
    static let accessControlAllowHeaders = Self("Access-Control-Allow-Headers")!
    static let accessControlExposeHeaders = Self("Access-Control-Expose-Headers")!
    static let accessControlMaxAge = Self("Access-Control-Max-Age")!
    /// On a 410 below-retention answer: the oldest cursor still served.
    static let retentionFloor = Self("Hub-Retention-Floor")!
    static let eventType = Self("Event-Type")!
    static let idempotencyKey = Self("Idempotency-Key")!
    static let lastEventID = Self("Last-Event-ID")!
}

extension HTTPFields {
    /// The names the protocol parsers ask for, made once: `HTTPField.Name(_:)` checks and lowercases its text, and an
    /// append asks for five of them.
    private static let protocolNames: [String: HTTPField.Name] = Dictionary(uniqueKeysWithValues: [
        DSHeader.nextOffset, DSHeader.upToDate, DSHeader.cursor, DSHeader.closed, DSHeader.seq, DSHeader.ttl, DSHeader.expiresAt,
        DSHeader.forkedFrom, DSHeader.forkOffset, DSHeader.forkSubOffset, DSHeader.producerID, DSHeader.producerEpoch,
        DSHeader.producerSeq, DSHeader.producerExpectedSeq, DSHeader.producerReceivedSeq, DSHeader.sseDataEncoding,
    ].map { ($0, HTTPField.Name($0)!) })

    /// A lookup closure for the pure header parsers in HubProtocol. Repeated headers are joined with ", ".
    func lookup() -> (String) -> String? {
        { name in
            guard let field = Self.protocolNames[name] ?? HTTPField.Name(name) else { return nil }
            return self.value(field)
        }
    }

    /// What the subscript `self[name]` returns (repeated fields joined with ", ", or "; " for cookies), without its
    /// lazy join for the usual single field: that join makes a new string, which for a value longer than 15 bytes
    /// (`application/json`, any bearer token) is an allocation and a copy — 2 % of the server's CPU in a profile of
    /// 64 publishers, for the Content-Type alone.
    func value(_ name: HTTPField.Name) -> String? {
        var values = self[values: name].makeIterator()
        guard let first = values.next() else { return nil }
        return values.next() == nil ? first : self[name]
    }
}
