import HTTPTypes
import HubAuth
import HubCore
import HubProtocol

/// The one place that decides which path a request takes (docs/architecture.md, "Two paths, one set of rules").
///
/// The hot path serves the requests that dominate a busy hub from the connection's event loop, with no Swift task,
/// no middleware chain and no body stream: the Durable Streams append, and the live read (long-poll or SSE) at the
/// tail of a stream whose push group is at its offset (`TailPush.joinAtTail`; any other live read goes to the
/// router, which reads, catches up and parks it in that group). Everything else, and every request
/// whose answer needs anything the event loop cannot decide on its own (a token not yet verified, a ticket, an
/// anonymous caller, `Expect: 100-continue`, a store without `AppendSubmitting`), goes to the general router
/// (Hummingbird), which gives the full answer. Both paths apply the same rules: `StreamAppend` (the request and its
/// answer), `StreamsController.streamPath`, `Grant.authorize`, the rate limiter, `ProblemMiddleware.problem(for:)`.
/// A class: it is reached through the connection's handler on every request, and as a struct its references were
/// copied — retained and released — at each access (5 % of a no-op request's CPU, `perf`).
public final class HotPathRouter: Sendable {
    public enum Route: Sendable {
        /// The general router (Hummingbird) answers.
        case general
        /// `POST /v1/stream/{path}`, authorized for `tokenID`; the hot path collects the body and appends.
        case streamAppend(StreamPath, tokenID: String)
        /// `GET /v1/stream/{path}?offset=…&live=long-poll|sse[&cursor=…]`, authorized for `tokenID`.
        case streamLiveRead(LiveRead, tokenID: String)
        /// `GET /healthz`, admitted by the rate limits for `tokenID` (`-` when anonymous).
        case health(tokenID: String)
    }

    /// A live read's request, as the router would parse it.
    public struct LiveRead: Sendable {
        enum Mode: Sendable { case longPoll, sse }
        let mode: Mode
        let path: StreamPath
        let from: Offset
        let clientCursor: String?
    }

    let appender: (any AppendSubmitting)?
    let auth: Authenticator
    let reads: StreamReads?

    /// - Parameter store: the hot path appends only through a store that takes appends from an event loop.
    /// - Parameter reads: the router's read modes, whose push groups the hot path's long-polls join (nil: none).
    public init(store: any StreamStore, auth: Authenticator, reads: StreamReads? = nil) {
        appender = store as? any AppendSubmitting
        self.auth = auth
        self.reads = reads
    }

    /// Where `request` goes. A hot route has passed authentication, authorization and the token's rate limit.
    func route(_ request: HTTPRequest, remoteAddress: @autoclosure () -> String?) -> Route {
        guard let target = request.path, !request.headerFields.contains(.expect) else { return .general }
        if target == Self.health {
            guard request.method == .get, !request.headerFields.contains(.contentLength), !request.headerFields.contains(.transferEncoding),
                  let tokenID = admitted(request, remoteAddress())
            else { return .general }
            return .health(tokenID: tokenID)
        }
        guard target.hasPrefix(StreamsController.prefix) else { return .general }
        switch request.method {
        case .post:
            guard appender != nil,
                  !target.utf8.contains(UInt8(ascii: "?")),  // queries carry tickets and access tokens: the router's business
                  let path = try? StreamsController.streamPath(rawPath: target),
                  let tokenID = authorized(.append, on: path, request, remoteAddress())
            else { return .general }
            return .streamAppend(path, tokenID: tokenID)
        case .get:
            guard reads != nil, !request.headerFields.contains(.contentLength), !request.headerFields.contains(.transferEncoding),
                  let read = Self.liveRead(target),
                  let tokenID = authorized(.read, on: read.path, request, remoteAddress())
            else { return .general }
            return .streamLiveRead(read, tokenID: tokenID)
        default:
            return .general
        }
    }

    static let health = "/healthz"

