import Hummingbird

/// The per-request context. Auth will attach the caller's grant here.
public struct HubRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public init(source: Source) { coreContext = .init(source: source) }
}
