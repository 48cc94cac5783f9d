import NIOCore
/// Durable storage for streams. `StreamStoreContract` (Tests/) checks every implementation against these rules:
/// - offsets in a stream strictly increase and are never reused, including after a restart;
/// - the slot `seq` of every record is dense and strictly increasing per slot, in commit order;
/// - `create` and `append` are all-or-nothing, and once they return the data survives a crash;
/// - a read returns records in offset order with no gaps relative to committed data, stitching fork sources in;
/// - a deleted or expired stream behaves as if it never existed (unless forks keep it soft-deleted).
/// Implementations throw only `StoreError`.
public protocol StreamStore: Sendable {
    /// Creates `path`, or returns the existing stream when its configuration is identical.
    func create(_ path: StreamPath, _ request: CreateRequest) async throws(StoreError) -> CreateOutcome
    /// Appends and/or closes. Validation order: producer fencing and dedup, closed, content type, producer
    /// sequence, `Stream-Seq` (Durable Streams §3–§5).
    func append(_ path: StreamPath, _ request: AppendRequest) async throws(StoreError) -> AppendOutcome
    /// Records after `offset`, at most about `maxBytes` (always at least one record when any exist).
    /// Resets a sliding TTL.
    func read(_ path: StreamPath, after offset: Offset, maxBytes: Int) async throws(StoreError) -> ReadResult
    /// Metadata only; does not reset a sliding TTL (HEAD).
    func info(_ path: StreamPath) async throws(StoreError) -> StreamInfo
    /// Resets a sliding TTL without reading (a live reader's request starting).
    func touch(_ path: StreamPath) async throws(StoreError)
    func delete(_ path: StreamPath) async throws(StoreError)
}

/// Optional: a store that can say whether it is able to serve (`/readyz`).
public protocol ReadinessChecking: Sendable {
    func checkReadiness() async throws(StoreError)
}

/// Optional: removes streams whose TTL or Expires-At has passed, so their data does not linger until the next
/// access (expiry is also enforced on every access, so this is about storage, not correctness).
public protocol ExpirySweeping: Sendable {
    /// Removes up to `limit` expired streams (soft-deleting those that forks still read); returns how many.
    func sweepExpired(limit: Int) async throws(StoreError) -> Int
}

/// Optional: appends submitted from a NIO event loop without a Swift task (the hot path, docs/architecture.md).
/// The store runs the same `append` rules; `completion` runs on `eventLoop` after the commit, batched with every
/// other completion of that commit for the same loop, so a group commit costs one hop per event loop, not one
/// per append. An outcome is reported only after the transaction committed.
public protocol AppendSubmitting: Sendable {
    func submitAppend(_ path: StreamPath, _ request: AppendRequest, on eventLoop: any EventLoop,
                      completion: @escaping @Sendable (Result<AppendOutcome, StoreError>) -> Void)
}
