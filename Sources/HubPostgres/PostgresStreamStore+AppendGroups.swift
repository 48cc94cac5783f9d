import HubCore
import NIOCore
import PostgresNIO
import Synchronization

/// Group commit for stream appends (issue 14): the appends that arrive while one group is being committed form the
/// next group, decided here with the protocol's rules (`StreamRow.checkAppend`) against cached stream rows, and written
/// by one statement, `hub_append_group` (PostgresMigrations 2), in one round trip and one commit. The statement
/// writes only if every stream row is still the version it was read at, so the cache never has to be right: a stale
/// row (another node, a fork, a sweep, a delete) makes the statement change nothing, and the group is decided again
/// from fresh rows. Everything that is not a plain write — a refusal, a producer retry, a slot with a record limit,
/// an expired stream — takes the one-transaction path (`appendInTransaction`), which stays the authority.
final class AppendGroupQueue: Sendable {
    struct Pending: Sendable {
        let path: StreamPath
        let request: AppendRequest
        let reply: Reply
    }

    /// Who waits for an append's outcome: a task, or an event loop (the hot path), whose completions of one group are
    /// run together in one job on that loop.
    enum Reply: Sendable {
        case task(CheckedContinuation<Result<AppendOutcome, StoreError>, Never>)
        case loop(any EventLoop, @Sendable (Result<AppendOutcome, StoreError>) -> Void)
    }

    /// A stream row as this node last saw it committed, with its version and the producer states it has looked up
    /// (nil: known to have none).
    struct Cached: Sendable {
        var row: StreamRow
        var version: String
        var producers: [String: ProducerAck?]
    }

    private struct State {
        var queue: [Pending] = []
        var committing = false
        var cache: [StreamPath: Cached] = [:]
    }
    private let state = Mutex(State())

    /// Most appends in one group, and most streams cached (the cache is dropped whole past that; it refills on use).
    static let maxGroup = 1000
    static let maxCached = 10_000

    /// Queues an append; true when the caller must start committing (nobody is).
    func enqueue(_ pending: Pending) -> Bool {
        state.withLock { state in
            state.queue.append(pending)
            if state.committing { return false }
            state.committing = true
            return true
        }
    }

    /// The next group, or an empty one (and nobody committing) when the queue is empty.
    func next() -> [Pending] {
        state.withLock { state in
            guard !state.queue.isEmpty else { state.committing = false; return [] }
            let count = min(state.queue.count, Self.maxGroup)
            let group = Array(state.queue.prefix(count))
            state.queue.removeFirst(count)
            return group
        }
    }

    func cached(_ paths: some Sequence<StreamPath>) -> [StreamPath: Cached] {
        state.withLock { state in
            var found: [StreamPath: Cached] = [:]
            for path in paths { if let entry = state.cache[path] { found[path] = entry } }
            return found
        }
    }

    func store(_ entries: [StreamPath: Cached]) {
        state.withLock { state in
            if state.cache.count + entries.count > Self.maxCached { state.cache = [:] }
            state.cache.merge(entries) { _, new in new }
        }
    }

    func forget(_ paths: some Sequence<StreamPath>) {
        state.withLock { state in for path in paths { state.cache[path] = nil } }
    }
}

extension PostgresStreamStore: AppendSubmitting {
    /// Appends through the group commit (see `AppendGroupQueue`).
    func groupAppend(_ path: StreamPath, _ request: AppendRequest) async throws(StoreError) -> AppendOutcome {
        let result = await withCheckedContinuation { reply in
            enqueue(.init(path: path, request: request, reply: .task(reply)))
        }
        return try result.get()
    }

    public func submitAppend(_ path: StreamPath, _ request: AppendRequest, on eventLoop: any EventLoop,
                             completion: @escaping @Sendable (Result<AppendOutcome, StoreError>) -> Void) {
        enqueue(.init(path: path, request: request, reply: .loop(eventLoop, completion)))
    }

    private func enqueue(_ pending: AppendGroupQueue.Pending) {
        if appendGroups.enqueue(pending) { Task { await self.commitGroups() } }
    }

    /// Commits group after group until the queue is empty.
    private func commitGroups() async {
        while true {
            let group = appendGroups.next()
            if group.isEmpty { return }
            await commit(group)
        }
    }

    /// What one decided group writes, and what each of its appends is answered.
    private struct GroupPlan {
        let nowMs: Int64
        var streams: [Int64: (path: StreamPath, entry: AppendGroupQueue.Cached, records: Int64, bytes: Int64)] = [:]
        var order: [Int64] = []
        var records: [(stream: Int64, pos: Int64, slot: Int64, index: Int64, batchEnd: Int64, message: NewMessage)] = []
        var slotCounts: [Int64: Int64] = [:]
        var producers: [Int64: [String: ProducerAck]] = [:]
        var answers: [Int: AppendOutcome] = [:]
        var others: [Int] = []
        var changed = Set<Int64>()
    }

