import HubAuth
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// The per-request context: the caller's address, and its grant once `AuthMiddleware` has run (nil: anonymous).
/// It carries the WebSocket handler a `/v1/ws` upgrade hands over, and the connection's channel, which a slow
/// WebSocket consumer's watchdog closes.
public struct HubRequestContext: RequestContext, RemoteAddressRequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var grant: Grant?
    public let remoteAddress: SocketAddress?
    public let webSocket: WebSocketHandlerReference<HubRequestContext>
    let channel: any Channel

    public init(source: Source) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
        webSocket = .init()
    }
}
