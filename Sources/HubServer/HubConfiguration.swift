import Foundation
import HubCore
import HubHTTP
import HubPostgres
import HubSQLite
import Logging

/// Everything `hubd` needs to run, validated. Built once at start from flags, `HUB_*` environment and defaults
/// (`HubConfiguration.resolve`); modules receive plain sub-structs.
public struct HubConfiguration: Sendable {
    public enum AuthMode: String, Sendable, CaseIterable {
        /// Everything allowed, for development and the conformance suite.
        case open
        /// Bearer tokens on every surface.
        case tokens
    }

    public var listenHost = "127.0.0.1"
    public var listenPort = 4437
    public var dataDirectory = "./data"
    public var auth = AuthMode.tokens
    /// Shared with the log handler, so a reload changes the level of every logger at once.
    public var logLevel = LogLevelBox(.info)
    public var synchronous = SQLiteStreamStore.Synchronous.normal
    /// Which backend holds the data: one SQLite file in the data directory, or a PostgreSQL database several nodes share.
    public var store = StoreKind.sqlite
    /// The PostgreSQL connection (`store = postgres`); its URL carries the password, which `effective` never shows.
    public var postgres: PostgresSettings?
    public var http = HTTPLimits()
    /// Requests per second per token (bursts of twice that); 0 = unlimited.
    public var rateLimitToken: Double = 10_000
    /// Requests per second per client address, for anonymous requests and failed credentials; 0 = unlimited.
    public var rateLimitAddress: Double = 200
    /// Accept `?access_token=` in URLs (tokens there leak into logs and browser history).
    public var allowQueryTokens = false
    /// `GET /metrics` needs a global admin token.
    public var metricsRequireToken = false
    /// Serve the hot routes (stream appends) from the event loop; off: every request goes through the router.
    public var hotPath = true
    /// Subscription webhooks may target loopback hosts (`http://localhost`, `127.0.0.0/8`, `::1`): development only.
    public var webhookAllowLoopback = false
    /// Subscription webhooks may target private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7).
    public var webhookAllowPrivate = false
    /// How clients reach this hub (`https://hub.example.com`): the base of callback URLs in webhook deliveries.
    /// nil: the Host of the request that created the subscription.
    public var publicURL: String?
    /// The optional TLS listener: address, PEM certificate chain and PEM private key (all three or none).
    public var tlsListen: (host: String, port: Int)?
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// The local admin unix socket; nil = `{data-dir}/admin.sock`, empty = none.
    public var adminSocket: String?
    /// The web console's files; nil = `/usr/share/eventhub/web` (packaged) or `./web` (a checkout), empty = no console.
    public var webDirectory: String?
    /// How often expired streams are removed from storage (expiry itself is checked on every access).
    public var expirySweepInterval: Duration = .seconds(30)
    /// How often slot retention (max age, max bytes) is applied; max records also holds at every commit.
    public var retentionInterval: Duration = .seconds(5)
    /// Longest graceful shutdown: live responses end at once, in-flight appends finish, then the store closes.
    public var shutdownGrace: Duration = .seconds(10)
    /// When set, a shutdown still running this long after it began ends the process (status 1) after logging so: a
    /// part that ignores cancellation must not keep hubd alive until the service manager kills it. hubd sets it
    /// (`shutdownGrace` + 10 s); hubs that tests run in-process leave it nil, since it would end the test runner.
    public var exitDeadline: Duration?
    /// Called with the bound port once the listener is up (tests bind port 0 and learn the real one here).
    public var onListening: (@Sendable (Int) -> Void)?
    /// Re-resolves the configuration from its sources (SIGHUP); nil when there is nothing to re-read.
    public var reload: (@Sendable () throws -> HubConfiguration)?

    public init() {}

    public enum StoreKind: String, Sendable, CaseIterable {
        case sqlite, postgres
    }

