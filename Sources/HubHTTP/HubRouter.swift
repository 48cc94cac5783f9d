import HubCore
import Hummingbird

/// Builds the router: response headers outermost, then problem rendering, then method checks and the routes.
/// - Parameter localAdmin: the router of the local admin unix socket, where every request is an admin (the socket's
///   file permissions are the authentication).
/// - Parameter console: the web console's files, served at `/console/`.
/// - Parameter subscriptions: the subscription APIs under `/v1/stream/{root/}__ds/` (nil: those paths answer 404).
/// - Parameter reads: the Durable Streams read modes, shared with the hot path's long-polls (nil: the router's own).
public func buildRouter(store: any StreamStore & AdminStore & SlotLog, signal: any ChangeSignal, limits: HTTPLimits,
                        auth: Authenticator, facts: ServerFacts, metrics: HubMetrics, metricsRequireToken: Bool = false,
                        console: ConsoleAssets = .none, localAdmin: Bool = false,
                        subscriptions: SubscriptionService? = nil, reads: StreamReads? = nil) -> Router<HubRequestContext> {
    let router = Router(context: HubRequestContext.self)
    router.add(middleware: ResponseHeadersMiddleware(metrics: metrics))
    router.add(middleware: ProblemMiddleware(metrics: metrics))
    router.add(middleware: StreamMethodsMiddleware())
    let tickets = TicketBook(ledger: store as? any TicketLedger)
    if localAdmin {
        router.add(middleware: LocalAdminMiddleware())
    } else {
        router.add(middleware: AuthMiddleware(authenticator: auth, tickets: tickets))
    }
    router.add(middleware: RequestLogMiddleware())  // after auth, so the line carries the token id
    router.add(middleware: SubscriptionRoutesMiddleware(controller: subscriptions.map { SubscriptionsController(service: $0) }))
    HealthController(store: store).addRoutes(to: router)
    ConsoleController(assets: console).addRoutes(to: router)
    let reads = reads ?? StreamReads(store: store, signal: signal, limits: limits, metrics: metrics)
    StreamsController(store: store, reads: reads, limits: limits, auth: auth, metrics: metrics).addRoutes(to: router)
    MetricsController(metrics: metrics, store: store, requireToken: metricsRequireToken && !localAdmin).addRoutes(to: router)
    AdminController(store: store, auth: auth, facts: facts, metrics: metrics).addRoutes(to: router)
    TicketsController(tickets: tickets).addRoutes(to: router)
    let sharedLogReads = SharedLogReads(store: store, maxBytes: limits.readChunkBytes)
    let follower = LogFollower(store: store, signal: signal, shared: sharedLogReads)
    let activity = SlotActivity()
    EventsController(store: store, follower: follower, activity: activity, limits: limits, auth: auth, metrics: metrics,
                     allocations: RateLimiter(rate: limits.selfServicePerHour / 3600, burst: max(1, limits.selfServicePerHour))).addRoutes(to: router)
    WebSocketController(store: store, follower: follower, activity: activity, limits: limits, auth: auth, metrics: metrics,
                        tail: TailPush(signal: signal, feed: SlotTailFeed(shared: sharedLogReads), metrics: metrics, slice: limits.pushSlice))
        .addRoutes(to: router)
    return router
}
