/// Durable Streams subscriptions (§11, docs/api/subscriptions.md): a named registration under a stream root that
/// tracks acknowledged offsets over a set of streams (matched by a glob `pattern` and/or listed explicitly) and wakes
/// a consumer when any of them has unacknowledged data — by a webhook POST, or by a wake event on a `wake_stream` that
/// workers claim. The whole record is one document in the store, changed only inside a store transaction by
/// `SubscriptionRules`, so nodes sharing a PostgreSQL database agree on generations, holders and cursors.

/// Where a subscription lives: the stream root it was created under (`""` for `/v1/stream/__ds/…`, or a path prefix
/// for `/v1/stream/{prefix}/__ds/…`) and its id. Its pattern and streams are relative to that root.
public struct SubscriptionKey: Hashable, Sendable, Codable, CustomStringConvertible {
    public let namespace: String
    public let id: String

    public init?(namespace: String, id: String) {
        guard Self.isValidID(id), namespace.isEmpty || StreamPath(namespace) != nil else { return nil }
        self.namespace = namespace; self.id = id
    }

    /// Ids are chosen by clients (`runner:abc:0f3a…`, `yjs:…`): printable, no path or query characters, bounded.
    public static func isValidID(_ id: String) -> Bool {
        (1...200).contains(id.utf8.count) && id.utf8.allSatisfy { b in
            (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || (0x30...0x39).contains(b)
                || b == 0x2E || b == 0x5F || b == 0x2D || b == 0x3A || b == 0x40 || b == 0x7E
        }
    }

    /// The stream a root-relative path names (nil when the result is not a valid stream path).
    public func absolute(_ relative: String) -> StreamPath? {
        StreamPath(namespace.isEmpty ? relative : namespace + "/" + relative)
    }

    /// A stream's path relative to this root; nil when the stream is outside it.
    public func relative(_ path: StreamPath) -> String? {
        if namespace.isEmpty { return path.rawValue }
        let prefix = namespace + "/"
        guard path.rawValue.hasPrefix(prefix) else { return nil }
        return String(path.rawValue.dropFirst(prefix.utf8.count))
    }

    public var description: String { namespace.isEmpty ? id : "\(namespace)/__ds/\(id)" }
}

public enum SubscriptionKind: String, Sendable, Codable {
    case webhook
    case pullWake = "pull-wake"
}

/// What a client registers. Two registrations are the same subscription exactly when their configurations are
/// equal (PUT answers 200 for the same one again, 409 for a different one).
public struct SubscriptionConfig: Sendable, Codable, Equatable {
    public static let defaultLeaseTTLMs: Int64 = 30_000
    public static let leaseTTLRange: ClosedRange<Int64> = 1_000...600_000
    public static let maxStreams = 1_000
    public static let maxPatternBytes = 512
    public static let maxDescriptionBytes = 1_024

    public var kind: SubscriptionKind
    /// A glob over root-relative paths: `*` matches one segment, `**` any number of segments.
    public var pattern: String?
    /// Explicit root-relative stream paths, sorted and without duplicates.
    public var streams: [String]
    public var webhookURL: String?
    public var wakeStream: String?
    public var leaseTTLMs: Int64
    public var description: String?

    public init(kind: SubscriptionKind, pattern: String?, streams: [String], webhookURL: String?, wakeStream: String?,
                leaseTTLMs: Int64, description: String?) {
        self.kind = kind; self.pattern = pattern; self.streams = Array(Set(streams)).sorted(); self.webhookURL = webhookURL
        self.wakeStream = wakeStream; self.leaseTTLMs = leaseTTLMs; self.description = description
    }
}

/// One stream a subscription follows, and how far the consumer acknowledged it.
public struct SubscriptionLink: Sendable, Codable, Equatable {
    public var path: String
    /// Linked because the pattern matches / because it was listed (a stream may be both).
    public var glob: Bool
    public var explicit: Bool
    /// Everything before this offset is acknowledged; nil is the protocol's `-1` (nothing acknowledged yet).
    public var acked: Offset?
    /// The incarnation (`StreamInfo.id`) `acked` belongs to; nil while the stream does not exist. A stream deleted and
    /// created again at the same path is new data from its first record.
    public var streamID: Int64?

    public init(path: String, glob: Bool, explicit: Bool, acked: Offset?, streamID: Int64?) {
        self.path = path; self.glob = glob; self.explicit = explicit; self.acked = acked; self.streamID = streamID
    }
}

/// A stream's tail as a subscription change sees it, with the incarnation it belongs to.
public struct StreamTail: Hashable, Sendable {
    public let id: Int64
    public let head: Offset
    public init(id: Int64, head: Offset) { self.id = id; self.head = head }
}

/// One stream of a wake or a claim, as the consumer sees it.
public struct SubscriptionStreamState: Sendable, Equatable {
    public let path: String
    public let explicit: Bool
    public let acked: Offset?
    public let tail: Offset
    public var hasPending: Bool { tail > (acked ?? .start) }
}

public struct Subscription: Sendable, Codable, Equatable {
    public let key: SubscriptionKey
    public let config: SubscriptionConfig
    public let createdAtMs: Int64
    /// Scheme and authority the subscription was created through: callback URLs in webhook deliveries point there.
    public let callbackBase: String
    /// Sorted by path.
    public internal(set) var links: [SubscriptionLink]
    /// Bumped by every wake; callbacks, acks and releases of an older generation are fenced.
    public internal(set) var generation: UInt64
    /// The wake in progress (nil: idle).
    public internal(set) var wakeID: String?
    /// The tails when the wake began: a webhook's `{done:true}` acknowledges up to these.
    public internal(set) var snapshot: [String: Offset]
    /// The pull-wake worker holding the current wake.
    public internal(set) var holder: String?
    /// When the current wake's lease runs out (it is then given up and, with work pending, a new wake begins).
    public internal(set) var leaseExpiresAtMs: Int64?
    /// A webhook delivery still to be made (first attempt or a retry), and how many attempts failed so far.
    public internal(set) var deliveryDueAtMs: Int64?
    public internal(set) var failedAttempts: Int
    public internal(set) var lastError: String?

