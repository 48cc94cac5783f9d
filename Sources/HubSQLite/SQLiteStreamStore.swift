import Foundation
import HubCore
import Logging
import NIOCore

/// The default backend: one SQLite file in WAL mode, one group-committing writer thread, a pool of readers.
public final class SQLiteStreamStore: StreamStore, ReadinessChecking, AppendSubmitting {
    public enum Synchronous: String, Sendable, CaseIterable {
        /// Durable across a process crash (`kill -9`); the last commits may be lost on power failure.
        case normal
        /// Also durable across power failure: every group commit waits for fsync.
        case full
    }

    public struct Configuration: Sendable {
        public var path: String
        public var synchronous: Synchronous
        public var readers: Int
        /// Upper bound on records per read response.
        public var maxRecordsPerRead: Int
        /// Called when migrations start and then about every 10 s while they run (one may rewrite a large table):
        /// the caller tells its supervisor that start-up goes on (systemd's `EXTEND_TIMEOUT_USEC`).
        public var migrationProgress: (@Sendable () -> Void)?

        public init(path: String, synchronous: Synchronous = .normal, readers: Int = 4, maxRecordsPerRead: Int = 10_000,
                    migrationProgress: (@Sendable () -> Void)? = nil) {
            self.path = path; self.synchronous = synchronous; self.readers = readers; self.maxRecordsPerRead = maxRecordsPerRead
            self.migrationProgress = migrationProgress
        }
    }

    let writer: SQLiteWriter
    let readers: SQLiteReaderPool
    private let checkpointer: WALCheckpointer
    private let configuration: Configuration
    private let lock: StoreLock

    /// Opens (creating if needed) and migrates the database, then starts the writer.
    /// Throws `.schemaTooNew` for a database written by a newer hubd, `.unavailable` while another process has it open (`StoreLock`).
    public init(_ configuration: Configuration, signal: any ChangeSignal) throws(StoreError) {
        self.configuration = configuration
        lock = try StoreLock(databasePath: configuration.path)
        PrivateFiles.prepareDatabase(at: configuration.path)
        let connection: SQLiteConnection
        do {
            connection = try SQLiteConnection(path: configuration.path, readOnly: false)
            try connection.exec("PRAGMA journal_mode = WAL")
            try connection.exec("PRAGMA synchronous = \(configuration.synchronous.rawValue.uppercased())")
        } catch {
            throw error.storeError
        }
        try Migrations.migrate(connection, progress: configuration.migrationProgress)
        connection.cacheRows()  // the one connection that writes
        do {
            // Checkpoints run on their own thread once the WAL passes 4000 pages (16 MiB), never inside a commit.
            checkpointer = try WALCheckpointer(path: configuration.path, thresholdPages: 4000)
        } catch {
            throw error.storeError
        }
        writer = SQLiteWriter(connection: connection, signal: signal)
        readers = try SQLiteReaderPool(path: configuration.path, count: max(1, configuration.readers))
        checkpointer.start(watching: connection) { [writer] work in writer.betweenCommits(work) }
        writer.start()
    }

    /// Finishes queued writes and stops the threads. Further calls fail with `.unavailable`.
    public func close() async {
        writer.stop()  // no commit after this: the hook can go
        checkpointer.stop()
        await readers.shutdown()
        lock.release()
    }

    static var nowMs: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    public func create(_ path: StreamPath, _ request: CreateRequest) async throws(StoreError) -> CreateOutcome {
        try await writer.perform { db, changed throws(StoreError) in
            let outcome = try StreamQueries.create(db, path: path, request: request, nowMs: Self.nowMs, changed: &changed)
            if outcome.created && !request.messages.isEmpty { try Self.applyRecordLimit(db, slot: path.slot, changed: &changed) }
            return outcome
        }
    }

    public func append(_ path: StreamPath, _ request: AppendRequest) async throws(StoreError) -> AppendOutcome {
        try await writer.perform { db, changed throws(StoreError) in try Self.append(db, path, request, changed: &changed) }
    }

    public func submitAppend(_ path: StreamPath, _ request: AppendRequest, on eventLoop: any EventLoop,
                             completion: @escaping @Sendable (Result<AppendOutcome, StoreError>) -> Void) {
        writer.submit(on: eventLoop, { db, changed throws(StoreError) in try Self.append(db, path, request, changed: &changed) },
                      completion: completion)
    }

    private static func append(_ db: SQLiteConnection, _ path: StreamPath, _ request: AppendRequest,
                               changed: inout Set<Int64>) throws(StoreError) -> AppendOutcome {
        // The slot's record limit is applied inside (from the slot counter's own statement).
        try StreamQueries.append(db, path: path, request: request, nowMs: nowMs, changed: &changed)
    }

    public func read(_ path: StreamPath, after offset: Offset, maxBytes: Int) async throws(StoreError) -> ReadResult {
        let maxRecords = configuration.maxRecordsPerRead
        let result = try await readers.read { db throws(StoreError) in
            let row = try StreamQueries.readable(db, path: path, nowMs: Self.nowMs)
            guard offset.position <= row.head else { throw StoreError.offsetOutOfRange(offset) }
            let (records, start) = try StreamQueries.records(db, of: row, after: offset, maxBytes: maxBytes, maxRecords: maxRecords)
            return (ReadResult(info: row.info, records: records, next: records.last?.offset ?? start), row.ttlSeconds != nil)
        }
        if result.1 { try await touch(path) }
        return result.0
    }

    public func info(_ path: StreamPath) async throws(StoreError) -> StreamInfo {
        try await readers.read { db throws(StoreError) in try StreamQueries.readable(db, path: path, nowMs: Self.nowMs).info }
    }

    public func touch(_ path: StreamPath) async throws(StoreError) {
        try await writer.perform { db, changed throws(StoreError) in
            let now = Self.nowMs
            guard let row = try StreamQueries.live(db, path: path, nowMs: now, changed: &changed), !row.deleted else { return }
            try StreamQueries.touch(db, row, nowMs: now)
        }
    }

    public func delete(_ path: StreamPath) async throws(StoreError) {
        try await writer.perform { db, changed throws(StoreError) in
            try StreamQueries.delete(db, path: path, nowMs: Self.nowMs, changed: &changed)
        }
    }

    public func checkReadiness() async throws(StoreError) {
        _ = try await readers.read { db throws(StoreError) in try db.first("SELECT 1") { $0.int(0) } }
    }
}