    public var databasePath: String { dataDirectory + "/hub.db" }
    /// The effective configuration by option name, as `--print-config` and `GET /v1/admin/config` show it.
    /// Secrets never appear: the PostgreSQL URL is shown without its password.
    public var effective: [String: String] {
        [
            "listen": "\(listenHost):\(listenPort)", "data-dir": dataDirectory, "auth": auth.rawValue,
            "long-poll-timeout": Self.formatDuration(http.longPollTimeout), "log-level": logLevel.value.rawValue, "synchronous": synchronous.rawValue,
            "max-body-bytes": String(http.maxBodyBytes), "admin-socket": adminSocketPath ?? "",
            "rate-limit-token": Self.formatRate(rateLimitToken), "rate-limit-address": Self.formatRate(rateLimitAddress),
            "allow-query-tokens": String(allowQueryTokens), "metrics-require-token": String(metricsRequireToken), "hot-path": String(hotPath),
            "webhook-allow-loopback": String(webhookAllowLoopback), "webhook-allow-private": String(webhookAllowPrivate), "public-url": publicURL ?? "",
            "tls-listen": tlsListen.map { "\($0.host):\($0.port)" } ?? "", "tls-cert": tlsCertificate ?? "", "tls-key": tlsKey ?? "",
            "max-message-bytes": String(http.maxMessageBytes), "dedup-window": Self.formatDuration(http.dedupWindow),
            "self-service-slots": String(http.selfServiceSlots), "self-service-per-hour": Self.formatRate(http.selfServicePerHour),
            "retention-interval": Self.formatDuration(retentionInterval), "ws-ping-interval": Self.formatDuration(http.webSocketPing),
            "ws-send-timeout": Self.formatDuration(http.webSocketSendTimeout), "consumer-ack-wait": Self.formatDuration(http.consumerAckWait),
            "consumer-max-in-flight": String(http.consumerMaxInFlight), "web-dir": webDirectoryPath ?? "",
            "store": store.rawValue, "postgres-url": postgres?.redacted ?? "", "postgres-pool-size": postgres.map { String($0.poolSize) } ?? "",
            "postgres-statement-timeout": postgres.map { Self.formatDuration($0.statementTimeout) } ?? "",
        ]
    }

    public static let packagedWebDirectory = "/usr/share/eventhub/web"

    /// Where the console's files are: the configured directory, else the packaged one, else `./web` when present.
    public var webDirectoryPath: String? {
        if let webDirectory { return webDirectory.isEmpty ? nil : webDirectory }
        for candidate in [Self.packagedWebDirectory, "web"] where FileManager.default.fileExists(atPath: candidate + "/index.html") {
            return candidate
        }
        return nil
    }

    public var adminSocketPath: String? {
        guard let adminSocket else { return dataDirectory + "/admin.sock" }
        return adminSocket.isEmpty ? nil : adminSocket
    }
}

