import Foundation
import HTTPTypes
import HubAuth
import HubCore
import HubProtocol
import Hummingbird
import NIOCore

/// A request under a stream root's reserved `__ds` segment (§11): `/v1/stream/{root/}__ds/…`.
struct SubscriptionRoute: Sendable, Equatable {
    enum Action: Sendable, Equatable { case subscription, streams, stream(String), callback, claim, ack, release, jwks }
    let namespace: String
    /// nil for `jwks.json`.
    let key: SubscriptionKey?
    let action: Action

    /// nil when `rawPath` is not a control path; throws 404 for a control path that names nothing.
    static func parse(rawPath: String) throws -> SubscriptionRoute? {
        guard rawPath.hasPrefix(StreamsController.prefix) else { return nil }
        let segments = rawPath.dropFirst(StreamsController.prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard let control = segments.firstIndex(of: Substring(StreamsController.reservedSegment)) else { return nil }
        let notFound = HubProblem(status: .notFound, code: "not-found", detail: "No subscription API at this path (docs/api/subscriptions.md).")
        guard let root = decode(segments[..<control]), root.isEmpty || StreamPath(root) != nil else { throw notFound }
        let rest = Array(segments[(control + 1)...])
        if rest == ["jwks.json"] { return SubscriptionRoute(namespace: root, key: nil, action: .jwks) }
        guard rest.count >= 2, rest[0] == "subscriptions", let id = decode(rest[1...1]), let key = SubscriptionKey(namespace: root, id: id) else {
            throw notFound
        }
        let action: Action
        switch rest.count {
        case 2: action = .subscription
        case 3 where rest[2] == "streams": action = .streams
        case 3 where rest[2] == "callback": action = .callback
        case 3 where rest[2] == "claim": action = .claim
        case 3 where rest[2] == "ack": action = .ack
        case 3 where rest[2] == "release": action = .release
        case 4... where rest[2] == "streams":
            guard let path = decode(rest[3...]), !path.isEmpty else { throw notFound }
            action = .stream(path)
        default: throw notFound
        }
        return SubscriptionRoute(namespace: root, key: key, action: action)
    }

    /// Percent-decoded segments joined by `/`; nil when one decodes to something holding a `/` (or fails to decode).
    private static func decode(_ segments: ArraySlice<Substring>) -> String? {
        var out: [String] = []
        for segment in segments {
            guard let decoded = segment.contains("%") ? String(segment).removingPercentEncoding : String(segment), !decoded.contains("/") else { return nil }
            out.append(decoded)
        }
        return out.joined(separator: "/")
    }

    /// Callback, ack and release authenticate with the wake's callback token, not a hub token (`AuthMiddleware`).
    static func authenticatesItself(rawPath: String) -> Bool {
        guard rawPath.contains("/\(StreamsController.reservedSegment)/"), let route = try? parse(rawPath: rawPath) else { return false }
        return [.callback, .ack, .release].contains(route.action)
    }
}

/// The reserved subscription APIs (§11, docs/api/subscriptions.md). Management and claims need a hub token with the
/// `consume` scope over every stream the subscription covers (and `append` on a pull-wake stream); callbacks, acks and
/// releases carry the wake's callback token instead. Handlers parse and authorize; `SubscriptionService` does the work.
struct SubscriptionsController: Sendable {
    let service: SubscriptionService
    /// Subscription bodies are small documents: a bound well below stream bodies.
    static let maxBodyBytes = 256 * 1024

