import Foundation
import HubCore

/// The single writer. Concurrent writes queue here and a dedicated thread commits everything that queued while the
/// previous commit ran as *one* transaction (group commit): one WAL append and, with `synchronous=FULL`, one fsync
/// for many requests. Each job runs inside its own savepoint, so one job's refusal never undoes another's work.
/// A job's caller is resumed only after COMMIT returned: an acknowledged write is durable.
final class SQLiteWriter: @unchecked Sendable {
    /// Upper bound on jobs per transaction, so one commit cannot grow without limit under a flood.
    static let maxBatch = 2048

    private struct Job {
        /// Runs the work; returns false when it failed and its savepoint must be rolled back.
        let run: (SQLiteConnection, inout Set<Int64>) -> Bool
        /// Called once with nil after a successful commit, or with the error that undid the transaction.
        let finish: (StoreError?) -> Void
    }

    private let connection: SQLiteConnection
    private let signal: any ChangeSignal
    private let condition = NSCondition()
    private var queue: [Job] = []
    private var stopping = false
    private var thread: Thread?
    private let stopped = DispatchSemaphore(value: 0)

    init(connection: SQLiteConnection, signal: any ChangeSignal) {
        self.connection = connection
        self.signal = signal
    }

    func start() {
        let thread = Thread { [self] in loop() }
        thread.name = "hub-sqlite-writer"
        thread.stackSize = 4 << 20
        self.thread = thread
        thread.start()
    }

    /// Finishes what is queued, then stops the thread.
    func stop() {
        condition.lock()
        let wasRunning = thread != nil && !stopping
        stopping = true
        condition.signal()
        condition.unlock()
        if wasRunning { stopped.wait() }
    }

    /// Runs `work` inside the next group transaction and returns once that transaction committed.
    /// `work` reports the stream ids whose readers must be woken after the commit.
    func perform<T: Sendable>(_ work: @escaping @Sendable (SQLiteConnection, inout Set<Int64>) throws(StoreError) -> T) async throws(StoreError) -> T {
        let result: Result<T, StoreError> = await withCheckedContinuation { continuation in
            nonisolated(unsafe) var outcome: Result<T, StoreError>?
            let job = Job(
                run: { db, changed in
                    do throws(StoreError) {
                        outcome = .success(try work(db, &changed))
                        return true
                    } catch {
                        outcome = .failure(error)
                        return false
                    }
                },
                finish: { commitError in
                    if let commitError, case .success = outcome { outcome = .failure(commitError) }
                    continuation.resume(returning: outcome ?? .failure(commitError ?? .backend("write job did not run")))
                })
            condition.lock()
            if stopping {
                condition.unlock()
                continuation.resume(returning: .failure(.unavailable("the store is shutting down")))
                return
            }
            queue.append(job)
            condition.signal()
            condition.unlock()
        }
        return try result.get()
    }

    private func loop() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty && stopping {
                condition.unlock()
                // Fold the WAL back into the database file, so a stopped hub leaves one self-contained hub.db.
                try? connection.exec("PRAGMA wal_checkpoint(TRUNCATE)")
                break
            }
            let batch = Array(queue.prefix(Self.maxBatch))
            queue.removeFirst(batch.count)
            condition.unlock()
            commit(batch)
        }
        stopped.signal()
    }

    private func commit(_ batch: [Job]) {
        var changed = Set<Int64>()
        do {
            try connection.run("BEGIN IMMEDIATE")
        } catch {
            for job in batch { job.finish(error.storeError) }
            return
        }
        // A lone job needs no savepoint: if it fails, rolling back the whole transaction undoes exactly it.
        let isolate = batch.count > 1
        for job in batch {
            do {
                if isolate { try connection.run("SAVEPOINT job") }
                var jobChanged = Set<Int64>()
                if job.run(connection, &jobChanged) {
                    if isolate { try connection.run("RELEASE job") }
                    changed.formUnion(jobChanged)
                } else if isolate {
                    try connection.run("ROLLBACK TO job")
                    try connection.run("RELEASE job")
                } else {
                    try connection.run("ROLLBACK")
                    job.finish(nil)  // its own error was recorded by `run`
                    return
                }
            } catch {
                // A savepoint statement itself failed: the transaction is in an unknown state, give it all up.
                try? connection.run("ROLLBACK")
                for job in batch { job.finish(error.storeError) }
                return
            }
        }
        do {
            try connection.run("COMMIT")
        } catch {
            try? connection.run("ROLLBACK")
            for job in batch { job.finish(error.storeError) }
            return
        }
        for job in batch { job.finish(nil) }
        for id in changed { signal.publish(id) }
    }
}
