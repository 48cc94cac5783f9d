import _ConnectionPoolModule
import HubCore
import Logging
import NIOCore
import PostgresNIO

/// One leased connection, inside a transaction or a read snapshot. Query functions throw freely; the store turns
/// whatever they throw into a `StoreError` in one place (`StoreError(postgres:)`).
struct PostgresSession {
    let connection: PostgresConnection
    let logger: Logger
    /// This node's tag on the notifications it sends (see `PostgresChangeSignal`).
    let nodeID: String
    private let notice = Notice()

    init(connection: PostgresConnection, logger: Logger, nodeID: String = "") {
        self.connection = connection; self.logger = logger; self.nodeID = nodeID
    }

    /// Whether the transaction already sent its wake-up for other nodes (folded into its last statement to save a
    /// round trip); otherwise the store sends it before COMMIT.
    private final class Notice: @unchecked Sendable { var sent = false }

    /// The NOTIFY payload for the keys a transaction changed: `<node> <key>,<key>…`.
    func notification(_ changed: Set<Int64>) -> String {
        Self.notification(node: nodeID, changed: changed)
    }

    static func notification(node: String, changed: Set<Int64>) -> String {
        node + " " + changed.map(String.init).joined(separator: ",")
    }

    /// Records that the caller's last statement sent `notification(changed)` with every key the transaction changed.
    func notified() { notice.sent = true }
    var hasNotified: Bool { notice.sent }

    func rows(_ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
        try await connection.query(query, logger: logger).collect().map { $0.makeRandomAccess() }
    }

    func first(_ query: PostgresQuery) async throws -> PostgresRandomAccessRow? {
        try await rows(query).first
    }

    /// Runs a statement to completion (its rows, if any, are discarded).
    func run(_ query: PostgresQuery) async throws {
        _ = try await connection.query(query, logger: logger).collect()
    }
}

/// Typed cell access by column index, as the queries read their rows.
extension PostgresRandomAccessRow {
    func int(_ i: Int) throws -> Int64 { try self[i].decode(Int64.self) }
    func optionalInt(_ i: Int) throws -> Int64? { try self[i].decode(Int64?.self) }
    func seq(_ i: Int) throws -> UInt64 { UInt64(try int(i)) }
    func text(_ i: Int) throws -> String { try self[i].decode(String.self) }
    func optionalText(_ i: Int) throws -> String? { try self[i].decode(String?.self) }
    func bool(_ i: Int) throws -> Bool { try self[i].decode(Bool.self) }
    func bytes(_ i: Int) throws -> ByteBuffer { try self[i].decode(ByteBuffer?.self) ?? ByteBuffer() }
}

extension StoreError {
    /// The one mapping from driver failures to the store's errors: an unreachable database (refused, dropped,
    /// restarting, out of connections, too slow) is `.unavailable` — a 503 with Retry-After — and everything else is
    /// `.backend`, logged and never shown.
    init(postgres error: any Error) {
        switch error {
        case let error as StoreError:
            self = error
        case let error as PSQLError:
            if error.code == .server {
                let state = error.serverInfo?[.sqlState] ?? ""
                let message = error.serverInfo?[.message] ?? ""
                if state == "57014" {
                    self = .unavailable("the database did not finish a statement within statement_timeout")
                } else if state.hasPrefix("08") || state.hasPrefix("53") || state.hasPrefix("57P") {
                    // connection exceptions, insufficient resources, admin shutdown / crash shutdown / cannot connect now
                    self = .unavailable("the database is unavailable (\(state): \(message))")
                } else {
                    self = .backend("PostgreSQL \(state): \(message)")
                }
            } else if [.connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed, .queryCancelled,
                       .sslUnsupported, .failedToAddSSLHandler].contains(error.code) {
                self = .unavailable("the database is unreachable (\(error.code))")
            } else {
                self = .backend("PostgreSQL: \(String(reflecting: error))")
            }
        case let error as ConnectionPoolError:
            self = error == .poolShutdown ? .unavailable("the store is shutting down") : .unavailable("the database is unreachable")
        case is CancellationError:
            self = .unavailable("the request was cancelled")
        case is IOError, is ChannelError:
            self = .unavailable("the database is unreachable (\(error))")
        default:
            self = .backend("PostgreSQL: \(error)")
        }
    }

    /// Deadlocks and serialization failures: PostgreSQL undid the transaction, which may simply run again.
    static func isRetryable(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, error.code == .server, let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40P01" || state == "40001"
    }

    /// The database could not be reached or did not answer at all (as opposed to refusing or timing out a statement).
    static func isConnectivityFailure(_ error: any Error) -> Bool {
        switch error {
        case let error as PSQLError:
            if error.code == .server { return (error.serverInfo?[.sqlState] ?? "").hasPrefix("08") || (error.serverInfo?[.sqlState] ?? "").hasPrefix("57P") }
            return [.connectionError, .serverClosedConnection, .uncleanShutdown, .sslUnsupported, .failedToAddSSLHandler].contains(error.code)
        case let error as ConnectionPoolError: return error == .connectionCreationCircuitBreakerTripped
        case let error as StoreError: if case .unavailable = error { return true } else { return false }  // the deadline passed
        case is IOError, is ChannelError: return true
        default: return false
        }
    }
}
