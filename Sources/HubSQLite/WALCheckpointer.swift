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
final class WALCheckpointer: @unchecked Sendable {
    private let connection: SQLiteConnection
    private let thresholdPages: Int32
    private let condition = NSCondition()
    private var due = false, stopping = false
    private var thread: Thread?
    /// The writer's connection, whose commits the hook watches.
    private var watched: OpaquePointer?
    private let stopped = DispatchSemaphore(value: 0)

    init(path: String, thresholdPages: Int32) throws(SQLiteFailure) {
        connection = try SQLiteConnection(path: path, readOnly: false)
        self.thresholdPages = thresholdPages
    }

    /// Starts the thread and hooks `writer`'s commits (replacing SQLite's automatic checkpoint on it).
    func start(watching writer: SQLiteConnection) {
        let thread = Thread { [self] in loop() }
        thread.name = "hub-sqlite-checkpoint"
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
            // PASSIVE never blocks the writer or readers; whatever a reader still needs is copied next time.
            try? connection.exec("PRAGMA wal_checkpoint(PASSIVE)")
        }
        stopped.signal()
    }
}
