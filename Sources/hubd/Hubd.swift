import ArgumentParser
import Foundation
import HubCore
import HubServer
import Logging

@main
struct Hubd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hubd",
        abstract: "EventHub: a durable event hub (Durable Streams, events over SSE, long-poll and WebSocket).",
        discussion: """
            Settings come from flags, then HUB_* environment variables, then the YAML
            file (--config, HUB_CONFIG, or /etc/eventhub/hub.yaml when it exists), then
            defaults. Every option is also a file key (its name) and an environment
            variable (HUB_ + the name in upper case with "-" as "_"), for example
            --long-poll-timeout, long-poll-timeout:, HUB_LONG_POLL_TIMEOUT.

            In tokens mode (the default) the first start writes an admin token to
            {data-dir}/admin.token (mode 0600). SIGHUP reloads the log level, the rate
            limits and the TLS certificates. Under systemd, hubd sends READY/STATUS/
            WATCHDOG/RELOADING/STOPPING and adopts the sockets systemd passes.

            Examples:
              hubd                                   # 127.0.0.1:4437, ./data, tokens
              hubd --config /etc/eventhub/hub.yaml --check-config
              hubd --listen 0.0.0.0:4437 --data-dir /var/lib/eventhub
              HUB_LONG_POLL_TIMEOUT=500ms hubd --listen 127.0.0.1:0 --auth open
              HUB_POSTGRES_URL=postgres://hub:secret@db:5432/hub hubd --store postgres

            Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT), 1 on a runtime
            failure, 78 on a bad configuration.
            """,
        version: HubVersion.current)

    @Option(help: "YAML configuration file (default: /etc/eventhub/hub.yaml if present).") var config: String?
    @Flag(name: .customLong("print-config"), help: "Print the effective configuration (secrets redacted) and exit.") var printConfig = false
    @Flag(name: .customLong("check-config"), help: "Validate the configuration and exit: 0 if usable, 78 if not.") var checkConfig = false
    @Option(help: "HTTP listener HOST:PORT; port 0 picks a free one (default: 127.0.0.1:4437).") var listen: String?
    @Option(name: .customLong("data-dir"), help: "Directory of the SQLite database and admin.token, created mode 0700 (default: ./data).") var dataDir: String?
    @Option(help: "tokens (bearer tokens, the default) or open (no auth; development only).") var auth: String?
    @Option(name: .customLong("long-poll-timeout"), help: "How long a long-poll waits for data: 500ms, 30s, 2m (default: 30s).") var longPollTimeout: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default: info).") var logLevel: String?
    @Option(help: "normal (acknowledged appends survive kill -9, the default) or full (also power loss).") var synchronous: String?
    @Option(help: "sqlite (one file in --data-dir, the default) or postgres (several nodes on one database; needs --postgres-url).") var store: String?
    @Option(name: .customLong("postgres-url"), help: "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=verify-full&sslrootcert=FILE] (store = postgres).")
    var postgresUrl: String?
    @Option(name: .customLong("postgres-password-file"), help: "File holding the database password, instead of putting it in the URL.")
    var postgresPasswordFile: String?
    @Option(name: .customLong("postgres-pool-size"), help: "Database connections per node, plus one for LISTEN (default: 10).") var postgresPoolSize: String?
    @Option(name: .customLong("postgres-statement-timeout"), help: "Longest statement, and longest wait for a connection; then 503 (default: 5s).")
    var postgresStatementTimeout: String?
    @Option(name: .customLong("max-body-bytes"), help: "Largest request body in bytes; larger get 413 (default: 16777216).") var maxBodyBytes: String?
    @Option(name: .customLong("admin-socket"), help: "Local admin unix socket, mode 0600; '' for none (default: {data-dir}/admin.sock).") var adminSocket: String?
    @Option(name: .customLong("web-dir"), help: "The web console's files, served at /console/; '' for no console (default: /usr/share/eventhub/web, else ./web).") var webDir: String?
    @Option(name: .customLong("rate-limit-token"), help: "Requests per second per token; 0 = unlimited (default: 10000).") var rateLimitToken: String?
    @Option(name: .customLong("rate-limit-address"), help: "Requests/s per address for anonymous and failed requests; 0 = unlimited (default: 200).")
    var rateLimitAddress: String?
    @Option(name: .customLong("allow-query-tokens"), help: "Accept ?access_token= in URLs: true or false (default: false; prefer tickets).") var allowQueryTokens: String?
    @Option(name: .customLong("metrics-require-token"), help: "GET /metrics needs a global admin token: true or false (default: false).") var metricsRequireToken: String?
    @Option(name: .customLong("hot-path"), help: "Answer stream appends, and long-poll and SSE reads at a stream's tail, from the event loop, without the router: true or false (default: true).") var hotPath: String?
    @Option(name: .customLong("webhook-allow-loopback"), help: "Subscription webhooks may target localhost/127.0.0.0/8/::1 (development): true or false (default: false).")
    var webhookAllowLoopback: String?
    @Option(name: .customLong("webhook-allow-private"), help: "Subscription webhooks may target private ranges (10/8, 172.16/12, 192.168/16, fc00::/7): true or false (default: false).")
    var webhookAllowPrivate: String?
    @Option(name: .customLong("public-url"), help: "How clients reach this hub, e.g. https://hub.example.com: the base of webhook callback URLs (default: the Host of the subscribing request).")
    var publicURL: String?
    @Option(name: .customLong("tls-listen"), help: "Optional TLS listener as HOST:PORT (needs --tls-cert and --tls-key).") var tlsListen: String?
    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain for the TLS listener; reloaded on SIGHUP.") var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "PEM private key for the TLS listener; reloaded on SIGHUP.") var tlsKey: String?
    @Option(name: .customLong("max-message-bytes"), help: "Largest single event a slot accepts unless it sets its own (default: 1048576).")
    var maxMessageBytes: String?
    @Option(name: .customLong("dedup-window"), help: "How long an event_id/Idempotency-Key deduplicates (default: 10m).") var dedupWindow: String?
    @Option(name: .customLong("self-service-slots"), help: "Open POST /v1/slot/allocate: true or false (default: false).") var selfServiceSlots: String?
    @Option(name: .customLong("self-service-per-hour"), help: "Self-service allocations per hour per client address (default: 10).")
    var selfServicePerHour: String?
    @Option(name: .customLong("retention-interval"), help: "How often slot retention (age, bytes) is applied (default: 5s).") var retentionInterval: String?
    @Option(name: .customLong("ws-ping-interval"), help: "WebSocket ping interval; no pong by the next ping closes (default: 25s).") var wsPingInterval: String?
    @Option(name: .customLong("ws-send-timeout"), help: "A WebSocket send pending this long closes with 4008 (default: 30s).") var wsSendTimeout: String?
    @Option(name: .customLong("consumer-ack-wait"), help: "Redeliver a consumer's unacknowledged frames after (default: 30s).") var consumerAckWait: String?
    @Option(name: .customLong("consumer-max-in-flight"), help: "Most unacknowledged frames per consumer connection (default: 1000).")
    var consumerMaxInFlight: String?

    /// Resolves the configuration, builds the hub and runs it until SIGTERM/SIGINT.
    func run() async throws {
        var flags: [String: String] = [:]
        flags["listen"] = listen; flags["data-dir"] = dataDir; flags["auth"] = auth
        flags["long-poll-timeout"] = longPollTimeout; flags["log-level"] = logLevel
        flags["synchronous"] = synchronous; flags["max-body-bytes"] = maxBodyBytes; flags["admin-socket"] = adminSocket; flags["web-dir"] = webDir
        flags["rate-limit-token"] = rateLimitToken; flags["rate-limit-address"] = rateLimitAddress; flags["allow-query-tokens"] = allowQueryTokens
        flags["metrics-require-token"] = metricsRequireToken
        flags["hot-path"] = hotPath
        flags["webhook-allow-loopback"] = webhookAllowLoopback; flags["webhook-allow-private"] = webhookAllowPrivate; flags["public-url"] = publicURL
        flags["tls-listen"] = tlsListen; flags["tls-cert"] = tlsCert; flags["tls-key"] = tlsKey
        flags["max-message-bytes"] = maxMessageBytes; flags["dedup-window"] = dedupWindow; flags["self-service-slots"] = selfServiceSlots
        flags["self-service-per-hour"] = selfServicePerHour; flags["retention-interval"] = retentionInterval; flags["ws-ping-interval"] = wsPingInterval
        flags["ws-send-timeout"] = wsSendTimeout; flags["consumer-ack-wait"] = consumerAckWait; flags["consumer-max-in-flight"] = consumerMaxInFlight
        flags["store"] = store; flags["postgres-url"] = postgresUrl; flags["postgres-password-file"] = postgresPasswordFile
        flags["postgres-pool-size"] = postgresPoolSize; flags["postgres-statement-timeout"] = postgresStatementTimeout
        var config: HubConfiguration
        do {
            config = try HubConfiguration.load(flags: flags, configPath: self.config, environment: ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data("hubd: configuration error: \(error)\n".utf8))
            throw ExitCode(78)
        }
        if printConfig {
            print(config.effective.sorted { $0.key < $1.key }.map { "\($0.key): \(Self.yamlQuoted($0.value))" }.joined(separator: "\n"))
            return
        }
        if checkConfig {
            FileHandle.standardError.write(Data("hubd: configuration OK\n".utf8))
            return
        }
        config.exitDeadline = config.shutdownGrace + .seconds(10)
        EventLoopSizing.matchCPUAffinity()
        let level = config.logLevel
        LoggingSystem.bootstrap { label in HubLogHandler(label: label, level: level) }
        let logger = Logger(label: "hubd")
        let hub: Hub
        do {
            hub = try await Hub.build(config, logger: logger)
        } catch let error as ConfigurationError {
            logger.critical("configuration error: \(error)")
            throw ExitCode(78)
        } catch StoreError.unavailable(let why) {
            logger.critical("cannot start: \(why)")
            throw ExitCode(1)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        try await hub.run()
    }

    /// A YAML scalar that reads back as the same string.
    static func yamlQuoted(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
