/// Waits for state another task or process changes (a reader parking, appends being acknowledged), looking again
/// every `interval`; fails after `limit`.
///
/// Never a loop on `Task.yield()`: the suite runs on 2 cores, so the cooperative pool has 2 threads, and a test that
/// spins holds one of them at full load. A few spinning at once starved every other test of the run (appends took
/// half a second each, and tests with 20 s budgets failed).
public func eventually(within limit: Duration = .seconds(60), every interval: Duration = .milliseconds(2),
                       _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw TestFailure("condition did not hold within \(limit)") }
        try await Task.sleep(for: interval)
    }
}

/// Runs `body`, or fails with `failure` once `limit` passed (cancelling it). Only a guard against a hung test:
/// correct runs finish long before, on events, never on the clock.
public func withinLimit<T: Sendable>(_ limit: Duration, _ failure: @escaping @Sendable () -> String,
                                     _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw TestFailure(failure())
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
