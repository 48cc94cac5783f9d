import HubAuth
import Hummingbird

/// The per-request context: the caller's grant once `AuthMiddleware` has run (nil: anonymous).
public struct HubRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var grant: Grant?
    public init(source: Source) { coreContext = .init(source: source) }
}
