/// Wakes live readers when a stream changes. Carries no data: a woken reader re-reads from its own cursor,
/// so catch-up, long-poll and SSE share one read path and can never skip or reorder records (DESIGN §5).
///
/// Usage, free of lost wake-ups: take a `ticket` *before* reading; if the read found nothing new, `wait` with that
/// ticket. Any change committed after the ticket was taken ends the wait at once.
public protocol ChangeSignal: Sendable {
    /// The current change counter of a stream (by `StreamInfo.id`).
    func ticket(for stream: Int64) -> UInt64
    /// Called by the store after a commit that changed `stream` (append, close, delete).
    func publish(_ stream: Int64)
    /// Returns when `stream` changed after `ticket`, after `timeout`, on shutdown or on task cancellation.
    func wait(for stream: Int64, after ticket: UInt64, timeout: Duration) async -> WaitOutcome
    /// Graceful shutdown: ends every wait now and every later one at once, so live responses can finish.
    func shutdown()
    /// True when every commit that changes a stream is published here before the writer is told it committed (one
    /// node: an unchanged ticket then proves a read taken with it is still current). False when commits made
    /// elsewhere arrive later (another node's, through NOTIFY).
    var publishesEveryCommitFirst: Bool { get }
}

extension ChangeSignal {
    public var publishesEveryCommitFirst: Bool { true }
}

public enum WaitOutcome: Sendable, Equatable {
    case changed, timedOut, shuttingDown, cancelled
}
