import Foundation
import HubCore
import NIOSSL
import PostgresNIO

/// Where the PostgreSQL backend connects and how (`--postgres-url` and friends). Parsed from a libpq-style URL:
/// `postgres://user:password@host:port/database?sslmode=require&sslrootcert=/path/ca.pem`, or a unix socket
/// directory with `?host=/run/postgresql`.
public struct PostgresSettings: Sendable {
    public enum TLSMode: String, Sendable, CaseIterable {
        /// Plain TCP (loopback or a trusted network only).
        case disable
        /// TLS when the server offers it, without verifying the certificate (libpq's default).
        case prefer
        /// TLS, certificate not verified.
        case require
        /// TLS, the certificate must chain to `sslrootcert` (or the system roots).
        case verifyCA = "verify-ca"
        /// As verify-ca, and the host name must match the certificate.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    /// A unix socket directory (`?host=/dir`); when set, `host` and `port` name only the socket file.
    public var socketDirectory: String?
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    public var rootCertificatePath: String?
    /// Connections this node keeps to the database at most (plus one for LISTEN).
    public var poolSize: Int
    /// Longest any one statement may run on the server (`statement_timeout`); also bounds waiting for a connection.
    public var statementTimeout: Duration
    public var connectTimeout: Duration

    /// What is wrong with a URL or a limit, in words for the operator.
    public struct InvalidSettings: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public init(url: String, poolSize: Int = 10, statementTimeout: Duration = .seconds(5), connectTimeout: Duration = .seconds(5)) throws(InvalidSettings) {
        guard let components = URLComponents(string: url), let scheme = components.scheme, scheme == "postgres" || scheme == "postgresql" else {
            throw InvalidSettings("the PostgreSQL URL must look like postgres://user:password@host:5432/database")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        for name in query.keys where !["sslmode", "sslrootcert", "host", "application_name"].contains(name) {
            throw InvalidSettings("the PostgreSQL URL has an unknown parameter '\(name)' (known: sslmode, sslrootcert, host)")
        }
        host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
        port = components.port ?? 5432
        socketDirectory = query["host"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        guard let user = components.user, !user.isEmpty else { throw InvalidSettings("the PostgreSQL URL names no user (postgres://USER@host/db)") }
        username = user.removingPercentEncoding ?? user
        password = components.password.map { $0.removingPercentEncoding ?? $0 }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !path.isEmpty else { throw InvalidSettings("the PostgreSQL URL names no database (postgres://user@host/DATABASE)") }
        database = path.removingPercentEncoding ?? path
        guard let mode = TLSMode(rawValue: query["sslmode"] ?? "prefer") else {
            throw InvalidSettings("sslmode must be one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        tls = mode
        rootCertificatePath = query["sslrootcert"]
        guard (1...1000).contains(poolSize) else { throw InvalidSettings("the PostgreSQL pool size must be between 1 and 1000") }
        self.poolSize = poolSize
        self.statementTimeout = statementTimeout
        self.connectTimeout = connectTimeout
    }

    /// The URL without its password, for logs and `/v1/admin/status`.
    public var redacted: String {
        let auth = password == nil ? username : "\(username):***"
        let where_ = socketDirectory.map { "?host=\($0)" } ?? ""
        return "postgres://\(auth)@\(host):\(port)/\(database)\(where_)\(tls == .prefer ? "" : (where_.isEmpty ? "?" : "&") + "sslmode=\(tls.rawValue)")"
    }

    var statementTimeoutMs: Int64 { statementTimeout.milliseconds }

    func tlsConfiguration() throws(StoreError) -> TLSConfiguration? {
        guard tls != .disable else { return nil }
        var config = TLSConfiguration.makeClientConfiguration()
        switch tls {
        case .disable, .prefer, .require:
            config.certificateVerification = .none
        case .verifyCA:
            config.certificateVerification = .noHostnameVerification
        case .verifyFull:
            config.certificateVerification = .fullVerification
        }
        if let rootCertificatePath {
            do {
                config.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(rootCertificatePath))
            } catch {
                throw .backend("cannot read sslrootcert \(rootCertificatePath): \(error)")
            }
        }
        return config
    }

    private var startupParameters: [(String, String)] {
        [("statement_timeout", "\(statementTimeoutMs)"), ("application_name", "hubd")]
    }

    /// The pool's configuration.
    func clientConfiguration() throws(StoreError) -> PostgresClient.Configuration {
        var config: PostgresClient.Configuration
        if let socketDirectory {
            config = .init(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: username, password: password, database: database)
        } else {
            let tlsConfig = try tlsConfiguration()
            let tls: PostgresClient.Configuration.TLS = switch (tls, tlsConfig) {
            case (.disable, _), (_, nil): .disable
            case (.prefer, let c?): .prefer(c)
            case (_, let c?): .require(c)
            }
            config = .init(host: host, port: port, username: username, password: password, database: database, tls: tls)
        }
        config.options.maximumConnections = poolSize
        config.options.minimumConnections = 0
        config.options.connectTimeout = connectTimeout
        config.options.additionalStartupParameters = startupParameters
        return config
    }

    /// The configuration of the one dedicated LISTEN connection.
    func connectionConfiguration() throws(StoreError) -> PostgresConnection.Configuration {
        var config: PostgresConnection.Configuration
        if let socketDirectory {
            config = .init(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: username, password: password, database: database)
        } else {
            var tls = PostgresConnection.Configuration.TLS.disable
            if let tlsConfig = try tlsConfiguration() {
                do {
                    let context = try NIOSSLContext(configuration: tlsConfig)
                    tls = self.tls == .prefer ? .prefer(context) : .require(context)
                } catch {
                    throw .backend("TLS to PostgreSQL: \(error)")
                }
            }
            config = .init(host: host, port: port, username: username, password: password, database: database, tls: tls)
        }
        config.options.connectTimeout = .milliseconds(connectTimeout.milliseconds)
        config.options.additionalStartupParameters = startupParameters
        return config
    }
}
