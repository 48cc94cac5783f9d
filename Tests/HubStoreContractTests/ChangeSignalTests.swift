import HubCore
import HubTestSupport
import Testing

@Suite("LocalChangeSignal: waits and their timeouts")
struct ChangeSignalTests {
    @Test("a wait times out no earlier than its timeout; waits that end early leave no timeout behind")
    func timeouts() async throws {
        let signal = LocalChangeSignal()
        let started = ContinuousClock.now
        let outcome = await signal.wait(for: 1, after: signal.ticket(for: 1), timeout: .milliseconds(120))
        #expect(outcome == .timedOut)
        #expect(ContinuousClock.now - started >= .milliseconds(120))

        // 500 waits on a long timeout, all ended by a publish: nothing of them remains scheduled.
        try await withThrowingTaskGroup(of: WaitOutcome.self) { group in
            let ticket = signal.ticket(for: 2)
            for _ in 0..<500 { group.addTask { await signal.wait(for: 2, after: ticket, timeout: .seconds(60)) } }
            try await eventually { signal.waiterCount >= 500 }
            #expect(signal.pendingTimeouts == 500)
            signal.publish(2)
            for try await outcome in group { #expect(outcome == .changed) }
        }
        #expect(signal.pendingTimeouts == 0)

        // A cancelled wait removes its timeout too.
        let waiting = Task { await signal.wait(for: 3, after: signal.ticket(for: 3), timeout: .seconds(60)) }
        try await eventually { signal.waiterCount >= 1 }
        waiting.cancel()
        #expect(await waiting.value == .cancelled)
        #expect(signal.pendingTimeouts == 0)
    }
}

@Suite("LocalChangeSignal: degenerate timeouts")
struct ChangeSignalEdgeTests {
    @Test("a zero or negative timeout times out at the next tick instead of never")
    func zeroTimeouts() async {
        let signal = LocalChangeSignal()
        for timeout in [Duration.zero, .milliseconds(-30), .nanoseconds(1)] {
            #expect(await signal.wait(for: 7, after: signal.ticket(for: 7), timeout: timeout) == .timedOut, "\(timeout)")
        }
        #expect(signal.pendingTimeouts == 0)
    }
}
