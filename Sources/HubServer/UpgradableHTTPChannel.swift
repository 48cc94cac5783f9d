import HTTPTypes
import HubHTTP
import Hummingbird
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
@_spi(WSInternal) import WSCore

/// HTTP/1.1 with WebSocket upgrades decided by the router. An upgrade request runs through the whole router
/// (auth first); if the route accepts it, the connection upgrades and runs the session the route left on the
/// context. If not, the router's answer (the 401/403 problem document) is sent and the connection closed —
/// Hummingbird's own upgrade channel answers a bare 400, and NIO has consumed the request head by then, so it
/// cannot simply be answered again as plain HTTP.
struct UpgradableHTTPChannel: ServerChildChannel {
    enum Negotiated: Sendable {
        case webSocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, WebSocketSession, [any WebSocketExtension], Logger)
        /// The router's request stream: at once without a hot path; with one, made when the first request goes to
        /// the router, nil if the connection closed before any did. (Made late: its handler, reader and writer were
        /// ~0.6 KiB of every connection the hot path alone serves.)
        case http(EventLoopFuture<NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>?>)
        /// An upgrade the router refused: its answer goes out on this stream, and the connection closes.
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, Response)
    }

    struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<Negotiated>
        let channel: any Channel
    }

    /// An upgrade the router accepted, with the negotiated extensions and their response headers.
    struct Accepted: Sendable {
        let session: WebSocketSession
        let extensions: [any WebSocketExtension]
        let responseHeaders: HTTPFields
    }

    let http: HTTP1Channel
    let router: RouterResponder<HubRequestContext>
    let settings: WebSocketSettings
    let hotPath: HotPath?

    init(responder: @escaping HTTPChannelHandler.Responder, router: RouterResponder<HubRequestContext>, settings: WebSocketSettings,
         hotPath: HotPath?) {
        http = HTTP1Channel(responder: responder)
        self.router = router
        self.settings = settings
        self.hotPath = hotPath
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let router = self.router, settings = self.settings, hotPath = self.hotPath
            // Set by the check, read by the pipeline switch that follows it on the same connection.
            let accepted = NIOLockedValueBox<Accepted?>(nil)
            let refusal = NIOLockedValueBox<Response?>(nil)
            let upgrader = NIOTypedWebSocketServerUpgrader<Negotiated>(
                maxFrameSize: settings.maxFrameSize,
                shouldUpgrade: { channel, head in
                    let promise = channel.eventLoop.makePromise(of: HTTPHeaders?.self)
                    promise.completeWithTask {
                        let checked: Accepted
                        switch try await Self.check(head, channel: channel, router: router, settings: settings, logger: logger) {
                        case .accepted(let a): checked = a
                        case .refused(let response):
                            refusal.withLockedValue { $0 = response }
                            return nil
                        }
                        accepted.withLockedValue { $0 = checked }
                        var headers = HTTPHeaders()
                        for field in checked.responseHeaders { headers.add(name: field.name.rawName, value: field.value) }
                        return headers
                    }
                    return promise.futureResult
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        guard let checked = accepted.withLockedValue({ $0 }) else { throw ChannelError.inappropriateOperationForState }
                        let asyncChannel = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                        return .webSocket(asyncChannel, checked.session, checked.extensions, logger)
                    }
                })
            let configuration = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
                        let routerStream = { @Sendable () throws -> NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart> in
                            try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                        }
                        if let response = refusal.withLockedValue({ $0 }) { return .refused(try routerStream(), response) }
                        guard let hotPath else { return .http(channel.eventLoop.makeSucceededFuture(try routerStream())) }
                        let routerNeeded = channel.eventLoop.makePromise(of: Bool.self)
                        try channel.pipeline.syncOperations.addHandler(hotPath.handler(routerNeeded: routerNeeded))
                        // Runs inside the promise's completion, on this loop, before the hot path hands the request on:
                        // the stream's handler is in place when the request reaches it.
                        return .http(routerNeeded.futureResult.flatMapThrowing { needed in needed ? try routerStream() : nil })
                    }
                })
            // Below every HTTP and WebSocket handler added from here on: the tail push writes pre-framed batches there.
            try channel.pipeline.syncOperations.addHandler(WireOutlet())
            // Just above it, the hot path's own request reader: what it does not answer goes to the decoder below.
            try hotPath?.addLane(to: channel.pipeline.syncOperations)
            var pipeline = NIOUpgradableHTTPServerPipelineConfiguration<Negotiated>(upgradeConfiguration: configuration)
            pipeline.enablePipelining = false
            pipeline.enableErrorHandling = false
            pipeline.enableResponseHeaderValidation = false
            let negotiated = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: pipeline)
            return Value(negotiated: negotiated, channel: channel)
        }
    }

    /// Calls `body` once the connection needs a task (true): at once for a WebSocket session or a refused upgrade;
    /// with a hot path, when its first request goes to the router. Or (false) when it ended before it needed one.
    /// Until then a connection the hot path alone serves (an SSE reader at the tail, a long-poller, a publisher) has
    /// no task at all: a suspended task keeps ~4.5 KiB of slab, a third of an idle SSE connection. (Callbacks, not
    /// chained futures: each future is an allocation that every idle connection would keep.)
    func whenTaskNeeded(_ value: Value, _ body: @escaping @Sendable (_ needed: Bool) -> Void) {
        value.negotiated.whenComplete { result in
            switch result {
            case .success(.http(let routerStream)):
                routerStream.whenComplete { stream in
                    if case .success(nil) = stream { body(false) } else { body(true) }
                }
            case .success(.webSocket), .success(.refused):
                body(true)
            case .failure:
                body(false)  // it ended during negotiation
            }
        }
    }

    // The connection's task waits in these functions for as long as the connection lives; one function per path.
    func handle(value: Value, logger: Logger) async {
        let negotiated: Negotiated
        do {
            negotiated = try await value.negotiated.get()
        } catch {
            logger.debug("connection ended during negotiation", metadata: ["error": "\(error)"])
            return
        }
        switch negotiated {
        case .http(let routerStream):
            // Complete by now (`whenTaskNeeded`); nil: the connection ended before a request went to the router.
            let channel: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>?
            do { channel = try await routerStream.get() } catch {
                value.channel.close(promise: nil)
                return
            }
            guard let channel else { return }
            await http.handleHTTP(asyncChannel: channel, logger: logger)
        case .refused(let channel, let response):
            await Self.refuse(channel, with: response)
        case .webSocket(let channel, let session, let extensions, let logger):
            await serveWebSocket(channel, session, extensions, logger: logger)
        }
    }

    /// The router's answer to a refused upgrade, and the connection closes.
    private static func refuse(_ channel: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, with response: Response) async {
        try? await channel.executeThenClose { _, outbound in
            var head = response.head
            head.headerFields[.connection] = "close"
            let writer = ResponseWriter(outbound: outbound)
            try await writer.write(response: head, body: response.body)
        }
    }

    private func serveWebSocket(_ channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, _ session: WebSocketSession,
                                _ extensions: [any WebSocketExtension], logger: Logger) async {
        let configuration = WebSocketHandler.Configuration(extensions: extensions, autoPing: settings.autoPing, closeTimeout: settings.closeTimeout,
                                                           validateUTF8: settings.validateUTF8, maxFrameSize: settings.maxFrameSize)
        _ = try? await WebSocketHandler.handle(type: .server, configuration: configuration, asyncChannel: channel,
                                               context: SessionContext(logger: logger)) { inbound, outbound, context in
            try await session(inbound, outbound, WebSocketLink(logger: context.logger, transformsFrames: !extensions.isEmpty))
        }
    }

    private struct SessionContext: WebSocketContext { let logger: Logger }

    private enum Decision { case accepted(Accepted), refused(Response) }

    /// Runs the upgrade request through the router: the accepted session with the negotiated extensions, or the
    /// router's answer.
    private static func check(_ head: HTTPRequestHead, channel: any Channel, router: RouterResponder<HubRequestContext>, settings: WebSocketSettings,
                              logger: Logger) async throws -> Decision {
        let request = Request(head: try HTTPRequest(head, secure: false, splitCookie: false), body: .init(buffer: ByteBuffer()))
        let context = HubRequestContext(source: .init(channel: channel, logger: logger))
        let response: Response
        do {
            response = try await router.respond(to: request, context: context)
        } catch {
            return .refused(Response(status: .internalServerError))  // ProblemMiddleware renders every error; this is a bug
        }
        guard response.status == .ok, let session = context.webSocket.accepted else { return .refused(response) }
        let (headers, extensions) = try settings.extensions.serverExtensionNegotiation(requestHeaders: request.headers)
        return .accepted(Accepted(session: session, extensions: extensions, responseHeaders: headers))
    }
}
