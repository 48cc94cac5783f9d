import CSQLite
import Foundation
import HubCore

/// Keeps the WAL short without making a commit pay for it. SQLite's automatic checkpoint runs inside the COMMIT
/// that crosses the threshold: copying thousands of pages back into the database file, on whichever thread
/// committed — an event loop, on the hot path — which showed as a p99.9 of 14 ms on single appends.
/// Instead the writer's WAL hook tells this thread when the log passed `thresholdPages`, and it runs a PASSIVE
/// checkpoint on its own connection: it copies what no reader still needs while commits go on, and the writer
/// restarts the log at its next transaction once everything was copied. Durability is unchanged: a commit is
/// durable once in the WAL; checkpoints only move pages.
///
/// Under a steady stream of commits a concurrent pass never reaches the log's end (commits append while it copies),
/// and SQLite restarts the log only once all of it was copied: the WAL grew without bound (319 MB after 8 s of
/// 4-publisher appends, and every commit after the threshold woke another pass). So a pass that leaves frames behind
/// is finished between two group commits on the writer's own connection (`SQLiteWriter.betweenCommits`): by then
/// the rest is short (what was committed during the concurrent pass), and the writer's next transaction restarts
/// the log from its start.
final class WALCheckpointer: @unchecked Sendable {
    private let connection: SQLiteConnection
    private let thresholdPages: Int32
    private let condition = NSCondition()
    private var due = false, stopping = false
    private var thread: Thread?
    /// The writer's connection, whose commits the hook watches.
    private var watched: OpaquePointer?
    /// Runs work on the writer's connection between two commits (`SQLiteWriter.betweenCommits`).
    private var betweenCommits: ((@escaping (SQLiteConnection) -> Void) -> Void)?
    private let stopped = DispatchSemaphore(value: 0)

    init(path: String, thresholdPages: Int32) throws(SQLiteFailure) {
        connection = try SQLiteConnection(path: path, readOnly: false)
        self.thresholdPages = thresholdPages
    }

    /// Starts the thread and hooks `writer`'s commits (replacing SQLite's automatic checkpoint on it).
    /// - Parameter betweenCommits: runs work on `writer` between two commits, and returns once it ran.
    func start(watching writer: SQLiteConnection, betweenCommits: @escaping (@escaping (SQLiteConnection) -> Void) -> Void) {
        self.betweenCommits = betweenCommits
        let thread = Thread { [self] in
            Thread.nameCurrent("hub-checkpoint")
            loop()
        }
        self.thread = thread
        thread.start()
        watched = writer.handle
        sqlite3_wal_hook(writer.handle, { context, _, _, pages in
            guard let context else { return SQLITE_OK }
            Unmanaged<WALCheckpointer>.fromOpaque(context).takeUnretainedValue().walGrew(to: pages)
            return SQLITE_OK
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Unhooks the writer's connection and stops the thread. Call after the writer stopped (its connection is not
    /// thread-safe; the writer's own stop checkpoints with TRUNCATE, waiting out a PASSIVE one here).
    func stop() {
        if let watched { sqlite3_wal_hook(watched, nil, nil) }
        condition.lock()
        let wasRunning = thread != nil && !stopping
        stopping = true
        condition.signal()
        condition.unlock()
        if wasRunning { stopped.wait() }
    }

    /// Called by SQLite on the committing thread after every commit, with the WAL's length in pages.
    private func walGrew(to pages: Int32) {
        guard pages >= thresholdPages else { return }
        condition.lock()
        if !due {
            due = true
            condition.signal()
        }
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while !due && !stopping { condition.wait() }
            if stopping {
                condition.unlock()
                break
            }
            due = false
            condition.unlock()
            // PASSIVE never blocks the writer or readers; whatever a reader still needs is copied next time. A few
            // concurrent passes first, each copying what the one before left, so the writer's share stays short.
            // (What a pass reports as left is as of its start: commits during it are not counted.)
            var pass = 0
            while Self.passive(connection) > Self.writersShare, pass < 3 { pass += 1 }
            // The log's end as of now, copied between two commits: the writer's next transaction restarts the log.
            betweenCommits? { db in _ = Self.passive(db) }
        }
        stopped.signal()
    }

    /// Frames the writer copies itself at most, after the concurrent passes (~4 MiB).
    private static let writersShare: Int64 = 1024

    /// One PASSIVE checkpoint on `db`; returns how many of the log's frames are not copied yet (0 on error: the next
    /// threshold crossing tries again). The PRAGMA rather than `sqlite3_wal_checkpoint_v2`: on a connection that has
    /// not read the database yet, that call finds no WAL open and does nothing (it reports -1 frames).
    private static func passive(_ db: SQLiteConnection) -> Int64 {
        guard let (log, copied) = try? db.first("PRAGMA wal_checkpoint(PASSIVE)", [], { ($0.int(1), $0.int(2)) }) else { return 0 }
        return max(0, log - copied)
    }
}
