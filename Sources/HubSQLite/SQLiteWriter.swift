import Foundation
import HubCore
import NIOCore

/// The single writer. Concurrent writes queue here and whoever holds the connection commits everything that queued
/// while the previous commit ran as *one* transaction (group commit): one WAL append and, with `synchronous=FULL`,
/// one fsync for many requests. Each job runs inside its own savepoint, so one job's refusal never undoes another's
/// work. A job's caller hears of it only after COMMIT returned: an acknowledged write is durable.
///
/// Two kinds of committer take turns on the one connection (never both at once: `committing`):
/// - **An event loop (the hot path).** A loop that submits while nobody commits schedules one drain at the end of
///   its current tick, so every request it read in that tick joins one transaction; it commits on its own thread and
///   completes its own jobs in place — no thread hand-off at all. Jobs of other loops that joined get one `execute`
///   per loop. A drain commits one group; what queued meanwhile goes to the writer thread, so no loop is kept busy
///   with others' work.
/// - **The writer thread**, for `perform` (async callers) and for what a drain leaves behind.
final class SQLiteWriter: @unchecked Sendable {
    /// Upper bound on jobs per transaction, so one commit cannot grow without limit under a flood.
    static let maxBatch = 2048

    private struct Job: @unchecked Sendable {  // built and run under the queue's lock, finished once
        /// Runs the work; returns false when it failed and its savepoint must be rolled back.
        let run: (SQLiteConnection, inout Set<Int64>) -> Bool
        /// Called once with nil after a successful commit, or with the error that undid the transaction.
        let finish: (StoreError?) -> Void
        /// Where `finish` runs: the submitting event loop, or (nil) the committer, which resumes a continuation.
        var eventLoop: (any EventLoop)? = nil
        /// `run` touches nothing but the database and its own outcome, so it may run again after a rollback.
        var rerunnable = false
    }

    private let connection: SQLiteConnection
    private let signal: any ChangeSignal
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var queue: [Job] = []
    /// An empty array with capacity, from the last batch: the next queue.
    private var spare: [Job] = []
    private var stopping = false
    /// Someone (the thread or a loop's drain) is using the connection.
    private var committing = false
    /// A loop has a drain scheduled for the end of its tick; the thread leaves the queue to it.
    private var drainScheduled = false
    /// Work for the connection outside any transaction (`betweenCommits`); the thread runs it before the next group.
    private var maintenance: [(SQLiteConnection) -> Void] = []
    private var thread: Thread?
    private let stopped = DispatchSemaphore(value: 0)

    init(connection: SQLiteConnection, signal: any ChangeSignal) {
        self.connection = connection
        self.signal = signal
    }

    func start() {
        let thread = Thread { [self] in
            Thread.nameCurrent("hub-writer")
            loop()
        }
        thread.stackSize = 4 << 20
        self.thread = thread
        thread.start()
    }

    /// Finishes what is queued, then stops the thread. Drains scheduled later fail their jobs with `.unavailable`.
    func stop() {
        condition.lock()
        let wasRunning = thread != nil && !stopping
        stopping = true
        condition.broadcast()
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
    /// (or failed). Called on `eventLoop`.
    func submit<T: Sendable>(on eventLoop: any EventLoop, _ work: @escaping @Sendable (SQLiteConnection, inout Set<Int64>) throws(StoreError) -> T,
                             completion: @escaping @Sendable (Result<T, StoreError>) -> Void) {
        var job = Self.job(work, eventLoop: eventLoop, completion: completion)
        job.rerunnable = true  // the hot path's appends: database work only
        condition.lock()
        if stopping {
            condition.unlock()
            return job.finish(.unavailable("the store is shutting down"))
        }
        queue.append(job)
        let scheduleDrain = !committing && !drainScheduled
        if scheduleDrain { drainScheduled = true }
        condition.unlock()
        // Runs after the loop has handled every read of this tick: they all join the one transaction.
        if scheduleDrain { eventLoop.execute { self.drain(on: eventLoop) } }
    }

    /// Runs `work` on the writer thread between two group commits — no transaction open, nobody else writing — and
    /// returns once it ran (or at once if the writer stopped). For what a transaction cannot contain: the
    /// checkpointer's last, short pass, after which the next transaction restarts the WAL. Loops' drains step aside
    /// for it, so it cannot starve under a stream of commits. Not on an event loop: it blocks.
    func betweenCommits(_ work: @escaping (SQLiteConnection) -> Void) {
        let ran = DispatchSemaphore(value: 0)
        condition.lock()
        guard !stopping else {
            condition.unlock()
            return
        }
        maintenance.append { db in
            work(db)
            ran.signal()
        }
        condition.signal()
        condition.unlock()
        ran.wait()
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
            return job.finish(.unavailable("the store is shutting down"))
        }
        queue.append(job)
        condition.signal()
        condition.unlock()
    }

    /// A loop's turn: one group commit on this thread, unless someone else holds the connection (then they take
    /// the queue). Whatever queued meanwhile is left to the writer thread.
    private func drain(on eventLoop: any EventLoop) {
        condition.lock()
        drainScheduled = false
        // Someone else commits (and takes the queue after), the hub stops (the thread finishes the queue), or the
        // thread has maintenance to run first (then it takes the queue after).
        guard !committing, !stopping, !queue.isEmpty, maintenance.isEmpty else {
            if !maintenance.isEmpty { condition.signal() }
            condition.unlock()
            return
        }
        commitNextBatch(on: eventLoop)
        // The thread waits while a drain commits; wake it only if there is something for it.
        if !queue.isEmpty || !maintenance.isEmpty || stopping { condition.signal() }
        condition.unlock()
    }

