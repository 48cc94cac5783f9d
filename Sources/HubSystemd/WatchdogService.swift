import ServiceLifecycle

/// Pings the systemd watchdog at half the requested interval while the service runs, with a status line of live
/// figures each time. Does nothing when the watchdog is off.
public struct WatchdogService: Service {
    let notifier: SystemdNotifier
    let status: @Sendable () -> String

    public init(notifier: SystemdNotifier, status: @escaping @Sendable () -> String) {
        self.notifier = notifier
        self.status = status
    }

    public func run() async throws {
        guard let interval = notifier.watchdogInterval() else {
            try? await gracefulShutdown()
            return
        }
        let period = interval / 2
        // The sleep ends at once on graceful shutdown, so stopping never waits out a watchdog period.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                notifier.send(.watchdog, .status(status()))
                try await Task.sleep(for: period)
            }
        }
    }
}
