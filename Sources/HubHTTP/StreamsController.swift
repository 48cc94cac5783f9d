import Foundation
import HTTPTypes
import HubCore
import HubProtocol
import Hummingbird
import NIOCore

/// The Durable Streams protocol under `/v1/stream/{path}` (docs/api/streams.md). Handlers parse the request with
/// HubProtocol, call the store, and set protocol headers; errors propagate to `ProblemMiddleware`.
struct StreamsController: Sendable {
    static let prefix = "/v1/stream/"
    /// The path segment reserved for the protocol's control APIs under any stream root (§11): no stream path holds it.
    static let reservedSegment = "__ds"

    let store: any StreamStore
    let reads: StreamReads
    let limits: HTTPLimits
    let auth: Authenticator
    let metrics: HubMetrics

    /// Methods the stream routes answer; anything else is a 405 with `Allow`.
    static let allowedMethods: Set<HTTPRequest.Method> = [.put, .post, .get, .head, .delete, .options]

    func addRoutes(to router: Router<HubRequestContext>) {
        router.put("/v1/stream/**", use: create)
        router.post("/v1/stream/**", use: append)
        router.get("/v1/stream/**", use: read)
        router.head("/v1/stream/**", use: head)
        router.delete("/v1/stream/**", use: delete)
    }

    // MARK: PUT

    @Sendable func create(_ request: Request, context: HubRequestContext) async throws -> Response {
        let path = try Self.streamPath(request)
        try await context.authorize(.create, on: path, using: auth)
        let headers = try DSRequestHeaders.create(request.headers.lookup())
        let requestedType = try Self.contentType(request)
        let fork = try headers.forkSource.map { ForkPoint(source: try Self.forkSource($0), offset: headers.forkOffset, subOffset: headers.forkSubOffset) }
        if let fork { try await context.authorize(.read, on: fork.source, using: auth) }
        let body = try await request.body.collect(upTo: limits.maxBodyBytes)
        var messages: [NewMessage] = []
        if body.readableBytes > 0 {
            var type = requestedType ?? .octetStream
            if requestedType == nil, let fork { type = try await forkSourceType(fork.source) }
            messages = try Self.messages(body, type: type, allowEmptyArray: true)
        }
        let outcome = try await store.create(path, CreateRequest(
            contentType: requestedType, expiry: headers.expiry, closed: headers.closed, fork: fork, messages: messages,
            createsSlot: auth.configuration.mode == .open))
        if outcome.created { metrics.recordAppend(messages) }
        var fields: HTTPFields = [.contentType: outcome.info.contentType.raw, .streamNextOffset: outcome.info.head.wire]
        if outcome.info.closed { fields[.streamClosed] = "true" }
        if outcome.created { fields[.location] = Self.location(of: path, request: request) }
        return Response(status: outcome.created ? .created : .ok, headers: fields)
    }

    private func forkSourceType(_ source: StreamPath) async throws -> ContentType {
        do {
            return try await store.info(source).contentType
        } catch .streamNotFound(let p) {
            throw StoreError.forkSourceNotFound(p)
        } catch .streamGone(let p) {
            throw StoreError.forkSourceGone(p)
        }
    }

    // MARK: POST

    @Sendable func append(_ request: Request, context: HubRequestContext) async throws -> Response {
        let path = try Self.streamPath(request)
        try await context.authorize(.append, on: path, using: auth)
        let body = try await request.body.collect(upTo: limits.maxBodyBytes)
        let append = try StreamAppend.request(request.headers, body: body)
        let outcome = try await store.append(path, append)
        let answer = StreamAppend.answer(outcome, to: append, metrics: metrics)
        return Response(status: answer.status, headers: answer.fields)
    }

    // MARK: GET / HEAD / DELETE

    @Sendable func read(_ request: Request, context: HubRequestContext) async throws -> Response {
        let path = try Self.streamPath(request)
        try await context.authorize(.read, on: path, using: auth)
        let query = request.uri.queryParameters
        let live = query[values: "live"]
        guard live.count <= 1 else { throw ProtocolError.repeatedParameter("live") }
        let cursor = query[values: "cursor"].first.map(String.init)
        switch live.first {
        case nil:
            return try await reads.catchUp(path, start: try ReadStart.parse(query[values: "offset"].map(String.init), required: false),
                                           ifNoneMatch: request.headers[.ifNoneMatch])
        case "long-poll":
            return try await reads.longPoll(path, start: try ReadStart.parse(query[values: "offset"].map(String.init), required: true),
                                            clientCursor: cursor, channel: context.channel)
        case "sse":
            return try await reads.sse(path, start: try ReadStart.parse(query[values: "offset"].map(String.init), required: true),
                                       clientCursor: cursor, request: request, channel: context.channel)
        case let other?:
            throw ProtocolError.invalidParameter(name: "live", value: String(other))
        }
    }

