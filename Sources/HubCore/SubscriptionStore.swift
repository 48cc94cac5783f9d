/// Durable storage for subscriptions (§11). Each subscription is one record; every change runs `SubscriptionRules`
/// inside one transaction of the store, so concurrent requests (and several nodes on one PostgreSQL database) see
/// each change whole and in order. `StreamStoreContract` runs the same checks on every implementation.
public protocol SubscriptionStore: Sendable {
    /// Loads `key`'s record (nil: none) and the tails of its linked streams, of `alsoHeadsOf` and of its wake stream,
    /// runs `body`, then in the same transaction stores (or deletes) what `body` left and appends its wake events
    /// (to an existing JSON stream that is not closed; a missing wake stream is skipped, as a consumer may create it
    /// later).
    func changeSubscription<R: Sendable>(_ key: SubscriptionKey, alsoHeadsOf: [StreamPath],
                                         _ body: @escaping @Sendable (inout SubscriptionChange) -> R) async throws(StoreError) -> R
    func subscription(_ key: SubscriptionKey) async throws(StoreError) -> Subscription?
    /// Every subscription (bounded by the service's limit on how many may exist).
    func allSubscriptions() async throws(StoreError) -> [Subscription]
    /// Subscriptions with a lease or delivery due at or before `nowMs`, soonest first.
    func dueSubscriptions(nowMs: Int64, limit: Int) async throws(StoreError) -> [SubscriptionKey]
    /// The paths of the live streams among `ids` (`StreamInfo.id`, as the change signal reports them).
    func streamPaths(ids: [Int64]) async throws(StoreError) -> [StreamPath]
    /// Live streams whose path is `prefix` or lies under it (all streams for `""`), at most `limit`.
    func streamPaths(under prefix: String, limit: Int) async throws(StoreError) -> [StreamPath]
    /// A named secret shared by every node: stored on first use (`make()`), read afterwards.
    func sharedSecret(_ name: String, make: @escaping @Sendable () -> [UInt8]) async throws(StoreError) -> [UInt8]
}
