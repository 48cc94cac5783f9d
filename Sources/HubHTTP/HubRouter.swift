import HubCore
import Hummingbird

/// Builds the router: response headers outermost, then problem rendering, then method checks and the routes.
public func buildRouter(store: any StreamStore & AdminStore, signal: any ChangeSignal, limits: HTTPLimits,
                        auth: Authenticator) -> Router<HubRequestContext> {
    let router = Router(context: HubRequestContext.self)
    router.add(middleware: ResponseHeadersMiddleware())
    router.add(middleware: ProblemMiddleware())
    router.add(middleware: StreamMethodsMiddleware())
    router.add(middleware: AuthMiddleware(authenticator: auth))
    HealthController(store: store).addRoutes(to: router)
    let reads = StreamReads(store: store, signal: signal, limits: limits)
    StreamsController(store: store, reads: reads, limits: limits, auth: auth).addRoutes(to: router)
    AdminController(store: store, auth: auth).addRoutes(to: router)
    return router
}
