import HubCore
import NIOCore
import Synchronization

/// What a push group follows and how its batches reach a parked member's channel: a slot scope by `seq` for
/// WebSocket subscribers (`SlotTailFeed`), one stream by offset for Durable Streams SSE (`StreamTailFeed`).
protocol TailFeed: Sendable {
    associatedtype Scope: Hashable & Sendable
    associatedtype Batch: Sendable
    associatedtype Form: Hashable & Sendable

    /// The records of `scope` after `cursor`, as of a moment after the caller took `ticket`.
    func read(_ scope: Scope, after cursor: UInt64, ticket: UInt64) async throws -> Batch
    /// Nothing to send (no records, and nothing else a member must hear of, such as a close).
    func isEmpty(_ batch: Batch) -> Bool
    /// The cursor after this batch.
    func next(_ batch: Batch) -> UInt64
    /// Members leave once this batch is written (the stream closed): they are released with `.ended`.
    func ends(_ batch: Batch) -> Bool
    /// The batch as it goes on the wire to a member of this form (`WireFraming`): encoded and framed once, the same
    /// buffer for every member, written to each member's `WireOutlet`.
    func wire(_ batch: Batch, form: Form) -> ByteBuffer
    func delivered(_ batch: Batch, metrics: HubMetrics)
    /// Written (wire bytes) to every member while the scope stays idle this long (SSE comments); nil for none.
    var keepAlive: (interval: Duration, wire: ByteBuffer)? { get }
}

/// Pushes each committed batch to every subscriber parked at the tail of a scope, so a commit costs one task, one
/// shared read and one encoding per scope and form, and one event-loop job per event loop, instead of waking a task
/// per subscriber (DESIGN §5). A subscriber parks only when it has read everything and its connection needs no
/// per-frame work. It is released back to its own pull loop, with the cursor of the last batch it was sent, when its
/// socket stops keeping up (its channel is not writable), on a read error (each reader then meets it on its own
/// read), at its deadline, and on shutdown or cancellation; from there it reads from the store like any other reader.
final class TailPush<Feed: TailFeed>: Sendable {
    enum Release: Sendable, Equatable {
        /// Continue pulling after this cursor.
        case behind(UInt64)
        /// The last batch was written and the feed ended (the stream closed): finish the response.
        case ended
        /// The subscriber's deadline passed while it was parked.
        case expired
        case shuttingDown
        case cancelled
    }

    final class Subscriber: Sendable {
        let id: UInt64
        let channel: any Channel
        let form: Feed.Form
        let deadline: ContinuousClock.Instant?
        /// The channel's `WireOutlet`, looked up on its event loop at the first write.
        let outlet: NIOLoopBoundBox<ChannelHandlerContext?>
        /// Set once; a batch job on the event loop checks it before writing, so a released subscriber gets nothing
        /// more from the push path (jobs for one channel run in order on its event loop).
        let released = Atomic<Bool>(false)
        let continuation = Mutex<CheckedContinuation<Release, Never>?>(nil)

        init(id: UInt64, channel: any Channel, form: Feed.Form, deadline: ContinuousClock.Instant?) {
            self.id = id; self.channel = channel; self.form = form; self.deadline = deadline
            outlet = .makeEmptyBox(valueType: ChannelHandlerContext.self, eventLoop: channel.eventLoop)
        }

        /// Writes and flushes wire bytes through the outlet; on the channel's event loop. False when the channel
        /// cannot take them now (closed, not writable, or without an outlet): the member must leave the push path.
        func send(_ wire: ByteBuffer) -> Bool {
            guard channel.isActive, channel.isWritable else { return false }
            if outlet.value == nil { outlet.value = WireOutlet.context(of: channel) }
            guard let context = outlet.value else { return false }
            context.writeAndFlush(NIOAny(IOData.byteBuffer(wire)), promise: nil)
            return true
        }
    }

