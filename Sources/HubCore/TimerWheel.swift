import Synchronization

/// Timeouts for many waiters with one task. A `Task.sleep` per wait (the obvious shape) keeps its timer — and the
/// memory behind it — until the original deadline even when the wait ends early: at 1,000 SSE subscribers woken
/// 100 times a second with a 15 s keep-alive that was ~80 MB held for 15 s after they all left. Here a timeout is
/// an entry in a bucket of `resolution` width, removed in O(1) when its wait ends; one task ticks while any entry
/// exists and parks when none does. A timeout fires at or after its deadline, at most one `resolution` late.
///
/// `@inlinable` so that the modules using it get it specialized for their key: unspecialized, every schedule and
/// cancel went through generic metadata and witness tables (~7 % of a long-poll answer's CPU in a profile).
public final class TimerWheel<Key: Hashable & Sendable>: Sendable {
    @usableFromInline struct State {
        @usableFromInline var buckets: [Int64: Set<Key>] = [:]
        @usableFromInline var slotOf: [Key: Int64] = [:]
        /// Every slot up to this one has fired.
        @usableFromInline var firedThrough: Int64
        @usableFromInline var ticking = false

        init(firedThrough: Int64) { self.firedThrough = firedThrough }
    }

    @usableFromInline let state: Mutex<State>
    /// The slot width in nanoseconds: slot arithmetic in integers (dividing `Duration`s goes through `Double`).
    @usableFromInline let resolutionNs: Int64
    @usableFromInline let origin = ContinuousClock.now
    private let fire: @Sendable ([Key]) -> Void

    /// - Parameter fire: called (outside any lock) with the keys whose deadline passed.
    public init(resolution: Duration = .milliseconds(25), fire: @escaping @Sendable ([Key]) -> Void) {
        resolutionNs = max(1, resolution.nanoseconds)
        self.fire = fire
        state = Mutex(State(firedThrough: 0))
    }

    /// Fires `key` after `timeout` unless `cancel(key)` comes first.
    @inlinable public func schedule(_ key: Key, after timeout: Duration) {
        // Rounded up: never early.
        let slot = slot(atNs: elapsedNs + timeout.nanoseconds, roundingUp: true)
        let startTicking = state.withLock { state -> Bool in
            // Never into a slot already fired (a zero or negative timeout, or a slot boundary): the next tick's.
            let slot = max(slot, state.firedThrough + 1)
            // Buckets are moved out and back, not mutated through the subscript: its `_modify` accessor allocated
            // its coroutine frames, three allocations per schedule (heaptrack).
            var bucket = state.buckets.removeValue(forKey: slot) ?? []
            bucket.insert(key)
            state.buckets[slot] = bucket
            state.slotOf[key] = slot
            guard !state.ticking else { return false }
            state.ticking = true
            return true
        }
        if startTicking { Task { await self.tick() } }
    }

    @inlinable public func cancel(_ key: Key) {
        state.withLock { state in
            guard let slot = state.slotOf.removeValue(forKey: key), var bucket = state.buckets.removeValue(forKey: slot) else { return }
            bucket.remove(key)
            if !bucket.isEmpty { state.buckets[slot] = bucket }
        }
    }

    public var count: Int { state.withLock { $0.slotOf.count } }

    /// Nanoseconds since the wheel was made.
    @usableFromInline var elapsedNs: Int64 { (ContinuousClock.now - origin).nanoseconds }

    /// The slot of the instant `elapsed` ns after the wheel was made.
    @usableFromInline func slot(atNs elapsed: Int64, roundingUp: Bool) -> Int64 {
        // Floor division (elapsed is negative for a deadline in the past).
        let down = elapsed >= 0 ? elapsed / resolutionNs : -((-elapsed + resolutionNs - 1) / resolutionNs)
        return roundingUp && down * resolutionNs != elapsed ? down + 1 : down
    }

    /// Fires what is due every `resolution` until nothing is scheduled.
    @usableFromInline func tick() async {
        while true {
            try? await Task.sleep(for: .nanoseconds(resolutionNs))
            let now = slot(atNs: elapsedNs, roundingUp: false)
            let (due, more) = state.withLock { state -> ([Key], Bool) in
                var due: [Key] = []
                // Normally one slot per tick; after a stall, walk whichever is shorter.
                if now - state.firedThrough <= Int64(state.buckets.count) {
                    for slot in (state.firedThrough + 1)...max(state.firedThrough + 1, now) where slot <= now {
                        if let keys = state.buckets.removeValue(forKey: slot) { due.append(contentsOf: keys) }
                    }
                } else {
                    for slot in state.buckets.keys where slot <= now {
                        due.append(contentsOf: state.buckets.removeValue(forKey: slot)!)
                    }
                }
                state.firedThrough = max(state.firedThrough, now)
                for key in due { state.slotOf[key] = nil }
                if state.slotOf.isEmpty { state.ticking = false }
                return (due, state.ticking)
            }
            if !due.isEmpty { fire(due) }
            if !more { return }
        }
    }
}
