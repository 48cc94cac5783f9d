/// Everything a store can refuse. Knows nothing about HTTP: HubHTTP maps each case to a status in one place.
public enum StoreError: Error, Sendable, Equatable {
    case streamNotFound(StreamPath)
    /// Soft-deleted: deleted while forks still read from it (Durable Streams §8).
    case streamGone(StreamPath)
    /// PUT with a configuration different from the existing stream's, or at a soft-deleted path.
    case streamConflict(StreamPath, reason: String)
    /// Append to a closed stream; carries the final tail.
    case streamClosed(head: Offset)
    case contentTypeMismatch(expected: String)
    case streamSeqRegression(last: String)
    /// A producer epoch older than the current one (zombie fencing).
    case producerStaleEpoch(current: UInt64)
    /// A new epoch must start at seq 0.
    case producerEpochSeqNotZero
    case producerSeqGap(expected: UInt64, received: UInt64)
    case forkSourceNotFound(StreamPath)
    case forkSourceGone(StreamPath)
    case invalidFork(String)
    /// An offset this stream never issued (past its tail).
    case offsetOutOfRange(Offset)
    /// A cursor below what retention kept; `floor` is the oldest cursor still served.
    case belowRetention(floor: RetentionFloor)
    /// A `since` past the slot's last `seq`.
    case seqOutOfRange(requested: UInt64, head: UInt64)
    /// A consumer name already used for another stream or the whole slot.
    case consumerConflict(String, existing: String)
    case consumerNotFound(String)
    case payloadTooLarge(limit: Int)
    case slotNotFound(SlotName)
    case slotExists(SlotName)
    case tokenNotFound(String)
    /// A fixed bound of the store is reached (the SQLite store's slot ids and per-slot seqs); the text says which.
    case capacityExhausted(String)
    /// An online backup could not be written (the reason is safe to show an admin).
    case backupFailed(String)
    /// The database file was written by a newer hubd.
    case schemaTooNew(found: Int, supported: Int)
    /// Temporarily unable to serve (e.g. database unreachable); safe to retry.
    case unavailable(String)
    /// Any driver failure. The text is logged, never shown to clients.
    case backend(String)
}

/// The oldest cursor retention still serves: a Durable Streams offset or a slot `seq`.
public enum RetentionFloor: Sendable, Equatable {
    case offset(Offset)
    case seq(UInt64)
}