    /// Takes the next group from the queue and commits it on this thread, holding `committing` meanwhile.
    /// Called with the lock held; returns with it held (it is released during the commit).
    private func commitNextBatch(on eventLoop: (any EventLoop)?) {
        committing = true
        var batch: [Job]
        if queue.count <= Self.maxBatch {
            // The whole queue, moved rather than copied (a copy retained and released every job's closures), and
            // the queue goes on in the last batch's storage.
            batch = spare
            spare = []  // or the queue's next append would copy the storage it shares with `spare`
            swap(&batch, &queue)
        } else {
            batch = Array(queue.prefix(Self.maxBatch))
            queue.removeFirst(batch.count)
        }
        condition.unlock()
        commit(batch, on: eventLoop)
        batch.removeAll(keepingCapacity: true)
        condition.lock()
        spare = batch
        committing = false
    }

    /// Finishes jobs: continuations and `current`'s (the committing loop's) in place, every other loop's grouped
    /// into one `execute` per loop.
    private func finish(_ jobs: [Job], _ error: StoreError?, on current: (any EventLoop)?) {
        var loops: [ObjectIdentifier: (loop: any EventLoop, jobs: [Job])] = [:]
        for job in jobs {
            guard let loop = job.eventLoop, loop !== current else { job.finish(error); continue }
            loops[ObjectIdentifier(loop), default: (loop, [])].jobs.append(job)
        }
        for (loop, jobs) in loops.values {
            loop.execute { for job in jobs { job.finish(error) } }
        }
    }

    private func loop() {
        while true {
            condition.lock()
            while !stopping && (committing || (maintenance.isEmpty && (queue.isEmpty || drainScheduled))) { condition.wait() }
            // Wait out a drain that is committing (when stopping, the wait above does not).
            while committing { condition.wait() }
            if !maintenance.isEmpty {
                runMaintenance()
                condition.broadcast()
                condition.unlock()
                continue
            }
            if stopping {
                // Finish what is queued, then stop.
                if queue.isEmpty {
                    committing = true  // for good: a late drain leaves the connection alone (submit refuses new jobs)
                    condition.unlock()
                    // Fold the WAL back into the database file, so a stopped hub leaves one self-contained hub.db.
                    try? connection.exec("PRAGMA wal_checkpoint(TRUNCATE)")
                    break
                }
            }
            commitNextBatch(on: nil)
            condition.broadcast()
            condition.unlock()
        }
        stopped.signal()
    }

    /// Runs the pending maintenance, holding `committing`. Called with the lock held; returns with it held.
    private func runMaintenance() {
        committing = true
        let work = maintenance
        maintenance = []
        condition.unlock()
        for item in work { item(connection) }
        condition.lock()
        committing = false
    }

    private func commit(_ batch: [Job], on eventLoop: (any EventLoop)?) {
        // A group of jobs that may run again is first tried without a savepoint each (two statements less per
        // job); only if one of them is refused is it all undone and run again job by job, in the same order.
        if batch.count > 1, batch.allSatisfy(\.rerunnable), commitWithoutSavepoints(batch, on: eventLoop) { return }
        commitIsolated(batch, on: eventLoop)
    }

    /// Returns false, with nothing committed or finished, when a job was refused; true when the group is done.
    private func commitWithoutSavepoints(_ batch: [Job], on eventLoop: (any EventLoop)?) -> Bool {
        var changed = Set<Int64>()
        do {
            try connection.run("BEGIN IMMEDIATE")
            for job in batch {
                guard job.run(connection, &changed) else {
                    try connection.rollback()
                    return false
                }
            }
            try connection.run("COMMIT")
        } catch {
            try? connection.rollback()
            finish(batch, error.storeError, on: eventLoop)
            return true
        }
        // Published before anyone is told of the commit: a ticket unchanged after an acknowledged append can then
        // never hide it (`ChangeSignal.publishesEveryCommitFirst`).
        for id in changed { signal.publish(id) }
        finish(batch, nil, on: eventLoop)
        return true
    }

    private func commitIsolated(_ batch: [Job], on eventLoop: (any EventLoop)?) {
        var changed = Set<Int64>()
        do {
            try connection.run("BEGIN IMMEDIATE")
        } catch {
            finish(batch, error.storeError, on: eventLoop)
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
                    try connection.rollback(to: "job")
                    try connection.run("RELEASE job")
                } else {
                    try connection.rollback()
                    finish([job], nil, on: eventLoop)  // its own error was recorded by `run`
                    return
                }
            } catch {
                // A savepoint statement itself failed: the transaction is in an unknown state, give it all up.
                try? connection.rollback()
                finish(batch, error.storeError, on: eventLoop)
                return
            }
        }
        do {
            try connection.run("COMMIT")
        } catch {
            try? connection.rollback()
            finish(batch, error.storeError, on: eventLoop)
            return
        }
        // Published before anyone is told of the commit: a ticket unchanged after an acknowledged append can then
        // never hide it (`ChangeSignal.publishesEveryCommitFirst`).
        for id in changed { signal.publish(id) }
        finish(batch, nil, on: eventLoop)
    }
}
