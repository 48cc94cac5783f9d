import Foundation
import HubCore
import HubHTTP
import HubSQLite
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The composition root: the only place that names concrete backends. `hubd` runs it, and so do integration tests
/// (with port 0 and `onListening`).
public struct Hub: Sendable {
    public let group: ServiceGroup
    public let signal: LocalChangeSignal

    /// Opens and migrates the store, then assembles the HTTP server. Throws before anything listens when the
    /// store cannot be opened (for example a schema newer than this binary).
    public static func build(_ config: HubConfiguration, logger: Logger) async throws -> Hub {
        if config.auth == .open {
            logger.warning("auth mode is OPEN: anyone who can reach \(config.listenHost):\(config.listenPort) can read, write and delete every stream")
        }
        do {
            try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
        } catch {
            throw ConfigurationError("cannot create data directory \(config.dataDirectory): \(error.localizedDescription)")
        }
        let signal = LocalChangeSignal()
        let store = try SQLiteStreamStore(.init(path: config.databasePath, synchronous: config.synchronous), signal: signal)
        logger.info("store open", metadata: ["hub.db": "\(config.databasePath)", "hub.synchronous": "\(config.synchronous.rawValue)"])

        if config.auth == .tokens { try await AdminBootstrap.ensureAdminToken(store: store, dataDirectory: config.dataDirectory, logger: logger) }
        let auth = Authenticator(configuration: AuthConfiguration(mode: config.auth == .open ? .open : .tokens, allowQueryTokens: config.allowQueryTokens,
                                                                  tokenRate: config.rateLimitToken, addressRate: config.rateLimitAddress), store: store)
        let facts = ServerFacts(version: HubVersion.current, startedAtMs: Int64(Date().timeIntervalSince1970 * 1000),
                                effectiveConfig: config.effective, liveReaders: { signal.waiterCount })
        let router = buildRouter(store: store, signal: signal, limits: config.http, auth: auth, facts: facts)
        // Ready (for tests now, systemd later) once every listener is up: the HTTP port and the admin socket.
        let ready = ListenerGate(expected: config.adminSocketPath == nil ? 1 : 2, onReady: config.onListening)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(config.listenHost, port: config.listenPort), serverName: "hubd"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("listening", metadata: ["hub.address": "\(channel.localAddress?.description ?? "?")", "hub.port": "\(port)"])
                ready.arrived(port: port)
            },
            logger: logger)
        var servers: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: app)]
        if let socket = config.adminSocketPath {
            // The local admin socket: whoever can open the file is an admin, so only the owner can (0600).
            unlink(socket)
            let local = Application(
                router: buildRouter(store: store, signal: signal, limits: config.http, auth: auth, facts: facts, localAdmin: true),
                configuration: .init(address: .unixDomainSocket(path: socket), serverName: "hubd"),
                onServerRunning: { _ in
                    chmod(socket, 0o600)
                    logger.info("admin socket", metadata: ["hub.socket": "\(socket)"])
                    ready.arrived(port: nil)
                },
                logger: logger)
            servers.append(.init(service: local))
        }
        var groupConfig = ServiceGroupConfiguration(
            services: [.init(service: StoreService(store: store))] + servers + [
                // Last in the list, so stopped first: live responses end before the servers drain requests.
                .init(service: LiveShutdownService(signal: signal)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        groupConfig.maximumGracefulShutdownDuration = config.shutdownGrace
        return Hub(group: ServiceGroup(configuration: groupConfig), signal: signal)
    }

    public func run() async throws { try await group.run() }
    public func shutdown() async { await group.triggerGracefulShutdown() }
}

/// Keeps the store open while the hub runs; closes it (finishing queued writes) last on shutdown.
struct StoreService: Service {
    let store: SQLiteStreamStore
    func run() async throws {
        try? await gracefulShutdown()
        await store.close()
    }
}

/// On graceful shutdown, ends every long-poll and SSE response so the HTTP server can drain quickly.
struct LiveShutdownService: Service {
    let signal: any ChangeSignal
    func run() async throws {
        try? await gracefulShutdown()
        signal.shutdown()
    }
}

/// Calls `onReady` with the HTTP port once `expected` listeners have reported.
final class ListenerGate: Sendable {
    private let state: Mutex<(count: Int, port: Int?)> = Mutex((0, nil))
    private let expected: Int
    private let onReady: (@Sendable (Int) -> Void)?

    init(expected: Int, onReady: (@Sendable (Int) -> Void)?) { self.expected = expected; self.onReady = onReady }

    func arrived(port: Int?) {
        let done = state.withLock { state -> Int? in
            state.count += 1
            if let port { state.port = port }
            return state.count == expected ? state.port ?? 0 : nil
        }
        if let done { onReady?(done) }
    }
}