    func handle(_ route: SubscriptionRoute, _ request: Request, context: HubRequestContext) async throws -> Response {
        let method = request.method
        switch (route.action, method) {
        case (.jwks, .get), (.jwks, .head):
            let credentials = try await service.credentials()
            return json(.ok, credentials.jwks, contentType: "application/jwk-set+json")
        case (.subscription, .put): return try await create(route.key!, request, context: context)
        case (.subscription, .get), (.subscription, .head):
            let subscription = try await service.subscription(route.key!)
            try authorize(subscription.config, route.key!, context)
            return json(.ok, SubscriptionDocuments.subscription(subscription))
        case (.subscription, .delete):
            if let subscription = try? await service.subscription(route.key!) {
                try authorize(subscription.config, route.key!, context)
                try await service.delete(route.key!)
            } else {
                try requireGrant(context)  // deleting what is not there is idempotent, but not anonymous
            }
            return Response(status: .noContent)
        case (.streams, .post):
            let key = route.key!
            try authorize(try await service.subscription(key).config, key, context)
            let body = try await Self.body(request)
            guard let list = body["streams"]?.array, !list.isEmpty, list.count <= SubscriptionConfig.maxStreams else {
                throw SubscriptionError.invalidRequest("streams must be a non-empty array of stream paths.")
            }
            let paths = try list.map { value throws(SubscriptionError) in try Self.relativePath(value.string, in: key, field: "streams") }
            let grant = try requireGrant(context)
            for path in paths { try grant.authorize(.consume, on: key.absolute(path)!) }
            try await service.addStreams(key, paths)
            return Response(status: .noContent)
        case (.stream(let path), .delete):
            let key = route.key!
            try authorize(try await service.subscription(key).config, key, context)
            try await service.removeStream(key, Self.normalized(path))
            return Response(status: .noContent)
        case (.claim, .post):
            let key = route.key!
            try authorize(try await service.subscription(key).config, key, context)
            let body = try await Self.body(request)
            guard let worker = body["worker"]?.string, !worker.isEmpty, worker.utf8.count <= 200 else {
                throw SubscriptionError.invalidRequest("worker must be a non-empty string of at most 200 bytes.")
            }
            let claimed = try await service.claim(key, worker: worker)
            return json(.ok, SubscriptionDocuments.claim(claimed.0, token: claimed.token, streams: claimed.streams))
        case (.callback, .post):
            let (token, progress) = try await Self.progress(request)
            let nextWake = try await service.callback(route.key!, token: token, progress)
            return json(.ok, SubscriptionDocuments.progress(nextWake: nextWake))
        case (.ack, .post):
            let (token, progress) = try await Self.progress(request)
            let nextWake = try await service.ack(route.key!, token: token, progress)
            return json(.ok, SubscriptionDocuments.progress(nextWake: nextWake))
        case (.release, .post):
            let (token, progress) = try await Self.progress(request)
            try await service.release(route.key!, token: token, progress)
            return Response(status: .noContent)
        case (.jwks, _):
            throw Self.methodNotAllowed("GET, HEAD")
        case (.subscription, _):
            throw Self.methodNotAllowed("GET, HEAD, PUT, DELETE")
        case (.stream, _):
            throw Self.methodNotAllowed("DELETE")
        default:
            throw Self.methodNotAllowed("POST")
        }
    }

    // MARK: PUT

    private func create(_ key: SubscriptionKey, _ request: Request, context: HubRequestContext) async throws -> Response {
        let config = try Self.config(try await Self.body(request), key: key)
        try authorize(config, key, context)
        if let url = config.webhookURL { try service.settings.webhookURLs.check(url) }
        let scheme = request.head.scheme ?? "http"
        let base = "\(scheme)://\(request.head.authority ?? "localhost")"
        let (subscription, created) = try await service.createOrConfirm(key, config, callbackBase: base)
        return json(created ? .created : .ok, SubscriptionDocuments.subscription(subscription))
    }

    /// The registration in a PUT body, checked field by field (§11).
    static func config(_ body: JSONValue, key: SubscriptionKey) throws(SubscriptionError) -> SubscriptionConfig {
        guard case .object = body else { throw .invalidRequest("The body must be a JSON object.") }
        let kind: SubscriptionKind
        switch body["type"]?.string {
        case "webhook": kind = .webhook
        case "pull-wake": kind = .pullWake
        default: throw .invalidRequest("type must be \"webhook\" or \"pull-wake\".")
        }
        var pattern: String?
        if let value = body["pattern"], !value.isNull {
            guard let text = value.string else { throw .invalidRequest("pattern must be a string.") }
            let normalized = normalized(text)
            if !normalized.isEmpty {
                guard SubscriptionGlob.isValid(normalized) else {
                    throw .invalidRequest("pattern must be a stream path whose segments may be * (one segment) or ** (any number).")
                }
                pattern = normalized
            }
        }
        var streams: [String] = []
        if let value = body["streams"], !value.isNull {
            guard let list = value.array, list.count <= SubscriptionConfig.maxStreams else {
                throw .invalidRequest("streams must be an array of at most \(SubscriptionConfig.maxStreams) stream paths.")
            }
            streams = try list.map { item throws(SubscriptionError) in try relativePath(item.string, in: key, field: "streams") }
        }
        guard pattern != nil || !streams.isEmpty else { throw .invalidRequest("At least one of pattern or streams is required.") }
        var leaseTTL = SubscriptionConfig.defaultLeaseTTLMs
        if let value = body["lease_ttl_ms"], !value.isNull {
            guard let ms = value.int, SubscriptionConfig.leaseTTLRange.contains(ms) else {
                throw .invalidRequest("lease_ttl_ms must be an integer from 1000 to 600000.")
            }
            leaseTTL = ms
        }
        var webhookURL: String?
        if kind == .webhook {
            guard let url = body["webhook"]?["url"]?.string, !url.isEmpty else { throw .invalidRequest("webhook subscriptions require webhook.url.") }
            webhookURL = url
        }
        var wakeStream: String?
        if kind == .pullWake {
            guard let wake = body["wake_stream"]?.string, !wake.isEmpty else { throw .invalidRequest("pull-wake subscriptions require wake_stream.") }
            wakeStream = try relativePath(wake, in: key, field: "wake_stream")
        }
        var description: String?
        if let value = body["description"], !value.isNull {
            guard let text = value.string, text.utf8.count <= SubscriptionConfig.maxDescriptionBytes else {
                throw .invalidRequest("description must be a string of at most \(SubscriptionConfig.maxDescriptionBytes) bytes.")
            }
            description = text
        }
        return SubscriptionConfig(kind: kind, pattern: pattern, streams: streams, webhookURL: webhookURL, wakeStream: wakeStream,
                                  leaseTTLMs: leaseTTL, description: description)
    }

