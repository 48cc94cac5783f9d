import Foundation
import HubCore
import Logging
import PostgresNIO
import Synchronization

/// The scale-out backend: every hubd node of a cluster opens one of these on the same PostgreSQL database.
///
/// Ordering: every write that touches a slot first locks the slot's row (`SELECT … FOR UPDATE`), so writes to one
/// slot commit one after the other whichever node runs them, and the slot's `seq` — taken from that row — is dense
/// and gap-free in commit order (a rolled-back transaction undoes its increment). Readers therefore always see a
/// prefix of a slot's log. Live readers on every node are woken by `pg_notify` inside the writing transaction
/// (`PostgresChangeSignal`); notifications carry only stream keys, never data.
public final class PostgresStreamStore: StreamStore, ReadinessChecking, Sendable {
    public let settings: PostgresSettings
    let client: PostgresClient
    let signal: any ChangeSignal
    let logger: Logger
    /// Tags this node's notifications so its own listener skips them (the writer already woke local readers).
    let nodeID: String
    let maxRecordsPerRead: Int
    private let runner: Task<Void, Never>
    /// Stream appends waiting for the next group commit, and the stream rows they are decided against.
    let appendGroups = AppendGroupQueue()
    /// Set when the last attempt found the database unreachable (see `deadline`).
    private let unreachable = Atomic<Bool>(false)

    /// Connects, migrates (or refuses a newer schema) and keeps the pool running until `close`.
    public init(_ settings: PostgresSettings, signal: any ChangeSignal, nodeID: String, maxRecordsPerRead: Int = 10_000,
                logger: Logger) async throws(StoreError) {
        self.settings = settings
        self.signal = signal
        self.logger = logger
        self.nodeID = nodeID
        self.maxRecordsPerRead = maxRecordsPerRead
        // Migrate over one direct connection first: a refusal at start (a wrong password, a TLS mode the server does
        // not offer, a missing database) then stops hubd with the server's own words, where the pool would only retry.
        // Only connecting has a deadline: a migration may take long (or wait for another node's), bounded by the
        // service manager's start timeout rather than by a request's.
        let connectionConfiguration = try settings.connectionConfiguration()
        do {
            let connection = try await withDeadline(settings.connectTimeout + settings.statementTimeout) {
                try await PostgresConnection.connect(configuration: connectionConfiguration, id: 0, logger: logger)
            }
            do {
                try await PostgresMigrations.migrate(PostgresSession(connection: connection, logger: logger))
            } catch {
                try? await connection.close()
                throw error
            }
            try? await connection.close()
        } catch {
            throw StoreError(postgres: error)
        }
        let client = PostgresClient(configuration: try settings.clientConfiguration(), backgroundLogger: logger)
        self.client = client
        runner = Task { await client.run() }
    }

    /// Stops the pool; later calls fail with `.unavailable`. Waits for its connections to close, but not forever: the
    /// pool of postgres-nio 1.33 may keep retrying a connection after it was told to stop (vapor/postgres-nio#599),
    /// and hubd's exit must not wait on that.
    public func close() async {
        runner.cancel()
        do {
            try await withDeadline(Self.closeLimit) { [runner] in await runner.value }
        } catch {
            logger.warning("the PostgreSQL connection pool did not close within \(Self.closeLimit); leaving it to the process's exit")
        }
    }

    static let closeLimit = Duration.seconds(5)

    static var nowMs: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Longest a request waits on the database before answering 503: a connection, then a statement. While the
    /// database is known to be unreachable, requests give up after a second instead, so an outage answers 503 quickly;
    /// the first request that succeeds again ends that.
    private var deadline: Duration {
        unreachable.load(ordering: .relaxed) ? .seconds(1) : settings.connectTimeout + settings.statementTimeout
    }

    /// Runs `operation` on a pooled connection within the deadline, and maps whatever it throws (one place).
    func leased<T: Sendable>(_ operation: @escaping @Sendable (PostgresSession) async throws -> T) async throws -> T {
        do {
            let value = try await withDeadline(deadline) { [client, logger, nodeID] in
                try await client.withConnection { connection in
                    try await operation(PostgresSession(connection: connection, logger: logger, nodeID: nodeID))
                }
            }
            unreachable.store(false, ordering: .relaxed)
            return value
        } catch {
            if StoreError.isConnectivityFailure(error) { unreachable.store(true, ordering: .relaxed) }
            throw error
        }
    }

