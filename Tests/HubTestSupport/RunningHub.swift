import HubProtocol
import Foundation
import HubCore
import HubHTTP
import HubServer
import Logging
import NIOHTTP1

/// A hub running in-process on an ephemeral port, for one test.
public struct RunningHub: Sendable {
    public let port: Int
    public let client: TestHTTPClient
    public let dataDirectory: String
    /// Starts a graceful shutdown now (as SIGTERM would); `withRunningHub` then waits for it to finish.
    public let shutdown: @Sendable () async -> Void
    /// How many live readers are parked on the change signal right now.
    public let liveWaiters: @Sendable () -> Int

    /// Returns once at least `count` live readers are waiting (a long-poll or SSE parked on the signal).
    public func untilWaiting(_ count: Int = 1) async throws {
        try await eventually { liveWaiters() >= count }
    }

    /// `/v1/stream/{path}` plus an optional query.
    public func streamURL(_ path: String, _ query: String = "") -> String {
        "/v1/stream/\(path)" + (query.isEmpty ? "" : "?\(query)")
    }
}

/// Starts a real hub (SQLite in a fresh directory, port 0), waits for it to listen, runs `body`, then shuts it
/// down gracefully. A hung shutdown fails the test instead of being ignored.
public func withRunningHub<T: Sendable>(
    _ configure: (inout HubConfiguration) -> Void = { _ in },
    _ body: @Sendable (RunningHub) async throws -> T
) async throws -> T {
    let directory = try TemporaryDirectory()
    let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
    var config = HubConfiguration()
    config.listenPort = 0
    config.auth = .open  // the protocol suites run like the conformance suite; auth tests switch to .tokens
    config.dataDirectory = directory.path
    config.http.longPollTimeout = .seconds(2)
    // Past the grace ServiceLifecycle cancels what is still running and `run()` throws CancellationError; a loaded
    // 2-core CI machine running every suite at once has been seen to need more than hubd's default 10 s.
    config.shutdownGrace = .seconds(60)
    config.onListening = { portSink.yield($0) }
    configure(&config)
    var logger = Logger(label: "hubd-test")
    logger.logLevel = .warning
    let hub = try await Hub.build(config, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await hub.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw TestFailure("hubd never started listening") }
        let running = RunningHub(port: port, client: TestHTTPClient(port: port), dataDirectory: directory.path,
                                 shutdown: { await hub.shutdown() }, liveWaiters: { hub.liveWaiting })
        do {
            let value = try await body(running)
            await hub.shutdown()
            try await group.waitForAll()
            _ = directory
            return value
        } catch {
            await hub.shutdown()
            try? await group.waitForAll()
            throw error
        }
    }
}

extension RunningHub {
    /// `TestHTTPClient.sse` on this hub.
    @discardableResult
    public func sse(_ url: String, headers: [(String, String)] = [], limit: Duration = .seconds(120),
                    onHead: @escaping @Sendable (HTTPResponseHead) -> Void = { _ in },
                    onEvent: @escaping @Sendable (SSEEvent) async throws -> Bool) async throws -> Bool {
        try await client.sse(url, headers: headers, limit: limit, onHead: onHead, onEvent: onEvent)
    }
}