    @Sendable func head(_ request: Request, context: HubRequestContext) async throws -> Response {
        let path = try Self.streamPath(request)
        try await context.authorize(.read, on: path, using: auth)
        let info = try await store.info(path)
        var fields: HTTPFields = [.contentType: info.contentType.raw, .streamNextOffset: info.head.wire, .cacheControl: "no-store"]
        if info.closed { fields[.streamClosed] = "true" }
        switch info.expiry {
        case .ttl(let seconds): fields[.streamTTL] = String(seconds)
        case .at(let ms, _): fields[.streamExpiresAt] = RFC3339.format(millisecondsSince1970: ms)
        case nil: break
        }
        return Response(status: .ok, headers: fields)
    }

    @Sendable func delete(_ request: Request, context: HubRequestContext) async throws -> Response {
        let path = try Self.streamPath(request)
        try await context.authorize(.delete, on: path, using: auth)
        try await store.delete(path)
        return Response(status: .noContent)
    }

    // MARK: Parsing

    /// The stream path after `/v1/stream/`, percent-decoded and validated. A `__ds` segment is reserved (§11).
    static func streamPath(_ request: Request) throws -> StreamPath {
        try streamPath(rawPath: request.uri.path)
    }

    /// `streamPath(_:)` from the request target's path (no query), for the hot path.
    static func streamPath(rawPath: some StringProtocol) throws -> StreamPath {
        let target = String(rawPath)
        var decoded = String(target.utf8.dropFirst(prefix.utf8.count)) ?? ""
        if decoded.utf8.contains(UInt8(ascii: "%")) {
            // An encoded slash would silently change which segments the path has: refuse it rather than guess.
            guard !decoded.lowercased().contains("%2f") else { throw ProtocolError.invalidStreamPath(decoded) }
            decoded = decoded.removingPercentEncoding ?? ""
        }
        if holdsReservedSegment(decoded) {
            throw HubProblem(status: .notFound, code: "reserved-path", detail: "A __ds path segment is reserved for the protocol's control APIs.")
        }
        guard let path = StreamPath(decoded) else { throw ProtocolError.invalidStreamPath(decoded) }
        return path
    }

    /// Whether a `/`-separated path has a segment that is exactly `__ds` (one pass over the bytes: this runs on every
    /// append on the hot path).
    static func holdsReservedSegment(_ path: String) -> Bool {
        var path = path
        return path.withUTF8 { holdsReservedSegment($0) }
    }

    private static func holdsReservedSegment(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var start = 0
        while bytes.count - start >= 4 {
            if bytes[start] == 0x5F, bytes[start + 1] == 0x5F, bytes[start + 2] == 0x64, bytes[start + 3] == 0x73,
               bytes.count - start == 4 || bytes[start + 4] == 0x2F {
                return true
            }
            guard let slash = bytes[start...].firstIndex(of: 0x2F) else { return false }
            start = slash + 1
        }
        return false
    }

    /// `Stream-Forked-From` names a stream on this server: `/v1/stream/src`, a full URL to it, or the bare path.
    static func forkSource(_ value: String) throws -> StreamPath {
        var text = Substring(value)
        if let scheme = text.range(of: "://") {
            text = text[scheme.upperBound...]
            text = text.firstIndex(of: "/").map { text[$0...] } ?? ""
        }
        if let query = text.firstIndex(of: "?") { text = text[..<query] }
        if text.hasPrefix(prefix) { text = text.dropFirst(prefix.count) }
        let decoded = text.contains("%") ? (String(text).removingPercentEncoding ?? "") : String(text)
        guard let path = StreamPath(decoded) else {
            throw HubProblem(status: .notFound, code: "fork-source-not-found", detail: "No stream at '\(value.prefix(80))' to fork.")
        }
        return path
    }

    static func contentType(_ request: Request) throws -> ContentType? {
        try contentType(request.headers)
    }

    static func contentType(_ fields: HTTPFields) throws -> ContentType? {
        guard let raw = fields.value(.contentType), !raw.isEmpty else { return nil }
        guard let type = ContentType(validating: raw) else {
            throw ProtocolError.invalidHeader(name: "Content-Type", reason: "must be a media type such as text/plain")
        }
        return type
    }

    /// A body as stored messages: flattened one level for JSON streams, whole otherwise.
    static func messages(_ body: ByteBuffer, type: ContentType, allowEmptyArray: Bool) throws -> [NewMessage] {
        guard type.isJSON else { return [NewMessage(body: body)] }
        return try JSONMessages.flatten(body, allowEmptyArray: allowEmptyArray) { NewMessage(body: $0) }
    }

    static func location(of path: StreamPath, request: Request) -> String {
        let relative = prefix + path.rawValue
        guard let host = request.head.authority else { return relative }
        return "http://\(host)\(relative)"
    }
}