    /// Runs `work` in a read-write transaction. Deadlocks and serialization failures run it again (PostgreSQL undid
    /// it); after COMMIT the streams it reports changed are woken here, and on every other node through the NOTIFY
    /// the transaction sent.
    func write<T: Sendable>(_ work: @escaping @Sendable (PostgresSession, inout Set<Int64>) async throws -> T) async throws(StoreError) -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let (value, changed) = try await leased { session in
                    try await session.run("BEGIN")
                    do {
                        var changed = Set<Int64>()
                        let value = try await work(session, &changed)
                        if !changed.isEmpty && !session.hasNotified {
                            try await session.run("SELECT pg_notify(\(PostgresChangeSignal.channel), \(session.notification(changed)))")
                        }
                        try await session.run("COMMIT")
                        return (value, changed)
                    } catch {
                        try? await session.run("ROLLBACK")
                        throw error
                    }
                }
                for key in changed { signal.publish(key) }
                return value
            } catch {
                if StoreError.isRetryable(error) && attempt < 8 {
                    try? await Task.sleep(for: .milliseconds(Int64.random(in: 1...(5 << min(attempt, 5)))))
                    continue
                }
                throw StoreError(postgres: error)
            }
        }
    }

    /// Runs `work` in one read-only snapshot (REPEATABLE READ), so its several statements agree with each other.
    func snapshot<T: Sendable>(_ work: @escaping @Sendable (PostgresSession) async throws -> T) async throws(StoreError) -> T {
        do {
            return try await leased { session in
                try await session.run("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                do {
                    let value = try await work(session)
                    try await session.run("COMMIT")
                    return value
                } catch {
                    try? await session.run("ROLLBACK")
                    throw error
                }
            }
        } catch {
            throw StoreError(postgres: error)
        }
    }

    /// Statements outside any explicit transaction.
    func single<T: Sendable>(_ work: @escaping @Sendable (PostgresSession) async throws -> T) async throws(StoreError) -> T {
        do {
            return try await leased(work)
        } catch {
            throw StoreError(postgres: error)
        }
    }

    // MARK: StreamStore

    public func create(_ path: StreamPath, _ request: CreateRequest) async throws(StoreError) -> CreateOutcome {
        try await write { db, changed in
            try await PostgresStreamQueries.create(db, path: path, request: request, nowMs: Self.nowMs, changed: &changed)
        }
    }

    public func append(_ path: StreamPath, _ request: AppendRequest) async throws(StoreError) -> AppendOutcome {
        try await groupAppend(path, request)
    }

    /// One append in a transaction of its own: what a group falls back to, and the authority on every refusal.
    func appendInTransaction(_ path: StreamPath, _ request: AppendRequest) async throws(StoreError) -> AppendOutcome {
        try await write { db, changed in
            try await PostgresStreamQueries.append(db, path: path, request: request, nowMs: Self.nowMs, changed: &changed)
        }
    }

    public func read(_ path: StreamPath, after offset: Offset, maxBytes: Int) async throws(StoreError) -> ReadResult {
        let maxRecords = maxRecordsPerRead
        let (result, sliding) = try await snapshot { db in
            let row = try await PostgresStreamQueries.readable(db, path: path, nowMs: Self.nowMs)
            guard offset.position <= row.head else { throw StoreError.offsetOutOfRange(offset) }
            let (records, start) = try await PostgresStreamQueries.records(db, of: row, after: offset, maxBytes: maxBytes, maxRecords: maxRecords)
            return (ReadResult(info: row.info, records: records, next: records.last?.offset ?? start), row.ttlSeconds != nil)
        }
        if sliding { try await touch(path) }
        return result
    }

    public func info(_ path: StreamPath) async throws(StoreError) -> StreamInfo {
        try await single { db in try await PostgresStreamQueries.readable(db, path: path, nowMs: Self.nowMs).info }
    }

    public func touch(_ path: StreamPath) async throws(StoreError) {
        try await write { db, changed in
            let now = Self.nowMs
            try await PostgresSlotLogQueries.lockSlot(db, path.slot)
            guard let row = try await PostgresStreamQueries.live(db, path: path, nowMs: now, changed: &changed), !row.deleted else { return }
            try await PostgresStreamQueries.touch(db, row, nowMs: now)
        }
    }

    public func delete(_ path: StreamPath) async throws(StoreError) {
        try await write { db, changed in
            try await PostgresSlotLogQueries.lockSlot(db, path.slot)
            try await PostgresStreamQueries.delete(db, path: path, nowMs: Self.nowMs, changed: &changed)
        }
    }

    /// Ready when the database answers and, with the cluster's change signal, while it listens for other nodes' changes
    /// (without that, appends on other nodes would reach this node's live readers only when they time out).
    public func checkReadiness() async throws(StoreError) {
        try await single { db in try await db.run("SELECT 1") }
        if let cluster = signal as? PostgresChangeSignal, !cluster.isListening {
            throw .unavailable("not listening for other nodes' changes (yet)")
        }
    }
}

/// Runs `operation`, or gives up with `.unavailable` after `limit` (the pool may wait for a connection that cannot
/// be made; a request must not hang with it). The operation is cancelled then, but not waited for: a driver call that
/// does not honour cancellation must not hold the request (a task group would wait for it).
func withDeadline<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    let race = DeadlineRace<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            race.start(continuation, work: Task { try await operation() }, limit: limit)
        }
    } onCancel: {
        race.finish(.failure(CancellationError()))
    }
}

/// The first of the operation, the timer and the caller's cancellation to finish resumes the caller; the others are
/// cancelled.
private final class DeadlineRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var work: Task<T, any Error>?
        var timer: Task<Void, Never>?
        var outcome: Result<T, any Error>?
    }
    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>, work: Task<T, any Error>, limit: Duration) {
        let timer = Task { [self] in
            try? await Task.sleep(for: limit)
            if !Task.isCancelled { finish(.failure(StoreError.unavailable("the database did not answer within \(limit)"))) }
        }
        let early = state.withLock { state -> Result<T, any Error>? in
            if let outcome = state.outcome { return outcome }  // cancelled before it started
            state.continuation = continuation; state.work = work; state.timer = timer
            return nil
        }
        if let early {
            work.cancel(); timer.cancel()
            continuation.resume(with: early)
            return
        }
        Task { [self] in
            do { finish(.success(try await work.value)) } catch { finish(.failure(error)) }
        }
    }

    func finish(_ outcome: Result<T, any Error>) {
        let (continuation, work, timer) = state.withLock { state in
            guard state.outcome == nil else { return (nil, nil, nil) as (CheckedContinuation<T, any Error>?, Task<T, any Error>?, Task<Void, Never>?) }
            state.outcome = outcome
            defer { state.continuation = nil; state.work = nil; state.timer = nil }
            return (state.continuation, state.work, state.timer)
        }
        work?.cancel()
        timer?.cancel()
        continuation?.resume(with: outcome)
    }
}
