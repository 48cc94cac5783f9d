import HubAuth
import Hummingbird
import Logging
import NIOCore
import Synchronization
import WSCore

/// The per-request context: the caller's address, and its grant once `AuthMiddleware` has run (nil: anonymous).
/// A `/v1/ws` request that passed every check leaves its session in `webSocket` for the server to run after the
/// upgrade; the connection's channel lets a slow WebSocket consumer's watchdog close it.
public struct HubRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var grant: Grant?
    public let remoteAddress: SocketAddress?
    public let webSocket = WebSocketUpgrade()
    let channel: any Channel

    public init(source: Source) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }
}

/// What runs on a WebSocket once the upgrade completed.
public typealias WebSocketSession = @Sendable (WebSocketInboundStream, WebSocketOutboundWriter, WebSocketLink) async throws -> Void

/// What a session needs to know about its connection beyond the reader and writer.
public struct WebSocketLink: Sendable {
    public let logger: Logger
    /// An extension (permessage-deflate) was negotiated, so every frame must go through the WebSocket handler;
    /// otherwise frames may be written straight to the channel (the tail push path).
    public let transformsFrames: Bool
    public init(logger: Logger, transformsFrames: Bool) { self.logger = logger; self.transformsFrames = transformsFrames }
}

/// Hands a checked WebSocket session from the router to the server's upgrade code.
public final class WebSocketUpgrade: Sendable {
    private let session = Mutex<WebSocketSession?>(nil)
    public init() {}
    func accept(_ run: @escaping WebSocketSession) { session.withLock { $0 = run } }
    /// The session to run, if the request was accepted for an upgrade.
    public var accepted: WebSocketSession? { session.withLock { $0 } }
}
