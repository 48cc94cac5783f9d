import ArgumentParser
import Foundation
import HubServer
import Logging

@main
struct Hubd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hubd",
        abstract: "EventHub: a durable event hub (Durable Streams over HTTP, SSE, long-poll).",
        discussion: """
            Every option can also be set in the YAML configuration file (same names) or with a HUB_* environment
            variable; flags win over the environment, the environment over the file:
              --config            HUB_CONFIG             default /etc/eventhub/hub.yaml if it exists
              --listen            HUB_LISTEN             default 127.0.0.1:4437
              --data-dir          HUB_DATA_DIR           default ./data
              --auth              HUB_AUTH               default tokens (open: no auth, for development only)
              --long-poll-timeout HUB_LONG_POLL_TIMEOUT  default 30s
              --log-level         HUB_LOG_LEVEL          default info
              --synchronous       HUB_SYNCHRONOUS        default normal
              --max-body-bytes    HUB_MAX_BODY_BYTES     default 16777216
              --admin-socket      HUB_ADMIN_SOCKET       default {data-dir}/admin.sock ('' = none)
              --rate-limit-token  HUB_RATE_LIMIT_TOKEN   default 10000 requests/s per token (0 = off)
              --rate-limit-address HUB_RATE_LIMIT_ADDRESS default 200 requests/s per address, anonymous (0 = off)
              --allow-query-tokens HUB_ALLOW_QUERY_TOKENS default false
              --metrics-require-token HUB_METRICS_REQUIRE_TOKEN default false
              --tls-listen        HUB_TLS_LISTEN         optional TLS listener HOST:PORT (with --tls-cert, --tls-key)
              --tls-cert          HUB_TLS_CERT           PEM certificate chain (reloaded on SIGHUP)
              --tls-key           HUB_TLS_KEY            PEM private key (reloaded on SIGHUP)

            In tokens mode the first start writes an admin token to {data-dir}/admin.token (mode 0600).

            Examples:
              hubd                                          # 127.0.0.1:4437, SQLite in ./data, bearer tokens
              hubd --listen 0.0.0.0:4437 --data-dir /var/lib/eventhub --synchronous full
              HUB_LONG_POLL_TIMEOUT=500ms hubd --listen 127.0.0.1:0

            Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT), 1 on a runtime failure, 78 on a bad configuration.
            """,
        version: HubVersion.current)

    @Option(help: "YAML configuration file (default /etc/eventhub/hub.yaml if present).") var config: String?
    @Flag(name: .customLong("print-config"), help: "Print the effective configuration (secrets redacted) and exit.") var printConfig = false
    @Flag(name: .customLong("check-config"), help: "Validate the configuration and exit: 0 if usable, 78 if not.") var checkConfig = false
    @Option(help: "HTTP listener as HOST:PORT (port 0 picks a free port).") var listen: String?
    @Option(name: .customLong("data-dir"), help: "Directory for the SQLite database.") var dataDir: String?
    @Option(help: "Auth mode: tokens (bearer tokens) or open (everything allowed; development only).") var auth: String?
    @Option(name: .customLong("long-poll-timeout"), help: "How long a long-poll waits for data, e.g. 500ms, 30s.") var longPollTimeout: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.") var logLevel: String?
    @Option(help: "SQLite synchronous mode: normal (survives kill -9) or full (also survives power loss).") var synchronous: String?
    @Option(name: .customLong("max-body-bytes"), help: "Largest request body in bytes; larger ones get 413.") var maxBodyBytes: String?
    @Option(name: .customLong("admin-socket"), help: "Local admin unix socket (file permissions are the auth); '' for none.") var adminSocket: String?
    @Option(name: .customLong("rate-limit-token"), help: "Requests per second per token (0 = unlimited).") var rateLimitToken: String?
    @Option(name: .customLong("rate-limit-address"), help: "Requests per second per client address for anonymous requests (0 = unlimited).")
    var rateLimitAddress: String?
    @Option(name: .customLong("allow-query-tokens"), help: "Accept ?access_token= (true/false); prefer tickets.") var allowQueryTokens: String?
    @Option(name: .customLong("metrics-require-token"), help: "GET /metrics needs a global admin token (true/false).") var metricsRequireToken: String?
    @Option(name: .customLong("tls-listen"), help: "Optional TLS listener as HOST:PORT (needs --tls-cert and --tls-key).") var tlsListen: String?
    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain for the TLS listener; reloaded on SIGHUP.") var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "PEM private key for the TLS listener; reloaded on SIGHUP.") var tlsKey: String?

    /// Resolves the configuration, builds the hub and runs it until SIGTERM/SIGINT.
    func run() async throws {
        var flags: [String: String] = [:]
        flags["listen"] = listen; flags["data-dir"] = dataDir; flags["auth"] = auth
        flags["long-poll-timeout"] = longPollTimeout; flags["log-level"] = logLevel
        flags["synchronous"] = synchronous; flags["max-body-bytes"] = maxBodyBytes; flags["admin-socket"] = adminSocket
        flags["rate-limit-token"] = rateLimitToken; flags["rate-limit-address"] = rateLimitAddress; flags["allow-query-tokens"] = allowQueryTokens
        flags["metrics-require-token"] = metricsRequireToken
        flags["tls-listen"] = tlsListen; flags["tls-cert"] = tlsCert; flags["tls-key"] = tlsKey
        let config: HubConfiguration
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
        let level = config.logLevel
        LoggingSystem.bootstrap { label in HubLogHandler(label: label, level: level) }
        let logger = Logger(label: "hubd")
        let hub: Hub
        do {
            hub = try await Hub.build(config, logger: logger)
        } catch let error as ConfigurationError {
            logger.critical("configuration error: \(error)")
            throw ExitCode(78)
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
