import Foundation
import HubCore
import HubHTTP
import HubSystemd
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The composition root: the only place that names concrete backends. `hubd` runs it, and so do integration tests
/// (with port 0 and `onListening`).
public struct Hub: Sendable {
    public let group: ServiceGroup
    public let signal: LocalChangeSignal
    public let metrics: HubMetrics

    /// Live readers waiting for data: on the change signal, or parked at a stream's tail on the WebSocket push path
    /// (whose dispatcher's own wait on the signal is not counted).
    public var liveWaiting: Int { signal.waiterCount + metrics.parkedAtTail }

    /// Opens and migrates the store, then assembles the HTTP server. Throws before anything listens when the
    /// store cannot be opened (for example a schema newer than this binary).
    public static func build(_ config: HubConfiguration, logger: Logger) async throws -> Hub {
        if config.auth == .open {
            logger.warning("auth mode is OPEN: anyone who can reach \(config.listenHost):\(config.listenPort) can read, write and delete every stream")
        }
        do {
            // The store, the admin token and the admin socket live here: only the owner may list or open it.
            // An existing directory keeps the mode its operator gave it.
            try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw ConfigurationError("cannot create data directory \(config.dataDirectory): \(error.localizedDescription)")
        }
        let opened = try await OpenedStore.open(config, logger: logger)
        let store = opened.store, signal = opened.signal, localSignal = opened.localSignal

        if config.auth == .tokens { try await AdminBootstrap.ensureAdminToken(store: store, dataDirectory: config.dataDirectory, logger: logger) }
        let auth = Authenticator(configuration: AuthConfiguration(mode: config.auth == .open ? .open : .tokens, allowQueryTokens: config.allowQueryTokens,
                                                                  tokenRate: config.rateLimitToken, addressRate: config.rateLimitAddress), store: store)
        let metrics = HubMetrics(version: HubVersion.current)
        let httpListener = NIOLockedValueBox<String?>(nil)
        let facts = ServerFacts(version: HubVersion.current, startedAtMs: Int64(Date().timeIntervalSince1970 * 1000),
                                effectiveConfig: config.effective, liveReaders: { localSignal.waiterCount + metrics.parkedAtTail },
                                httpListener: { httpListener.withLockedValue { $0 } })
        var console = ConsoleAssets.none
        if let directory = config.webDirectoryPath {
            do {
                console = try ConsoleAssets.load(directory: directory)
                logger.info("console", metadata: ["hub.web-dir": "\(directory)", "hub.bytes": "\(console.totalBytes)"])
            } catch {
                throw ConfigurationError("--web-dir: \(error)")
            }
        }
        let subscriptions = SubscriptionService(
            store: store, signal: localSignal,
            settings: SubscriptionSettings(webhookURLs: WebhookURLPolicy(allowLoopback: config.webhookAllowLoopback, allowPrivate: config.webhookAllowPrivate),
                                           publicURL: config.publicURL),
            logger: logger)
        // One set of push groups for the router and the hot path: a long-poll the router parked is what the next poll
        // on the hot path joins.
        let reads = StreamReads(store: store, signal: signal, limits: config.http, metrics: metrics)
        let router = buildRouter(store: store, signal: signal, limits: config.http, auth: auth, facts: facts, metrics: metrics,
                                 metricsRequireToken: config.metricsRequireToken, console: console, subscriptions: subscriptions, reads: reads)
        // Ready once every listener is up (the HTTP port and the admin socket): tests learn the port, systemd gets READY=1.
        let notifier = SystemdNotifier()
        let onListening = config.onListening
        // Socket activation: adopt what systemd passed (named "http" and "admin", or one unnamed socket for HTTP);
        // otherwise bind from the configuration. Both go through the same server code.
        let activated = ListenFDs.take()
        let httpTarget: ListenTarget = activated.socket(named: "http", fallbackToFirstUnnamed: true).map { .adopted(fd: $0, name: "http") }
            ?? .address(host: config.listenHost, port: config.listenPort)
        let adminTarget: ListenTarget? = activated.socket(named: "admin", fallbackToFirstUnnamed: false).map { .adopted(fd: $0, name: "admin") }
            ?? config.adminSocketPath.map { .unixPath($0) }
        var tls: (target: ListenTarget, certificates: TLSCertificates)?
        if let listen = config.tlsListen, let certificate = config.tlsCertificate, let key = config.tlsKey {
            let target: ListenTarget = activated.socket(named: "https", fallbackToFirstUnnamed: false).map { .adopted(fd: $0, name: "https") }
                ?? .address(host: listen.host, port: listen.port)
            tls = (target, try TLSCertificates(certificate: certificate, key: key))
        }
        let tlsCertificates = tls?.certificates
        let ready = ListenerGate(expected: 1 + (adminTarget == nil ? 0 : 1) + (tls == nil ? 0 : 1)) { port in
            notifier.send(.ready, .status("serving on \(httpTarget)"))
            onListening?(port)
        }
        // The network listeners serve the hot routes from their event loops; the admin socket has only the router.
        let hotPath = config.hotPath ? HotPath(router: HotPathRouter(store: store, auth: auth, reads: reads), limits: config.http, metrics: metrics, logger: logger) : nil
        var servers: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: HTTPServerService(target: httpTarget, responder: router.buildResponder(), logger: logger, metrics: metrics, webSocket: config.http.webSocketSettings,
                                             hotPath: hotPath) { channel in
                let port = channel.localAddress?.port ?? 0
                if let ip = channel.localAddress?.ipAddress {
                    httpListener.withLockedValue { $0 = ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)" }
                }
                logger.info("listening", metadata: ["hub.address": "\(channel.localAddress?.description ?? "?")", "hub.port": "\(port)",
                                                    "hub.listener": "\(httpTarget)"])
                ready.arrived(port: port)
            }),
        ]
        if let tls {
            var server = HTTPServerService(target: tls.target, responder: router.buildResponder(), logger: logger, metrics: metrics, webSocket: config.http.webSocketSettings,
                                           hotPath: hotPath) { channel in
                logger.info("listening with TLS", metadata: ["hub.listener": "\(tls.target)", "hub.tls-port": "\(channel.localAddress?.port ?? 0)"])
                ready.arrived(port: nil)
            }
            server.tls = tls.certificates
            servers.append(.init(service: server))
        }
        if let adminTarget {
            // The local admin socket: whoever can open the file is an admin, so only the owner can (0600).
            let localRouter = buildRouter(store: store, signal: signal, limits: config.http, auth: auth, facts: facts, metrics: metrics, localAdmin: true,
                                          subscriptions: subscriptions)
            servers.append(.init(service: HTTPServerService(target: adminTarget, responder: localRouter.buildResponder(), logger: logger, metrics: metrics, webSocket: config.http.webSocketSettings) { _ in
                if case .unixPath(let path) = adminTarget { chmod(path, 0o600) }
                logger.info("admin socket", metadata: ["hub.listener": "\(adminTarget)"])
                ready.arrived(port: nil)
            }))
        }
        var groupConfig = ServiceGroupConfiguration(
            services: opened.services.map { .init(service: $0) } + servers + [
                .init(service: subscriptions),
                .init(service: ExpirySweepService(store: store, interval: config.expirySweepInterval, logger: logger)),
                .init(service: RetentionService(store: store, interval: config.retentionInterval, dedupWindow: config.http.dedupWindow,
                                                metrics: metrics, logger: logger)),
                .init(service: MemoryTrimService()),
                .init(service: WatchdogService(notifier: notifier) { "serving; \(localSignal.waiterCount) live readers waiting" }),
                .init(service: ReloadService(notifier: notifier, logger: logger, reload: config.reload) { reloaded in
                    // Certificates first: if they do not load, nothing of the new configuration applies.
                    try tlsCertificates?.reload()
                    config.logLevel.value = reloaded.logLevel.value
                    auth.tokenLimiter.update(rate: reloaded.rateLimitToken)
                    auth.addressLimiter.update(rate: reloaded.rateLimitAddress)
                }),
                // Last in the list, so stopped first: live responses end before the servers drain requests.
                .init(service: LiveShutdownService(signal: signal, notifier: notifier, exitDeadline: config.exitDeadline, logger: logger)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        groupConfig.maximumGracefulShutdownDuration = config.shutdownGrace
        return Hub(group: ServiceGroup(configuration: groupConfig), signal: localSignal, metrics: metrics)
    }

    public func run() async throws { try await group.run() }
    public func shutdown() async { await group.triggerGracefulShutdown() }
}

/// On graceful shutdown, tells systemd (STOPPING=1) and ends every long-poll and SSE response so the HTTP server
/// can drain quickly; with an exit deadline, makes sure the process ends by then.
struct LiveShutdownService: Service {
    let signal: any ChangeSignal
    let notifier: SystemdNotifier
    let exitDeadline: Duration?
    let logger: Logger
    func run() async throws {
        try? await gracefulShutdown()
        notifier.send(.stopping, .status("shutting down"))
        if let exitDeadline { Self.exit(after: exitDeadline, logger: logger) }
        signal.shutdown()
    }

    /// A thread of its own rather than a task: whatever holds up the shutdown may be holding the task pool too.
    static func exit(after limit: Duration, logger: Logger) {
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: limit.timeInterval)
            logger.critical("shutdown did not finish within \(limit) of SIGTERM; exiting without waiting for the rest")
            _exit(1)
        }
    }
}