    private func commit(_ group: [AppendGroupQueue.Pending]) async {
        var answered: [Int: Result<AppendOutcome, StoreError>] = [:]
        var others = Array(group.indices)
        // Decided from cached rows, then once more from fresh ones if a row was stale.
        for attempt in 0..<2 {
            let plan: GroupPlan
            do {
                plan = try await decide(group, fresh: attempt > 0)
            } catch {
                for index in group.indices { answered[index] = .failure(error) }
                others = []
                break
            }
            others = plan.others
            if plan.order.isEmpty { break }
            do {
                let versions = try await write(plan)
                var entries: [StreamPath: AppendGroupQueue.Cached] = [:]
                for id in plan.order {
                    guard var stream = plan.streams[id], let version = versions[id] else { continue }
                    stream.entry.version = version
                    entries[stream.path] = stream.entry
                }
                appendGroups.store(entries)
                for key in plan.changed { signal.publish(key) }
                for (index, outcome) in plan.answers { answered[index] = .success(outcome) }
                break
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "HUB02" && attempt == 0 {
                appendGroups.forget(plan.streams.values.map(\.path))
                continue
            } catch let error as PSQLError where ["HUB01", "HUB02"].contains(error.serverInfo?[.sqlState] ?? "") {
                // A record limit to keep, or rows still changing under us: each append on its own.
                appendGroups.forget(plan.streams.values.map(\.path))
                others = Array(group.indices)
                break
            } catch {
                for index in plan.answers.keys { answered[index] = .failure(StoreError(postgres: error)) }
                break
            }
        }
        // The transaction path, in arrival order, after the group (which came first in the stream's order).
        for index in others where answered[index] == nil {
            let pending = group[index]
            appendGroups.forget([pending.path])
            do throws(StoreError) {
                answered[index] = .success(try await appendInTransaction(pending.path, pending.request))
            } catch {
                answered[index] = .failure(error)
            }
        }
        var byLoop: [ObjectIdentifier: (loop: any EventLoop, replies: [(@Sendable (Result<AppendOutcome, StoreError>) -> Void, Result<AppendOutcome, StoreError>)])] = [:]
        for (index, pending) in group.enumerated() {
            let result = answered[index] ?? .failure(.backend("append group left an append unanswered"))
            switch pending.reply {
            case .task(let continuation): continuation.resume(returning: result)
            case .loop(let loop, let completion): byLoop[ObjectIdentifier(loop), default: (loop, [])].replies.append((completion, result))
            }
        }
        for (_, entry) in byLoop {
            let replies = entry.replies
            entry.loop.execute { for (completion, result) in replies { completion(result) } }
        }
    }

    /// Decides every append of the group against the stream rows (cached unless `fresh`), in arrival order.
    private func decide(_ group: [AppendGroupQueue.Pending], fresh: Bool) async throws(StoreError) -> GroupPlan {
        let paths = Set(group.map(\.path))
        var rows = fresh ? [:] : appendGroups.cached(paths)
        let missing = paths.filter { rows[$0] == nil }
        if !missing.isEmpty { rows.merge(try await loadRows(Array(missing))) { old, _ in old } }
        // Producer states not yet looked up.
        var wanted: [(stream: Int64, path: StreamPath, producer: String)] = []
        for pending in group {
            guard let producer = pending.request.producer, let entry = rows[pending.path], entry.producers[producer.id] == nil else { continue }
            if !wanted.contains(where: { $0.stream == entry.row.id && $0.producer == producer.id }) {
                wanted.append((entry.row.id, pending.path, producer.id))
            }
        }
        if !wanted.isEmpty {
            let found = try await loadProducers(wanted.map { ($0.stream, $0.producer) })
            for want in wanted { rows[want.path]?.producers[want.producer] = .some(found[ProducerKey(want.stream, want.producer)]) }
        }

        let nowMs = Self.nowMs
        var plan = GroupPlan(nowMs: nowMs)
        for (index, pending) in group.enumerated() {
            let request = pending.request
            guard var entry = rows[pending.path],
                  !entry.row.deleted, !entry.row.isExpired(nowMs: nowMs),
                  let decision = try? entry.row.checkAppend(request, producerState: request.producer.flatMap { entry.producers[$0.id] ?? nil }),
                  case .write = decision else {
                plan.others.append(index)
                continue
            }
            let id = entry.row.id
            if plan.streams[id] == nil { plan.order.append(id) }
            var bytes: Int64 = 0
            for (i, message) in request.messages.enumerated() {
                plan.slotCounts[entry.row.slotID, default: 0] += 1
                plan.records.append((id, Int64(entry.row.head) + 1 + Int64(i), entry.row.slotID, plan.slotCounts[entry.row.slotID]!,
                                     Int64(entry.row.head) + Int64(request.messages.count), message))
                bytes += Int64(message.body.readableBytes)
            }
            entry.row.head += UInt64(request.messages.count)
            entry.row.closed = request.close
            entry.row.accessedMs = nowMs
            if let seq = request.streamSeq { entry.row.streamSeq = seq }
            var ack: ProducerAck?
            if let producer = request.producer {
                ack = ProducerAck(epoch: producer.epoch, seq: producer.seq)
                entry.producers[producer.id] = .some(ack)
                plan.producers[id, default: [:]][producer.id] = ack
            }
            rows[pending.path] = entry
            let before = plan.streams[id]
            plan.streams[id] = (pending.path, entry, (before?.records ?? 0) + Int64(request.messages.count), (before?.bytes ?? 0) + bytes)
            plan.changed.insert(id)
            if !request.messages.isEmpty { plan.changed.insert(ChangeKey.slot(entry.row.slotID)) }
            plan.answers[index] = .appended(entry.row.info, producer: ack)
        }
        return plan
    }

    private struct ProducerKey: Hashable {
        let stream: Int64, producer: String
        init(_ stream: Int64, _ producer: String) { self.stream = stream; self.producer = producer }
    }

    private func loadRows(_ paths: [StreamPath]) async throws(StoreError) -> [StreamPath: AppendGroupQueue.Cached] {
        let rows = try await single { db in
            try await db.rows("""
                SELECT \(unescaped: PostgresStreamQueries.columns), xmin::text FROM streams WHERE path = ANY(\(paths.map(\.rawValue)))
                """)
        }
        var found: [StreamPath: AppendGroupQueue.Cached] = [:]
        do {
            for r in rows {
                let row = try PostgresStreamQueries.row(r)
                found[row.path] = .init(row: row, version: try r.text(21), producers: [:])
            }
        } catch {
            throw StoreError(postgres: error)
        }
        return found
    }

    private func loadProducers(_ keys: [(Int64, String)]) async throws(StoreError) -> [ProducerKey: ProducerAck] {
        let rows = try await single { db in
            try await db.rows("""
                SELECT p.stream_id, p.producer, p.epoch, p.last_seq FROM producers p
                JOIN unnest(\(keys.map(\.0)), \(keys.map(\.1))) AS k(stream, name) ON p.stream_id = k.stream AND p.producer = k.name
                """)
        }
        var found: [ProducerKey: ProducerAck] = [:]
        do {
            for r in rows { found[ProducerKey(try r.int(0), try r.text(1))] = ProducerAck(epoch: try r.seq(2), seq: try r.seq(3)) }
        } catch {
            throw StoreError(postgres: error)
        }
        return found
    }

    /// One statement, one commit; returns each stream's new row version. Throws the driver's error as it came (the
    /// caller tells a stale group from a failure).
    private func write(_ plan: GroupPlan) async throws -> [Int64: String] {
        let streams = plan.order.map { plan.streams[$0]! }
        let producers = plan.producers.flatMap { stream, states in states.map { (stream, $0.key, $0.value) } }
        var binds = PostgresBindings()
        binds.append(plan.order)
        binds.append(streams.map(\.entry.version))
        binds.append(streams.map(\.entry.row.slotID))
        binds.append(streams.map { Int64($0.entry.row.head) })
        binds.append(streams.map(\.records))
        binds.append(streams.map(\.bytes))
        binds.append(streams.map(\.entry.row.closed))
        binds.append(streams.map { $0.entry.row.streamSeq ?? "" })
        binds.append(streams.map { $0.entry.row.streamSeq != nil })
        binds.append(plan.nowMs)
        binds.append(plan.records.map(\.stream))
        binds.append(plan.records.map(\.pos))
        binds.append(plan.records.map(\.slot))
        binds.append(plan.records.map(\.index))
        binds.append(plan.records.map(\.batchEnd))
        binds.append(plan.records.map { $0.message.type ?? "" })
        binds.append(plan.records.map { $0.message.type != nil })
        binds.append(plan.records.map(\.message.body))
        binds.append(producers.map(\.0))
        binds.append(producers.map(\.1))
        binds.append(producers.map { Int64($0.2.epoch) })
        binds.append(producers.map { Int64($0.2.seq) })
        binds.append(PostgresSession.notification(node: nodeID, changed: plan.changed))
        let query = PostgresQuery(unsafeSQL: "SELECT written_id, written_version FROM hub_append_group(\((1...binds.count).map { "$\($0)" }.joined(separator: ", ")))",
                                  binds: binds)
        let rows = try await leased { db in
            try await db.rows(query)
        }
        var versions: [Int64: String] = [:]
        for r in rows { versions[try r.int(0)] = try r.text(1) }
        return versions
    }
}
