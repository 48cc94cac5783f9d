import Synchronization

/// The in-process `ChangeSignal`: one counter per stream and the continuations waiting on it.
public final class LocalChangeSignal: ChangeSignal {
    private struct Waiter {
        let continuation: CheckedContinuation<WaitOutcome, Never>
        let key: WaitKey
    }
    private struct WaitKey: Hashable, Sendable {
        let stream: Int64
        let token: UInt64
    }
    private struct State {
        var versions: [Int64: UInt64] = [:]
        var waiters: [Int64: [UInt64: Waiter]] = [:]
        var nextToken: UInt64 = 0
        var isShuttingDown = false
        /// Added to every ticket: `publishAll` raises it, which changes every stream's ticket at once.
        var generation: UInt64 = 0

        func ticket(_ stream: Int64) -> UInt64 { versions[stream, default: 0] &+ generation }
    }
    private let state = Mutex(State())
    /// Every wait's timeout, on one ticking task (not a sleeping task per wait).
    private let timeouts: TimerWheel<WaitKey>

    public init() {
        let expired = ExpiredWaits()
        timeouts = TimerWheel { keys in expired.signal?.timedOut(keys) }
        expired.signal = self
    }

    /// Waits with a timeout still pending (each ended wait removes its own at once).
    public var pendingTimeouts: Int { timeouts.count }

    private func timedOut(_ keys: [WaitKey]) {
        for key in keys { finish(key.stream, key.token, with: .timedOut) }
    }

    public func ticket(for stream: Int64) -> UInt64 {
        state.withLock { $0.ticket(stream) }
    }

    /// Told of every published change (the subscription service), on the publishing thread: it must only take note.
    /// In a struct, not bare: a closure stored as a `Mutex`'s generic value is re-abstracted on every `withLock`
    /// (the inout is written back wrapped in two more thunks), so each publish made the next call one layer deeper:
    /// after a million appends, most of a publish's CPU went to walking the thunk chain.
    private struct Observer: Sendable { let notify: @Sendable (Int64) -> Void }
    private let observer = Mutex<Observer?>(nil)

    /// Sets the one observer of published changes.
    public func observe(_ body: @escaping @Sendable (Int64) -> Void) {
        observer.withLock { $0 = Observer(notify: body) }
    }

    public func publish(_ stream: Int64) {
        observer.withLock { $0 }?.notify(stream)
        let woken = state.withLock { state -> [Waiter] in
            state.versions[stream, default: 0] &+= 1
            return state.waiters.removeValue(forKey: stream).map { Array($0.values) } ?? []
        }
        for waiter in woken {
            timeouts.cancel(waiter.key)
            waiter.continuation.resume(returning: .changed)
        }
    }

    /// Wakes every reader of every stream, and changes every ticket taken so far: for when changes may have been
    /// missed (a cross-node listener that reconnected). Readers re-read from their cursors, so a spurious wake is harmless.
    public func publishAll() {
        let woken = state.withLock { state -> [Waiter] in
            state.generation &+= 1
            defer { state.waiters = [:] }
            return state.waiters.values.flatMap(\.values)
        }
        for waiter in woken {
            timeouts.cancel(waiter.key)
            waiter.continuation.resume(returning: .changed)
        }
    }

    public func shutdown() {
        let woken = state.withLock { state -> [Waiter] in
            state.isShuttingDown = true
            defer { state.waiters = [:] }
            return state.waiters.values.flatMap(\.values)
        }
        for waiter in woken {
            timeouts.cancel(waiter.key)
            waiter.continuation.resume(returning: .shuttingDown)
        }
    }

    /// Number of readers currently waiting (for tests and metrics).
    public var waiterCount: Int { state.withLock { $0.waiters.values.reduce(0) { $0 + $1.count } } }

    public func wait(for stream: Int64, after ticket: UInt64, timeout: Duration) async -> WaitOutcome {
        let token = state.withLock { state -> UInt64 in
            state.nextToken &+= 1
            return state.nextToken
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<WaitOutcome, Never>) in
                let immediate: WaitOutcome? = state.withLock { state in
                    if state.isShuttingDown { return .shuttingDown }
                    if Task.isCancelled { return .cancelled }
                    if state.ticket(stream) != ticket { return .changed }
                    let key = WaitKey(stream: stream, token: token)
                    state.waiters[stream, default: [:]][token] = Waiter(continuation: continuation, key: key)
                    timeouts.schedule(key, after: timeout)
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            finish(stream, token, with: .cancelled)
        }
    }

    private func finish(_ stream: Int64, _ token: UInt64, with outcome: WaitOutcome) {
        let waiter = state.withLock { state -> Waiter? in
            guard let waiter = state.waiters[stream]?.removeValue(forKey: token) else { return nil }
            if state.waiters[stream]?.isEmpty == true { state.waiters[stream] = nil }
            return waiter
        }
        guard let waiter else { return }
        if outcome != .timedOut { timeouts.cancel(waiter.key) }
        waiter.continuation.resume(returning: outcome)
    }
}

/// The wheel's way back to its signal, set once after both exist (a weak reference: the signal owns the wheel).
private final class ExpiredWaits: @unchecked Sendable {  // written once in init, before any wait can time out
    weak var signal: LocalChangeSignal?
}
