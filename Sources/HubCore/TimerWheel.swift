import Synchronization

/// Timeouts for many waiters with one task. A `Task.sleep` per wait (the obvious shape) keeps its timer — and the
/// memory behind it — until the original deadline even when the wait ends early: at 1,000 SSE subscribers woken
/// 100 times a second with a 15 s keep-alive that was ~80 MB held for 15 s after they all left. Here a timeout is
/// an entry in a bucket of `resolution` width, removed in O(1) when its wait ends; one task ticks while any entry
/// exists and parks when none does. A timeout fires at or after its deadline, at most one `resolution` late.
public final class TimerWheel<Key: Hashable & Sendable>: Sendable {
    private struct State {
        var buckets: [Int64: Set<Key>] = [:]
        var slotOf: [Key: Int64] = [:]
        /// Every slot up to this one has fired.
        var firedThrough: Int64
        var ticking = false
    }

    private let state: Mutex<State>
    private let resolution: Duration
    private let origin = ContinuousClock.now
    private let fire: @Sendable ([Key]) -> Void

    /// - Parameter fire: called (outside any lock) with the keys whose deadline passed.
    public init(resolution: Duration = .milliseconds(25), fire: @escaping @Sendable ([Key]) -> Void) {
        self.resolution = resolution
        self.fire = fire
        state = Mutex(State(firedThrough: 0))
    }

    /// Fires `key` after `timeout` unless `cancel(key)` comes first.
    public func schedule(_ key: Key, after timeout: Duration) {
        // Rounded up: never early.
        let slot = slot(of: ContinuousClock.now + timeout, roundingUp: true)
        let startTicking = state.withLock { state -> Bool in
            // Never into a slot already fired (a zero or negative timeout, or a slot boundary): the next tick's.
            let slot = max(slot, state.firedThrough + 1)
            state.buckets[slot, default: []].insert(key)
            state.slotOf[key] = slot
            guard !state.ticking else { return false }
            state.ticking = true
            return true
        }
        if startTicking { Task { await self.tick() } }
    }

    public func cancel(_ key: Key) {
        state.withLock { state in
            guard let slot = state.slotOf.removeValue(forKey: key) else { return }
            state.buckets[slot]?.remove(key)
            if state.buckets[slot]?.isEmpty == true { state.buckets[slot] = nil }
        }
    }

    public var count: Int { state.withLock { $0.slotOf.count } }

    private func slot(of instant: ContinuousClock.Instant, roundingUp: Bool) -> Int64 {
        let elapsed = instant - origin
        let ticks = elapsed / resolution
        return roundingUp ? Int64(ticks.rounded(.up)) : Int64(ticks.rounded(.down))
    }

    /// Fires what is due every `resolution` until nothing is scheduled.
    private func tick() async {
        while true {
            try? await Task.sleep(for: resolution)
            let now = slot(of: .now, roundingUp: false)
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