    // MARK: Parsing

    /// Leading and trailing slashes do not change a root-relative path.
    static func normalized(_ path: String) -> String {
        String(path.drop { $0 == "/" }.reversed().drop { $0 == "/" }.reversed())
    }

    private static func relativePath(_ text: String?, in key: SubscriptionKey, field: String) throws(SubscriptionError) -> String {
        guard let text else { throw .invalidRequest("\(field) must hold stream paths (strings).") }
        let path = normalized(text)
        guard !path.isEmpty, key.absolute(path) != nil else { throw .invalidRequest("'\(text.prefix(100))' in \(field) is not a valid stream path.") }
        return path
    }

    private static func body(_ request: Request) async throws -> JSONValue {
        var request = request
        let bytes = try await request.collectBody(upTo: maxBodyBytes)
        guard bytes.readableBytes > 0 else { return .object([:]) }
        do {
            return try JSONValue.parse(Array(bytes.readableBytesView))
        } catch {
            throw SubscriptionError.invalidRequest("The body is not valid JSON.")
        }
    }

    /// The callback token and the body of a callback, ack or release.
    private static func progress(_ request: Request) async throws -> (token: String, SubscriptionProgress) {
        guard let header = request.headers[.authorization], let token = BearerToken.fromAuthorization(header) else {
            throw SubscriptionError.tokenInvalid
        }
        let body = try await body(request)
        var acks: [SubscriptionProgress.Ack] = []
        if let value = body["acks"], !value.isNull {
            guard let list = value.array, list.count <= SubscriptionConfig.maxStreams else { throw SubscriptionError.invalidRequest("acks must be an array.") }
            for item in list {
                guard let path = (item["stream"] ?? item["path"])?.string, let text = item["offset"]?.string else {
                    throw SubscriptionError.invalidRequest("Each ack needs a stream (or path) and an offset.")
                }
                guard text != "-1", let offset = Offset(wire: text) else {
                    throw SubscriptionError.invalidOffset("'\(text.prefix(40))' is not an offset this server issued.")
                }
                acks.append(.init(path: normalized(path), offset: offset))
            }
        }
        let generation = body["generation"]?.int.flatMap { $0 >= 0 ? UInt64($0) : nil }
        return (String(token), SubscriptionProgress(wakeID: body["wake_id"]?.string, generation: generation, acks: acks, done: body["done"]?.bool == true))
    }

    // MARK: Authorization

    @discardableResult
    private func requireGrant(_ context: HubRequestContext) throws -> Grant {
        guard let grant = context.grant else { throw AuthError.missingCredentials }
        return grant
    }

    /// `consume` over every stream the subscription may follow: its explicit streams, and the subtree its pattern's
    /// literal prefix names (the whole root for a pattern that starts with a wildcard); `append` on its wake stream.
    private func authorize(_ config: SubscriptionConfig, _ key: SubscriptionKey, _ context: HubRequestContext) throws {
        let grant = try requireGrant(context)
        for path in config.streams { try grant.authorize(.consume, on: key.absolute(path)!) }
        if let pattern = config.pattern {
            let literal = SubscriptionGlob.literalPrefix(pattern)
            let root = key.namespace.isEmpty ? literal : (literal.isEmpty ? key.namespace : key.namespace + "/" + literal)
            if root.isEmpty {
                guard grant.slot == nil, grant.prefix == nil else { throw AuthError.outOfReach }
                guard grant.has(.consume) else { throw AuthError.insufficientScope(.consume) }
            } else {
                guard let path = StreamPath(root) else { throw SubscriptionError.invalidRequest("pattern must start with a slot name or a wildcard.") }
                try grant.authorize(.consume, on: path)
            }
        }
        if let wake = config.wakeStream { try grant.authorize(.append, on: key.absolute(wake)!) }
    }

    // MARK: Answers

    private func json(_ status: HTTPResponse.Status, _ text: String, contentType: String = SubscriptionDocuments.contentType) -> Response {
        Response(status: status, headers: [.contentType: contentType, .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    private static func methodNotAllowed(_ allow: String) -> HubProblem {
        HubProblem(status: .methodNotAllowed, code: "method-not-allowed", detail: "This subscription resource answers \(allow).", headers: [.allow: allow])
    }
}
