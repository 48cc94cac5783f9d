import HubAuth
import Hummingbird
import NIOCore

/// The per-request context: the caller's address, and its grant once `AuthMiddleware` has run (nil: anonymous).
public struct HubRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var grant: Grant?
    public let remoteAddress: SocketAddress?

    public init(source: Source) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