/// A configuration value that cannot be used. `hubd` prints it and exits 78 (EX_CONFIG).
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension HubConfiguration {
    /// The options every source can set, by their flag name (without `--`). The environment name is
    /// `HUB_` + upper-cased name with `-` as `_` (`long-poll-timeout` → `HUB_LONG_POLL_TIMEOUT`).
    public static let optionNames = ["listen", "data-dir", "auth", "long-poll-timeout", "log-level", "synchronous", "max-body-bytes",
                                     "admin-socket", "rate-limit-token", "rate-limit-address", "allow-query-tokens",
                                     "metrics-require-token", "hot-path", "tls-listen", "tls-cert", "tls-key", "max-message-bytes", "dedup-window",
                                     "self-service-slots", "self-service-per-hour", "retention-interval", "ws-ping-interval", "ws-send-timeout",
                                     "consumer-ack-wait", "consumer-max-in-flight", "web-dir", "store", "postgres-url",
                                     "postgres-password-file", "postgres-pool-size", "postgres-statement-timeout",
                                     "webhook-allow-loopback", "webhook-allow-private", "public-url"]

    public static func environmentName(of option: String) -> String {
        "HUB_" + option.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// Layers `flags` over `environment` over the configuration `file` over defaults, and validates every value.
    public static func resolve(flags: [String: String], environment: [String: String], file: [String: String] = [:],
                               fileName: String = "the configuration file") throws(ConfigurationError) -> HubConfiguration {
        var config = HubConfiguration()
        func value(_ option: String) -> (String, String)? {
            if let v = flags[option] { return (v, "--\(option)") }
            let env = environmentName(of: option)
            if let v = environment[env], !v.isEmpty { return (v, env) }
            if let v = file[option] { return (v, "\(fileName): \(option)") }
            return nil
        }
        if let (v, source) = value("listen") {
            guard let (host, port) = parseListen(v) else { throw ConfigurationError("\(source): '\(v)' is not HOST:PORT (e.g. 127.0.0.1:4437, [::1]:4437, 0.0.0.0:0)") }
            config.listenHost = host; config.listenPort = port
        }
        if let (v, source) = value("data-dir") {
            guard !v.isEmpty else { throw ConfigurationError("\(source): must not be empty") }
            config.dataDirectory = v
        }
        if let (v, source) = value("auth") {
            guard let mode = AuthMode(rawValue: v) else { throw ConfigurationError("\(source): '\(v)' is not open or tokens") }
            config.auth = mode
        }
        if let (v, source) = value("long-poll-timeout") {
            guard let d = parseDuration(v), d >= .milliseconds(1), d <= .seconds(3600) else {
                throw ConfigurationError("\(source): '\(v)' is not a duration from 1ms to 1h (e.g. 500ms, 30s, 2m)")
            }
            config.http.longPollTimeout = d
        }
        if let (v, source) = value("log-level") {
            guard let level = Logger.Level(rawValue: v) else {
                throw ConfigurationError("\(source): '\(v)' is not one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            config.logLevel = LogLevelBox(level)
        }
        if let (v, source) = value("synchronous") {
            guard let mode = SQLiteStreamStore.Synchronous(rawValue: v) else { throw ConfigurationError("\(source): '\(v)' is not normal or full") }
            config.synchronous = mode
        }
        if let (v, source) = value("max-body-bytes") {
            guard let n = Int(v), n >= 1024, n <= 1 << 30 else { throw ConfigurationError("\(source): '\(v)' is not a byte count from 1024 to 1073741824") }
            config.http.maxBodyBytes = n
        }
        if let (v, source) = value("web-dir") {
            guard v.isEmpty || FileManager.default.fileExists(atPath: v + "/index.html") else {
                throw ConfigurationError("\(source): '\(v)' holds no console (no index.html); '' turns the console off")
            }
            config.webDirectory = v
        }
        if let (v, _) = value("admin-socket") {
            guard v.utf8.count < 104 else { throw ConfigurationError("--admin-socket: '\(v)' is longer than a unix socket path may be (103 bytes)") }
            config.adminSocket = v
        }
        for (option, keyPath) in [("rate-limit-token", \HubConfiguration.rateLimitToken), ("rate-limit-address", \HubConfiguration.rateLimitAddress)] {
            if let (v, source) = value(option) {
                guard let n = Double(v), n >= 0, n <= 10_000_000 else { throw ConfigurationError("\(source): '\(v)' is not a request rate per second (0 = unlimited)") }
                config[keyPath: keyPath] = n
            }
        }
        for (option, keyPath) in [("allow-query-tokens", \HubConfiguration.allowQueryTokens), ("metrics-require-token", \HubConfiguration.metricsRequireToken),
                                  ("hot-path", \HubConfiguration.hotPath), ("webhook-allow-loopback", \HubConfiguration.webhookAllowLoopback),
                                  ("webhook-allow-private", \HubConfiguration.webhookAllowPrivate)] {
            if let (v, source) = value(option) {
                guard let flag = Bool(v) else { throw ConfigurationError("\(source): '\(v)' is not true or false") }
                config[keyPath: keyPath] = flag
            }
        }
        if let (v, source) = value("public-url"), !v.isEmpty {
            guard let url = URL(string: v), ["http", "https"].contains(url.scheme ?? ""), url.host?.isEmpty == false,
                  url.path.isEmpty || url.path == "/", url.query == nil, url.user == nil else {
                throw ConfigurationError("\(source): '\(v)' is not a scheme and authority such as https://hub.example.com")
            }
            config.publicURL = v.hasSuffix("/") ? String(v.dropLast()) : v
        }
        if let (v, source) = value("max-message-bytes") {
            guard let n = Int(v), n >= 64, n <= 64 << 20 else { throw ConfigurationError("\(source): '\(v)' is not a byte count from 64 to 67108864") }
            config.http.maxMessageBytes = n
        }
        if let (v, source) = value("consumer-max-in-flight") {
            guard let n = Int(v), n >= 1, n <= 100_000 else { throw ConfigurationError("\(source): '\(v)' is not a count from 1 to 100000") }
            config.http.consumerMaxInFlight = n
        }
        if let (v, source) = value("self-service-per-hour") {
            guard let n = Double(v), n > 0, n <= 1_000_000 else { throw ConfigurationError("\(source): '\(v)' is not a positive number of allocations per hour") }
            config.http.selfServicePerHour = n
        }
        if let (v, source) = value("self-service-slots") {
            guard let flag = Bool(v) else { throw ConfigurationError("\(source): '\(v)' is not true or false") }
            config.http.selfServiceSlots = flag
        }
        let durations: [(String, WritableKeyPath<HubConfiguration, Duration>, Duration, Duration)] = [
            ("dedup-window", \.http.dedupWindow, .zero, .seconds(7 * 86_400)),
            ("retention-interval", \.retentionInterval, .milliseconds(100), .seconds(3600)),
            ("ws-ping-interval", \.http.webSocketPing, .seconds(1), .seconds(3600)),
            ("ws-send-timeout", \.http.webSocketSendTimeout, .milliseconds(100), .seconds(3600)),
            ("consumer-ack-wait", \.http.consumerAckWait, .milliseconds(100), .seconds(3600)),
        ]
        for (option, keyPath, low, high) in durations {
            if let (v, source) = value(option) {
                guard let d = parseDuration(v), d >= low, d <= high else {
                    throw ConfigurationError("\(source): '\(v)' is not a duration from \(formatDuration(low)) to \(formatDuration(high)) (e.g. 500ms, 30s, 2m)")
                }
                config[keyPath: keyPath] = d
            }
        }
        if let (v, source) = value("tls-listen"), !v.isEmpty {
            guard let (host, port) = parseListen(v) else { throw ConfigurationError("\(source): '\(v)' is not HOST:PORT") }
            config.tlsListen = (host, port)
        }
        if let (v, _) = value("tls-cert"), !v.isEmpty { config.tlsCertificate = v }
        if let (v, _) = value("tls-key"), !v.isEmpty { config.tlsKey = v }
        try resolveStore(&config, value)
        let tlsParts = [config.tlsListen != nil, config.tlsCertificate != nil, config.tlsKey != nil]
        guard tlsParts.allSatisfy({ $0 }) || !tlsParts.contains(true) else {
            throw ConfigurationError("tls-listen, tls-cert and tls-key go together: set all three for the TLS listener, or none")
        }
        return config
    }

    /// `store` and the PostgreSQL options, which only mean something together.
    private static func resolveStore(_ config: inout HubConfiguration, _ anyValue: (String) -> (String, String)?) throws(ConfigurationError) {
        // Empty means unset, as `--print-config` writes the PostgreSQL options of an SQLite hub.
        func value(_ option: String) -> (String, String)? { anyValue(option).flatMap { $0.0.isEmpty ? nil : $0 } }
        if let (v, source) = value("store") {
            guard let kind = StoreKind(rawValue: v) else { throw ConfigurationError("\(source): '\(v)' is not sqlite or postgres") }
            config.store = kind
        }
        let postgresOptions = ["postgres-url", "postgres-password-file", "postgres-pool-size", "postgres-statement-timeout"]
        guard config.store == .postgres else {
            if let option = postgresOptions.first(where: { value($0) != nil }), let (_, source) = value(option) {
                throw ConfigurationError("\(source): PostgreSQL options need store = postgres")
            }
            return
        }
        guard let (url, urlSource) = value("postgres-url") else {
            throw ConfigurationError("store = postgres needs postgres-url (e.g. postgres://hub@db.example:5432/hub?sslmode=verify-full)")
        }
        var poolSize = 10
        if let (v, source) = value("postgres-pool-size") {
            guard let n = Int(v), (1...1000).contains(n) else { throw ConfigurationError("\(source): '\(v)' is not a connection count from 1 to 1000") }
            poolSize = n
        }
        var statementTimeout = Duration.seconds(5)
        if let (v, source) = value("postgres-statement-timeout") {
            guard let d = parseDuration(v), d >= .milliseconds(100), d <= .seconds(600) else {
                throw ConfigurationError("\(source): '\(v)' is not a duration from 100ms to 600s")
            }
            statementTimeout = d
        }
        var settings: PostgresSettings
        do {
            settings = try PostgresSettings(url: url, poolSize: poolSize, statementTimeout: statementTimeout)
        } catch {
            throw ConfigurationError("\(urlSource): \(error)")
        }
        if let (path, source) = value("postgres-password-file") {
            // A file (a systemd credential, say) keeps the password out of the URL, the environment and `ps`.
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ConfigurationError("\(source): cannot read '\(path)'") }
            settings.password = text.trimmingCharacters(in: .newlines)
        }
        config.postgres = settings
    }

    /// `host:port`, `[v6]:port` or `:port` (all interfaces).
    static func parseListen(_ text: String) -> (String, Int)? {
        let host: Substring, port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon].isEmpty ? "0.0.0.0" : text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let p = Int(port), (0...65535).contains(p) else { return nil }
        return (String(host), p)
    }

    /// The inverse of `parseDuration` for what it produced: `30s`, `500ms`.
    static func formatDuration(_ d: Duration) -> String {
        let ms = d.milliseconds
        return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
    }

    static func formatRate(_ rate: Double) -> String {
        rate == rate.rounded() ? String(Int64(rate)) : String(rate)
    }

    /// `500ms`, `30s`, `2m`, `1h` (a bare number is seconds).
    public static func parseDuration(_ text: String) -> Duration? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            if suffix == "s" && number.hasSuffix("m") { continue }
            guard let n = Int64(number), n >= 0, n <= 1_000_000_000 else { return nil }
            return .milliseconds(n * factor)
        }
        guard let n = Int64(text), n >= 0, n <= 1_000_000_000 else { return nil }
        return .seconds(n)
    }
}
