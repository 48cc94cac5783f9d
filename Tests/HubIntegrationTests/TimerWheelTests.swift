import HubCore
import Synchronization
import Testing

@Suite("Timer wheel")
struct TimerWheelTests {
    @Test("fires each key at or after its deadline, never a cancelled one; past deadlines fire on the next tick")
    func firesAfterDeadlines() async throws {
        let start = ContinuousClock.now
        let (fired, firing) = AsyncStream.makeStream(of: (key: Int, at: ContinuousClock.Instant).self)
        let wheel = TimerWheel<Int>(resolution: .milliseconds(10)) { keys in
            for key in keys { firing.yield((key, .now)) }
        }
        let timeouts: [Int: Duration] = [1: .milliseconds(-5), 2: .zero, 3: .milliseconds(35), 4: .milliseconds(80), 5: .milliseconds(60)]
        for (key, timeout) in timeouts { wheel.schedule(key, after: timeout) }
        wheel.schedule(6, after: .milliseconds(20))
        wheel.cancel(6)
        wheel.cancel(42)  // never scheduled: nothing happens
        #expect(wheel.count == 5)
        var seen: [Int: ContinuousClock.Instant] = [:]
        for await (key, at) in fired {
            seen[key] = at
            if seen.count == timeouts.count { break }
        }
        #expect(Set(seen.keys) == Set(timeouts.keys), "the cancelled key never fires")
        for (key, timeout) in timeouts {
            #expect(seen[key]! - start >= timeout, "key \(key) fired early")
        }
        #expect(wheel.count == 0)
    }
}
