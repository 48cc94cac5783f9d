import Foundation
import HubCore
import HubPostgres
import HubSQLite
import HubSystemd
import Logging
import ServiceLifecycle

/// Everything the hub needs from its backend, whichever it is.
typealias HubStore = any StreamStore & AdminStore & SlotLog & ExpirySweeping & ReadinessChecking & SubscriptionStore

/// The opened backend with its change signal: the only place that chooses between SQLite and PostgreSQL.
struct OpenedStore {
    let store: HubStore
    /// What live readers wait on (cross-node for PostgreSQL).
    let signal: any ChangeSignal
    /// The in-process part of `signal`, which counts this node's waiting readers.
    let localSignal: LocalChangeSignal
    /// Runs while the hub runs; closes the store last on shutdown.
    let services: [any Service]

    static func open(_ config: HubConfiguration, logger: Logger) async throws -> OpenedStore {
        switch config.store {
        case .sqlite:
            let signal = LocalChangeSignal()
            // A migration may rewrite a large table before hubd is ready: systemd hears that start-up goes on.
            let notifier = SystemdNotifier()
            let store = try SQLiteStreamStore(.init(path: config.databasePath, synchronous: config.synchronous, migrationProgress: {
                notifier.send(.extendTimeout(.seconds(30)), .status("migrating the store"))
            }), signal: signal)
            logger.info("store open", metadata: ["hub.db": "\(config.databasePath)", "hub.synchronous": "\(config.synchronous.rawValue)"])
            return OpenedStore(store: store, signal: signal, localSignal: signal, services: [StoreService { await store.close() }])
        case .postgres:
            guard let settings = config.postgres else { throw ConfigurationError("store = postgres needs postgres-url") }
            // Tags this process's notifications, so its own listener skips what its writer already woke.
            let nodeID = "\(ProcessInfo.processInfo.hostName)/\(getpid())/\(UInt32.random(in: 0...UInt32.max))"
            let signal = PostgresChangeSignal(settings: settings, nodeID: nodeID, logger: logger)
            let store = try await PostgresStreamStore(settings, signal: signal, nodeID: nodeID, logger: logger)
            logger.info("store open", metadata: ["hub.postgres": "\(settings.redacted)", "hub.pool": "\(settings.poolSize)", "hub.node": "\(nodeID)"])
            return OpenedStore(store: store, signal: signal, localSignal: signal.local, services: [StoreService { await store.close() }, signal])
        }
    }
}

/// Keeps the store open while the hub runs; closes it (finishing queued writes) last on shutdown.
struct StoreService: Service {
    let close: @Sendable () async -> Void
    func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}
