import Foundation
import HubCore
import NIOCore

/// The single writer. Concurrent writes queue here and a dedicated thread commits everything that queued while the
/// previous commit ran as *one* transaction (group commit): one WAL append and, with `synchronous=FULL`, one fsync
/// for many requests. Each job runs inside its own savepoint, so one job's refusal never undoes another's work.
/// A job's caller is resumed only after COMMIT returned: an acknowledged write is durable.
/// Callers on a NIO event loop (the hot path) submit with their loop instead of awaiting: after a commit, the
/// writer hands each loop all of its completions in one `execute`, so N appends from one loop cost one wake-up.
final class SQLiteWriter: @unchecked Sendable {
    /// Upper bound on jobs per transaction, so one commit cannot grow without limit under a flood.
    static let maxBatch = 2048

    private struct Job: @unchecked Sendable {  // built and run under the queue's lock, finished once
        /// Runs the work; returns false when it failed and its savepoint must be rolled back.
        let run: (SQLiteConnection, inout Set<Int64>) -> Bool
        /// Called once with nil after a successful commit, or with the error that undid the transaction.
        let finish: (StoreError?) -> Void
        /// Where `finish` runs: the submitting event loop, or (nil) the writer thread, which resumes a continuation.
        var eventLoop: (any EventLoop)? = nil
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
            enqueue(Self.job(work, eventLoop: nil) { continuation.resume(returning: $0) })
        }
        return try result.get()
    }

    /// `perform` for a caller on an event loop: `completion` runs on `eventLoop` once the transaction committed
    /// (or failed), together with the loop's other completions of that commit.
    func submit<T: Sendable>(on eventLoop: any EventLoop, _ work: @escaping @Sendable (SQLiteConnection, inout Set<Int64>) throws(StoreError) -> T,
                             completion: @escaping @Sendable (Result<T, StoreError>) -> Void) {
        enqueue(Self.job(work, eventLoop: eventLoop, completion: completion))
    }

    private static func job<T>(_ work: @escaping (SQLiteConnection, inout Set<Int64>) throws(StoreError) -> T, eventLoop: (any EventLoop)?,
                               completion: @escaping (Result<T, StoreError>) -> Void) -> Job {
        nonisolated(unsafe) var outcome: Result<T, StoreError>?
        return Job(
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
                completion(outcome ?? .failure(commitError ?? .backend("write job did not run")))
            },
            eventLoop: eventLoop)
    }

    private func enqueue(_ job: Job) {
        condition.lock()
        if stopping {
            condition.unlock()
            finish([job], .unavailable("the store is shutting down"))
            return
        }
        queue.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Finishes jobs: the writer's own in place, the event loops' grouped into one `execute` per loop.
    private func finish(_ jobs: [Job], _ error: StoreError?) {
        var loops: [ObjectIdentifier: (loop: any EventLoop, jobs: [Job])] = [:]
        for job in jobs {
            guard let loop = job.eventLoop else { job.finish(error); continue }
            loops[ObjectIdentifier(loop), default: (loop, [])].jobs.append(job)
        }
        for (loop, jobs) in loops.values {
            loop.execute { for job in jobs { job.finish(error) } }
        }
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
            finish(batch, error.storeError)
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
                    finish([job], nil)  // its own error was recorded by `run`
                    return
                }
            } catch {
                // A savepoint statement itself failed: the transaction is in an unknown state, give it all up.
                try? connection.run("ROLLBACK")
                finish(batch, error.storeError)
                return
            }
        }
        do {
            try connection.run("COMMIT")
        } catch {
            try? connection.run("ROLLBACK")
            finish(batch, error.storeError)
            return
        }
        finish(batch, nil)
        for id in changed { signal.publish(id) }
    }
}