    /// The caller's token id (`-` when anonymous) when the event loop can admit a request that needs no grant, as
    /// `AuthMiddleware` would: within the token's rate, or the address's for an anonymous caller.
    private func admitted(_ request: HTTPRequest, _ remoteAddress: @autoclosure () -> String?) -> String? {
        guard auth.configuration.mode == .tokens else { return "open" }
        guard let authorization = request.headerFields.value(.authorization) else {
            return auth.addressLimiter.take(remoteAddress() ?? "unknown") == nil ? "-" : nil
        }
        guard let grant = auth.cachedGrant(authorization: authorization, address: remoteAddress()),
              auth.tokenLimiter.take(grant.tokenID) == nil
        else { return nil }
        return grant.tokenID
    }

    /// The caller's token id when the event loop can admit it on its own: a cached grant for `scope` on `path`,
    /// within its rate. Refusals are the router's to render (it takes the limiter again and answers 429).
    /// `remoteAddress` is evaluated only if a token's use is recorded.
    private func authorized(_ scope: Scope, on path: StreamPath, _ request: HTTPRequest, _ remoteAddress: @autoclosure () -> String?) -> String? {
        guard let grant = auth.cachedGrant(authorization: request.headerFields.value(.authorization), address: remoteAddress()),
              (try? grant.authorize(scope, on: path)) != nil
        else { return nil }
        if auth.configuration.mode == .tokens, auth.tokenLimiter.take(grant.tokenID) != nil { return nil }
        return grant.tokenID
    }

    /// A live-read target the hot path can take: exactly `offset` (a concrete offset or `-1`), `live=long-poll` or
    /// `live=sse`, and an optional `cursor`, each once and without percent-encoding. Anything else — `offset=now` (which touches the
    /// stream), tickets, access tokens, repeated or unknown parameters, errors — is the router's.
    static func liveRead(_ target: String) -> LiveRead? {
        var target = target
        // On the bytes: `Character` walks over the target were a tenth of a busy long-poll core.
        return target.withUTF8(liveRead)
    }

    private static func liveRead(_ target: UnsafeBufferPointer<UInt8>) -> LiveRead? {
        guard let question = target.firstIndex(of: UInt8(ascii: "?")),
              !target[question...].contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") })
        else { return nil }
        var offset: Slice<UnsafeBufferPointer<UInt8>>?, live: Slice<UnsafeBufferPointer<UInt8>>?, cursor: Slice<UnsafeBufferPointer<UInt8>>?
        var pairStart = question + 1
        while true {
            let pairEnd = target[pairStart...].firstIndex(of: UInt8(ascii: "&")) ?? target.endIndex
            guard let equals = target[pairStart..<pairEnd].firstIndex(of: UInt8(ascii: "=")) else { return nil }
            let name = target[pairStart..<equals], value = target[(equals + 1)..<pairEnd]
            if offset == nil, name.elementsEqual("offset".utf8) {
                offset = value
            } else if live == nil, name.elementsEqual("live".utf8) {
                live = value
            } else if cursor == nil, name.elementsEqual("cursor".utf8) {
                cursor = value
            } else {
                return nil
            }
            guard pairEnd < target.endIndex else { break }
            pairStart = pairEnd + 1
        }
        let mode: LiveRead.Mode
        if let live, live.elementsEqual("long-poll".utf8) {
            mode = .longPoll
        } else if let live, live.elementsEqual("sse".utf8) {
            mode = .sse
        } else {
            return nil
        }
        let text = { (bytes: Slice<UnsafeBufferPointer<UInt8>>) in String(decoding: bytes, as: UTF8.self) }
        guard let offset,
              case let start? = try? ReadStart.parse([text(offset)], required: true),
              let path = try? StreamsController.streamPath(rawPath: text(target[..<question]))
        else { return nil }
        let from: Offset
        switch start {
        case .beginning: from = .start
        case .after(let offset): from = offset
        case .now: return nil
        }
        return LiveRead(mode: mode, path: path, from: from, clientCursor: cursor.map(text))
    }
}