    init(key: SubscriptionKey, config: SubscriptionConfig, createdAtMs: Int64, callbackBase: String) {
        self.key = key; self.config = config; self.createdAtMs = createdAtMs; self.callbackBase = callbackBase
        links = []; generation = 0; wakeID = nil; snapshot = [:]; holder = nil; leaseExpiresAtMs = nil
        deliveryDueAtMs = nil; failedAttempts = 0; lastError = nil
    }

    /// `failed` while webhook deliveries keep failing, `active` otherwise.
    public var status: String { failedAttempts > 0 ? "failed" : "active" }

    /// The earliest moment something must happen without a request (a lease running out, a delivery due).
    public var dueAtMs: Int64? {
        switch (leaseExpiresAtMs, deliveryDueAtMs) {
        case let (a?, b?): min(a, b)
        case let (a?, nil): a
        case let (nil, b?): b
        case (nil, nil): nil
        }
    }

    /// The streams the store must report tails of when this subscription changes.
    public var linkedPaths: [StreamPath] { links.compactMap { key.absolute($0.path) } }

    public func link(_ path: String) -> SubscriptionLink? {
        links.firstIndex { $0.path == path }.map { links[$0] }
    }

    /// Every linked stream with its tail (`heads` by absolute path; a stream that is gone counts as empty).
    public func streamStates(heads: [StreamPath: StreamTail]) -> [SubscriptionStreamState] {
        links.map { link in
            let tail = key.absolute(link.path).flatMap { heads[$0]?.head } ?? .start
            return SubscriptionStreamState(path: link.path, explicit: link.explicit, acked: link.acked, tail: tail)
        }
    }
}

/// Glob matching over `/`-separated segments: `*` is exactly one segment, `**` zero or more.
public enum SubscriptionGlob {
    public static func matches(_ pattern: String, _ path: String) -> Bool {
        match(pattern.split(separator: "/", omittingEmptySubsequences: false)[...],
              path.split(separator: "/", omittingEmptySubsequences: false)[...])
    }

    private static func match(_ pattern: ArraySlice<Substring>, _ path: ArraySlice<Substring>) -> Bool {
        guard let first = pattern.first else { return path.isEmpty }
        if first == "**" {
            let rest = pattern.dropFirst()
            if rest.isEmpty { return true }
            var tail = path
            while true {
                if match(rest, tail) { return true }
                guard !tail.isEmpty else { return false }
                tail = tail.dropFirst()
            }
        }
        guard let segment = path.first, first == "*" || first == segment else { return false }
        return match(pattern.dropFirst(), path.dropFirst())
    }

    /// The segments before the first wildcard: every match lies under this prefix (it bounds the streams to list).
    public static func literalPrefix(_ pattern: String) -> String {
        pattern.split(separator: "/", omittingEmptySubsequences: false)
            .prefix { $0 != "*" && $0 != "**" }
            .joined(separator: "/")
    }

    /// A pattern is valid when it is a stream path with some segments replaced by `*` or `**`.
    public static func isValid(_ pattern: String) -> Bool {
        guard !pattern.isEmpty, pattern.utf8.count <= SubscriptionConfig.maxPatternBytes else { return false }
        let segments = pattern.split(separator: "/", omittingEmptySubsequences: false)
        guard segments.count <= 64 else { return false }
        let literal = segments.map { $0 == "*" || $0 == "**" ? "x" : String($0) }.joined(separator: "/")
        // A root-relative pattern may start at any segment: check it as the tail of a path.
        return StreamPath("x/" + literal) != nil
    }
}

/// Refusals of the subscription APIs, with the protocol's codes (§11).
public enum SubscriptionError: Error, Sendable, Equatable {
    case invalidRequest(String)
    case notFound
    case alreadyExists
    case webhookURLRejected(String)
    case tokenInvalid
    case tokenExpired
    case fenced
    case alreadyClaimed(holder: String, generation: UInt64)
    case noPendingWork
    case invalidOffset(String)

    /// The protocol's error code (`{"error":{"code":…}}`).
    public var code: String {
        switch self {
        case .invalidRequest: "INVALID_REQUEST"
        case .notFound: "SUBSCRIPTION_NOT_FOUND"
        case .alreadyExists: "SUBSCRIPTION_ALREADY_EXISTS"
        case .webhookURLRejected: "WEBHOOK_URL_REJECTED"
        case .tokenInvalid: "TOKEN_INVALID"
        case .tokenExpired: "TOKEN_EXPIRED"
        case .fenced: "FENCED"
        case .alreadyClaimed: "ALREADY_CLAIMED"
        case .noPendingWork: "NO_PENDING_WORK"
        case .invalidOffset: "INVALID_OFFSET"
        }
    }

    public var message: String {
        switch self {
        case .invalidRequest(let reason): reason
        case .notFound: "No subscription with this id under this root."
        case .alreadyExists: "A subscription with this id exists with a different configuration."
        case .webhookURLRejected(let reason): reason
        case .tokenInvalid: "The callback token is not valid for this subscription."
        case .tokenExpired: "The callback token has expired."
        case .fenced: "The wake generation or wake id is stale: a newer wake superseded it."
        case .alreadyClaimed(let holder, _): "The current wake is claimed by '\(holder.prefix(64))'."
        case .noPendingWork: "No linked stream has unacknowledged data."
        case .invalidOffset(let reason): reason
        }
    }
}