    private struct Group {
        /// Tells this group from a later one for the same scope (a dispatcher serves only its own group).
        let id: UInt64
        /// Everything up to this cursor was pushed (or is being pushed) to every member.
        var cursor: UInt64
        var members: [UInt64: Subscriber] = [:]
        var task: Task<Void, Never>?
    }

    private let groups = Mutex<(table: [Feed.Scope: Group], nextID: UInt64)>(([:], 0))
    private let signal: any ChangeSignal
    private let feed: Feed
    private let metrics: HubMetrics
    /// Longest a dispatcher waits on the signal before it looks again (keep-alives and deadlines).
    private static var idleCheck: Duration { .seconds(60) }

    init(signal: any ChangeSignal, feed: Feed, metrics: HubMetrics) {
        self.signal = signal; self.feed = feed; self.metrics = metrics
    }

    /// Parks a subscriber that has read everything after `after` until the push path lets it go.
    /// - Parameter key: the change-signal key that wakes readers of `scope`.
    func park(_ scope: Feed.Scope, key: Int64, after: UInt64, channel: any Channel, form: Feed.Form,
              deadline: ContinuousClock.Instant? = nil) async -> Release {
        let subscriber = groups.withLock { state -> Subscriber? in
            if let group = state.table[scope], group.cursor != after { return nil }  // the tail moved on: pull first
            state.nextID &+= 1
            return Subscriber(id: state.nextID, channel: channel, form: form, deadline: deadline)
        }
        guard let subscriber else { return .behind(after) }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                subscriber.continuation.withLock { $0 = continuation }
                let joined = groups.withLock { state -> Bool in
                    var group: Group
                    if let existing = state.table[scope] {
                        group = existing
                    } else {
                        state.nextID &+= 1
                        group = Group(id: state.nextID, cursor: after)
                    }
                    guard group.cursor == after, !Task.isCancelled, !subscriber.released.load(ordering: .acquiring) else { return false }
                    group.members[subscriber.id] = subscriber
                    metrics.parked.add(1, ordering: .relaxed)
                    if group.task == nil {
                        let id = group.id
                        group.task = Task { await self.dispatch(scope, group: id, key: key) }
                    }
                    state.table[scope] = group
                    return true
                }
                if !joined { release(subscriber, from: scope, Task.isCancelled ? .cancelled : .behind(after)) }
            }
        } onCancel: {
            release(subscriber, from: scope, .cancelled)
        }
    }

    /// Takes the subscriber off the push path (once) and resumes its pull loop (once it is waiting; a release that
    /// comes before the wait began is seen by the wait, which checks for cancellation and membership).
    private func release(_ subscriber: Subscriber, from scope: Feed.Scope, _ outcome: Release) {
        if !subscriber.released.exchange(true, ordering: .acquiringAndReleasing) {
            let emptied = groups.withLock { state -> Task<Void, Never>? in
                guard state.table[scope]?.members.removeValue(forKey: subscriber.id) != nil else { return nil }
                metrics.parked.subtract(1, ordering: .relaxed)
                guard let group = state.table[scope], group.members.isEmpty else { return nil }
                state.table[scope] = nil
                return group.task
            }
            emptied?.cancel()
        }
        subscriber.continuation.withLock { continuation in
            continuation?.resume(returning: outcome)
            continuation = nil
        }
    }

    /// One per scope with parked subscribers: wait for a commit, read once, push to everyone.
    private func dispatch(_ scope: Feed.Scope, group id: UInt64, key: Int64) async {
        let idle = feed.keepAlive.map { min($0.interval, Self.idleCheck) } ?? Self.idleCheck
        var lastSent = ContinuousClock.now
        while !Task.isCancelled {
            guard let cursor = groups.withLock({ state in state.table[scope].flatMap { $0.id == id ? $0.cursor : nil } }) else { return }
            let ticket = signal.ticket(for: key)
            let batch: Feed.Batch
            do {
                batch = try await feed.read(scope, after: cursor, ticket: ticket)
            } catch {
                releaseAll(scope, group: id, .behind(cursor))  // each subscriber meets the error on its own read
                return
            }
            if feed.isEmpty(batch) {
                metrics.dispatchersWaiting.add(1, ordering: .relaxed)
                let outcome = await signal.wait(for: key, after: ticket, timeout: max(.milliseconds(1), idle - (ContinuousClock.now - lastSent)))
                metrics.dispatchersWaiting.subtract(1, ordering: .relaxed)
                switch outcome {
                case .changed: continue
                case .timedOut:
                    if ContinuousClock.now - lastSent >= idle {
                        idleTick(scope, group: id, cursor: cursor)
                        lastSent = .now
                    }
                    continue
                case .shuttingDown: releaseAll(scope, group: id, .shuttingDown); return
                case .cancelled: return
                }
            }
            // Advance the group first: whoever joins from now on joins after this batch.
            let ends = feed.ends(batch)
            let members = groups.withLock { state -> [Subscriber] in
                guard var group = state.table[scope], group.id == id else { return [] }
                group.cursor = feed.next(batch)
                if ends {
                    state.table[scope] = nil
                    metrics.parked.subtract(group.members.count, ordering: .relaxed)
                } else {
                    state.table[scope] = group
                }
                return Array(group.members.values)
            }
            push(batch, from: cursor, to: members, scope: scope, ends: ends)
            lastSent = .now
            if ends { return }
        }
    }

    private func push(_ batch: Feed.Batch, from cursor: UInt64, to members: [Subscriber], scope: Feed.Scope, ends: Bool) {
        var encoded: [Feed.Form: ByteBuffer] = [:]
        for member in members where encoded[member.form] == nil { encoded[member.form] = feed.wire(batch, form: member.form) }
        let wire = encoded
        forEachLoop(members) { member in
            // A socket that is not keeping up leaves the push path before this batch: it reads it itself.
            guard let bytes = wire[member.form], member.send(bytes) else {
                self.release(member, from: scope, .behind(cursor))
                return
            }
            if ends { self.release(member, from: scope, .ended) }
        }
        feed.delivered(batch, metrics: metrics)
    }

    /// The scope stayed idle: keep-alives to every member, and members past their deadline leave.
    private func idleTick(_ scope: Feed.Scope, group id: UInt64, cursor: UInt64) {
        let members = groups.withLock { state -> [Subscriber] in
            guard let group = state.table[scope], group.id == id else { return [] }
            return Array(group.members.values)
        }
        let now = ContinuousClock.now
        let keepAlive = feed.keepAlive?.wire
        forEachLoop(members) { member in
            if let deadline = member.deadline, deadline <= now { return self.release(member, from: scope, .expired) }
            guard let keepAlive else { return }
            if !member.send(keepAlive) { self.release(member, from: scope, .behind(cursor)) }
        }
    }

    /// Runs `body` for every member not yet released, one job per event loop.
    private func forEachLoop(_ members: [Subscriber], _ body: @escaping @Sendable (Subscriber) -> Void) {
        var byLoop: [ObjectIdentifier: (loop: any EventLoop, members: [Subscriber])] = [:]
        for member in members {
            let loop = member.channel.eventLoop
            byLoop[ObjectIdentifier(loop), default: (loop, [])].members.append(member)
        }
        for (_, entry) in byLoop {
            entry.loop.execute {
                for member in entry.members where !member.released.load(ordering: .acquiring) { body(member) }
            }
        }
    }

    /// Ends the group (so nobody joins a group whose dispatcher is gone) and releases every member.
    private func releaseAll(_ scope: Feed.Scope, group id: UInt64, _ outcome: Release) {
        let members = groups.withLock { state -> [Subscriber] in
            guard let group = state.table[scope], group.id == id else { return [] }
            state.table[scope] = nil
            metrics.parked.subtract(group.members.count, ordering: .relaxed)
            return Array(group.members.values)
        }
        for member in members { release(member, from: scope, outcome) }
    }
}