/// SIGHUP: re-reads the configuration and applies what can change while running (TLS certificates, log level, rate
/// limits), with
/// RELOADING=1 … READY=1 around it. A bad new configuration is logged and the running one kept.
struct ReloadService: Service {
    let notifier: SystemdNotifier
    let logger: Logger
    let reload: (@Sendable () throws -> HubConfiguration)?
    let apply: @Sendable (HubConfiguration) throws -> Void

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            notifier.send(.reloading)
            do {
                guard let reload else { throw ConfigurationError("this hubd was started without a configuration source to re-read") }
                let configuration = try reload()
                try apply(configuration)
                logger.notice("configuration reloaded", metadata: ["hub.log-level": "\(configuration.logLevel.value)"])
                notifier.send(.ready, .status("configuration reloaded"))
            } catch {
                logger.error("reload failed; keeping the running configuration", metadata: ["error": "\(error)"])
                notifier.send(.ready, .status("reload failed: \(error)"))
            }
        }
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

/// Every `interval`, removes streams whose TTL or Expires-At passed (in batches, so one sweep never holds the writer
/// for long), so expired data does not wait for the next access to be deleted.
struct ExpirySweepService: Service {
    let store: any ExpirySweeping
    let interval: Duration
    let logger: Logger
    static let batch = 500

    func run() async throws {
        // The sleep ends at once on graceful shutdown: a service that waits out its interval would delay the stop.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                await sweep()
            }
        }
    }

    private func sweep() async {
        do {
            var removed = 0
            while true {
                let n = try await store.sweepExpired(limit: Self.batch)
                removed += n
                if n < Self.batch { break }
                await Task.yield()
            }
            if removed > 0 { logger.info("removed expired streams", metadata: ["hub.count": "\(removed)"]) }
        } catch {
            logger.error("expiry sweep failed", metadata: ["error": "\(error)"])
        }
    }
}

/// Every `interval`, applies each slot's retention (age, bytes, records) and forgets dedup keys past their window.
/// Readers whose cursor falls below a new floor get the uniform below-retention answer on their next read.
struct RetentionService: Service {
    let store: any SlotLog
    let interval: Duration
    let dedupWindow: Duration
    let metrics: HubMetrics
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                do {
                    let removed = try await store.applyRetention(dedupWindowMs: Int64(dedupWindow.components.seconds * 1000))
                    metrics.retentionSwept(removed: removed)
                    if removed > 0 { logger.debug("retention removed records", metadata: ["hub.count": "\(removed)"]) }
                } catch {
                    logger.error("retention sweep failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
