import HubCore
import NIOCore
import Synchronization

/// What a push group follows and how its batches reach a parked member's channel: a slot scope by `seq` for
/// WebSocket subscribers (`SlotTailFeed`), one stream path by offset for Durable Streams SSE and long-poll
/// (`StreamTailFeed`).
protocol TailFeed: Sendable {
    associatedtype Scope: Hashable & Sendable
    associatedtype Batch: Sendable
    associatedtype Form: Hashable & Sendable

    /// The records of `scope` after `cursor`, as of a moment after the caller took `ticket`.
    /// - Parameter key: the change-signal key of the scope (for a stream: its id, which tells incarnations apart).
    func read(_ scope: Scope, key: Int64, after cursor: UInt64, ticket: UInt64) async throws -> Batch
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
    /// Written (wire bytes) to every streaming member while the scope stays idle this long (SSE comments); nil for none.
    var keepAlive: (interval: Duration, wire: ByteBuffer)? { get }
}

/// Pushes each committed batch to every subscriber parked at the tail of a scope, so a commit costs one task, one
/// shared read and one encoding per scope and form, and a few event-loop jobs per event loop, instead of waking a
/// task per subscriber (DESIGN §5).
///
/// A batch is written in slices of members (the loop reads and commits between them), and the next read waits until
/// the whole batch is written: under load the commits made meanwhile go out together, one write per member for all
/// of them — the fewer writes, the more a saturated core delivers (3× at 1000 SSE subscribers, RESULTS.md).
///
/// Two kinds of member park here. A *streaming* member (SSE, WebSocket) gets every batch as wire bytes until it is
/// released. A *one-shot* member (long-poll) is handed the first batch on its event loop (`.answered`) and leaves:
/// it writes its own response. A member is released back to its own pull loop, with the cursor it has, when its
/// socket stops keeping up (its channel is not writable), on a read error (each reader then meets it on its own
/// read), at its deadline (one timer wheel for all of them), and on shutdown or cancellation.
///
/// A group outlives its last member until the scope has been idle for a keep-alive interval (or a minute), so the
/// long-pollers answered by a batch find it again when they come back for the next one and join at once, without a
/// read (`joinAtTail`, the hot path).
final class TailPush<Feed: TailFeed>: Sendable {
    enum Release: Sendable {
        /// Continue pulling after this cursor.
        case behind(UInt64)
        /// The last batch was written and the feed ended (the stream closed): finish the response.
        case ended
        /// A one-shot member's batch, handed over on the member's event loop.
        case answered(Feed.Batch)
        /// The subscriber's deadline passed while it was parked.
        case expired
        case shuttingDown
        case cancelled
    }

    /// How a parked member takes batches.
    enum Delivery: Sendable {
        /// Every batch, as the wire bytes of this form, until released.
        case stream(Feed.Form)
        /// The first batch only, as `.answered`.
        case once
    }

    final class Subscriber: Sendable {
        let id: UInt64
        let channel: any Channel
        /// The channel's event loop, kept: a fan-out sorts every member by it.
        let eventLoop: any EventLoop
        let delivery: Delivery
        /// The channel's `WireOutlet`, looked up on its event loop at the first write; none for a one-shot member,
        /// which writes its own answer (one allocation less per long-poll).
        let outlet: NIOLoopBoundBox<ChannelHandlerContext?>?
        /// Set once; a batch job on the event loop checks it before writing, so a released subscriber gets nothing
        /// more from the push path (jobs for one channel run in order on its event loop).
        let released = Atomic<Bool>(false)
        /// Where the outcome goes (a continuation, or the hot path's handler); taken once.
        private let resume = Mutex<(@Sendable (Release) -> Void)?>(nil)

        init(id: UInt64, channel: any Channel, delivery: Delivery) {
            self.id = id; self.channel = channel; self.eventLoop = channel.eventLoop; self.delivery = delivery
            if case .stream = delivery {
                outlet = .makeEmptyBox(valueType: ChannelHandlerContext.self, eventLoop: eventLoop)
            } else {
                outlet = nil
            }
        }

        func onRelease(_ body: @escaping @Sendable (Release) -> Void) { resume.withLock { $0 = body } }

        /// Hands `outcome` over, once; an outcome before `onRelease` is dropped (the joiner then sees `released`).
        func finish(_ outcome: Release) {
            resume.withLock { body -> (@Sendable (Release) -> Void)? in
                defer { body = nil }
                return body
            }?(outcome)
        }

        /// Writes and flushes wire bytes through the outlet; on the channel's event loop. False when the channel
        /// cannot take them now (closed, not writable, or without an outlet): the member must leave the push path.
        func send(_ wire: ByteBuffer) -> Bool {
            guard channel.isActive, channel.isWritable else { return false }
            guard let outlet else { return false }
            if outlet.value == nil { outlet.value = WireOutlet.context(of: channel) }
            guard let context = outlet.value else { return false }
            context.writeAndFlush(NIOAny(IOData.byteBuffer(wire)), promise: nil)
            return true
        }
    }

    private struct Group {
        /// Tells this group from a later one for the same scope (a dispatcher serves only its own group).
        let id: UInt64
        /// The change-signal key (for a stream, its id: another key is another incarnation of the path).
        let key: Int64
        /// Everything up to this cursor was pushed (or is being pushed) to every member.
        var cursor: UInt64
        /// The newest batch at `cursor` (what a one-shot member that times out answers from); nil until one is known.
        var tail: Feed.Batch?
        /// The last batch pushed, the cursor it was read after, and the change-signal ticket taken before its read.
        var last: (batch: Feed.Batch, after: UInt64, ticket: UInt64)?
        private(set) var members: [UInt64: Subscriber] = [:]
        /// How many members are one-shot: a batch answers them and they leave; without any, the members stay as they are.
        private(set) var oneShots = 0
        var task: Task<Void, Never>?
        /// When a member last joined: a group empty for an idle interval since then ends.
        var lastJoined = ContinuousClock.now

        /// Adds `member` if the group is at `after` and knows its newest batch there; returns that batch.
        mutating func join(_ member: Subscriber, at after: UInt64) -> Feed.Batch? {
            guard cursor == after, let tail else { return nil }
            add(member)
            return tail
        }

        mutating func add(_ member: Subscriber) {
            members[member.id] = member
            if case .once = member.delivery { oneShots += 1 }
            lastJoined = .now
        }

        mutating func remove(_ id: UInt64) -> Subscriber? {
            guard let member = members.removeValue(forKey: id) else { return nil }
            if case .once = member.delivery { oneShots -= 1 }
            return member
        }

        /// Takes the one-shot members out (a batch answers them); returns how many left.
        mutating func dropOneShots() -> Int {
            guard oneShots > 0 else { return 0 }
            let before = members.count
            members = members.filter { if case .stream = $0.value.delivery { true } else { false } }
            oneShots = 0
            return before - members.count
        }
    }

    private struct Expiry: Hashable, Sendable {
        let scope: Feed.Scope
        /// Unique among all members of all groups: it alone is the key (hashing the scope, a stream path, four
        /// times per long-poll was a measurable part of a poll's cost).
        let member: UInt64

        static func == (a: Self, b: Self) -> Bool { a.member == b.member }
        func hash(into hasher: inout Hasher) { hasher.combine(member) }
    }

    private let groups = Mutex<(table: [Feed.Scope: Group], nextID: UInt64)>(([:], 0))

    /// Runs `body` on the group of `scope` in place (nil when there is none). The group is moved out of the table and
    /// back: mutating it through the subscript allocated the `_modify` accessor's coroutine frames, six allocations
    /// per long-poll (heaptrack), and a copy of the group would copy its members (every parked reader).
    @discardableResult
    private static func updating<R>(_ table: inout [Feed.Scope: Group], _ scope: Feed.Scope, _ body: (inout Group) -> R?) -> R? {
        guard var group = table.removeValue(forKey: scope) else { return nil }
        defer { table[scope] = group }
        return body(&group)
    }
    private let signal: any ChangeSignal
    private let feed: Feed
    private let metrics: HubMetrics
    private let slice: Int
    /// Every parked member's deadline, on one ticking task.
    private let deadlines: TimerWheel<Expiry>
    /// Longest a dispatcher waits on the signal before it looks again (keep-alives, and ending an empty group).
    private static var idleCheck: Duration { .seconds(60) }

    /// - Parameter slice: members written per event-loop job (`HTTPLimits.pushSlice`).
    init(signal: any ChangeSignal, feed: Feed, metrics: HubMetrics, slice: Int) {
        self.signal = signal; self.feed = feed; self.metrics = metrics; self.slice = max(1, slice)
        let relay = ExpiryRelay<Feed>()
        deadlines = TimerWheel { keys in relay.push?.expire(keys) }
        relay.push = self
    }

    /// Parks a subscriber that has read everything after `after` until the push path lets it go.
    /// - Parameters:
    ///   - key: the change-signal key that wakes readers of `scope`.
    ///   - tail: the caller's read at `after`, kept by the group for one-shot members that time out.
    func park(_ scope: Feed.Scope, key: Int64, after: UInt64, channel: any Channel, delivery: Delivery,
              deadline: ContinuousClock.Instant? = nil, tail: Feed.Batch? = nil) async -> Release {
        let subscriber = groups.withLock { state -> Subscriber? in
            if let group = state.table[scope], group.key == key, !Self.canJoin(group, at: after) { return nil }
            state.nextID &+= 1
            return Subscriber(id: state.nextID, channel: channel, delivery: delivery)
        }
        guard let subscriber else { return .behind(after) }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                subscriber.onRelease { continuation.resume(returning: $0) }
                let joined = groups.withLock { state -> Bool in
                    guard !Task.isCancelled, !subscriber.released.load(ordering: .acquiring) else { return false }
                    var retired: Group?
                    var group: Group
                    if state.table[scope]?.key == key {
                        // Taken out of the table, so it is the only owner of its members: adding one does not copy them all.
                        group = state.table.removeValue(forKey: scope)!
                        guard Self.canJoin(group, at: after) else {
                            state.table[scope] = group
                            return false
                        }
                        if group.cursor != after {
                            // Nobody follows the old cursor: the group moves on to the joiner's (its dispatcher drops a
                            // batch read from the old one, and wakes for the commits in between).
                            group.cursor = after
                            group.tail = nil
                        }
                    } else {
                        retired = state.table[scope]  // another incarnation of the scope: its members pull
                        state.nextID &+= 1
                        group = Group(id: state.nextID, key: key, cursor: after)
                    }
                    if let tail { group.tail = tail }
                    group.add(subscriber)
                    metrics.parked.add(1, ordering: .relaxed)
                    if group.task == nil {
                        let id = group.id
                        group.task = Task { await self.dispatch(scope, group: id, key: key) }
                    }
                    state.table[scope] = group
                    if let retired {
                        retired.task?.cancel()
                        metrics.parked.subtract(retired.members.count, ordering: .relaxed)
                        for member in retired.members.values {
                            member.released.store(true, ordering: .releasing)
                            deadlines.cancel(Expiry(scope: scope, member: member.id))
                            member.finish(.behind(retired.cursor))
                        }
                    }
                    return true
                }
                if joined {
                    if let deadline { deadlines.schedule(Expiry(scope: scope, member: subscriber.id), after: deadline - .now) }
                } else {
                    release(subscriber, from: scope, Task.isCancelled ? .cancelled : .behind(after))
                }
            }
        } onCancel: {
            release(subscriber, from: scope, .cancelled)
        }
    }

    /// Whether a reader that read everything up to `after` may join `group`: at its cursor; or ahead of it when
    /// nobody follows the group (its dispatcher has not read the newest commits yet, which wake it). A reader behind
    /// the cursor has records to read first.
    private static func canJoin(_ group: Group, at after: UInt64) -> Bool {
        group.cursor == after || (group.members.isEmpty && after > group.cursor)
    }

    /// Joins a group that is already at `after`, without reading: the hot path's long-poll that comes back for the
    /// next batch (`.once`), or its SSE reader at the tail (`.stream`). Returns the group's newest batch at that cursor
    /// (what a timeout answers from) and the member (to `leave` with), or nil when there is no such group (the caller
    /// then takes the full path). `onRelease` runs once, on any thread; a streaming member's batches are written to its
    /// channel's `WireOutlet` by jobs on its event loop that run after the caller's current job.
    func joinAtTail(_ scope: Feed.Scope, after: UInt64, channel: any Channel, delivery: Delivery = .once,
                    deadline: ContinuousClock.Instant,
                    onRelease: @escaping @Sendable (Release) -> Void) -> (tail: Feed.Batch, member: Subscriber)? {
        let joined = groups.withLock { state -> (Subscriber, Feed.Batch)? in
            let subscriber = Subscriber(id: state.nextID &+ 1, channel: channel, delivery: delivery)
            guard let tail = Self.updating(&state.table, scope, { $0.join(subscriber, at: after) }) else { return nil }
            state.nextID &+= 1
            subscriber.onRelease(onRelease)
            metrics.parked.add(1, ordering: .relaxed)
            return (subscriber, tail)
        }
        guard let (subscriber, tail) = joined else { return nil }
        deadlines.schedule(Expiry(scope: scope, member: subscriber.id), after: deadline - .now)
        return (tail, subscriber)
    }

    /// The group's last pushed batch, if it was read after `after` and nothing changed in the scope since: exactly
    /// what a read after `after` returns now. The hot path answers a long-poll that comes back one batch late (its
    /// group moved on meanwhile) from it, as the router would from its own read. Nil when the signal may learn of
    /// commits late (another node's), or there is no such batch.
    func lastBatch(_ scope: Feed.Scope, after: UInt64) -> Feed.Batch? {
        guard signal.publishesEveryCommitFirst,
              let (key, last) = groups.withLock({ state in state.table[scope].flatMap { g in g.last.map { (g.key, $0) } } }),
              last.after == after, signal.ticket(for: key) == last.ticket
        else { return nil }
        return last.batch
    }

    /// Takes a member that joined with `joinAtTail` off the push path (its connection closed); it is released with
    /// `.cancelled` unless something released it first.
    func leave(_ scope: Feed.Scope, _ member: Subscriber) {
        release(member, from: scope, .cancelled)
    }

    /// Takes the subscriber off the push path (once) and hands its outcome over (once it is waiting; a release that
    /// comes before the wait began is seen by the wait, which checks for cancellation and membership).
    private func release(_ subscriber: Subscriber, from scope: Feed.Scope, _ outcome: Release) {
        if !subscriber.released.exchange(true, ordering: .acquiringAndReleasing) {
            groups.withLock { state in
                guard Self.updating(&state.table, scope, { $0.remove(subscriber.id) }) != nil else { return }
                metrics.parked.subtract(1, ordering: .relaxed)
            }
            deadlines.cancel(Expiry(scope: scope, member: subscriber.id))
        }
        subscriber.finish(outcome)
    }

    private func expire(_ keys: [Expiry]) {
        let due = groups.withLock { state in keys.compactMap { key in state.table[key.scope]?.members[key.member].map { (key.scope, $0) } } }
        for (scope, member) in due { release(member, from: scope, .expired) }
    }

    /// One per scope with parked subscribers: wait for a commit, read once, push to everyone.
    private func dispatch(_ scope: Feed.Scope, group id: UInt64, key: Int64) async {
        let idle = feed.keepAlive.map { min($0.interval, Self.idleCheck) } ?? Self.idleCheck
        var lastSent = ContinuousClock.now
        while !Task.isCancelled {
            guard let cursor = groups.withLock({ state -> UInt64? in
                guard let group = state.table[scope], group.id == id else { return nil }
                if group.members.isEmpty, ContinuousClock.now - group.lastJoined >= idle {
                    state.table[scope] = nil  // nobody came back for an idle interval
                    return nil
                }
                return group.cursor
            }) else { return }
            let ticket = signal.ticket(for: key)
            let batch: Feed.Batch
            do {
                batch = try await feed.read(scope, key: key, after: cursor, ticket: ticket)
            } catch {
                releaseAll(scope, group: id, .behind(cursor))  // each subscriber meets the error on its own read
                return
            }
            if feed.isEmpty(batch) {
                groups.withLock { state in
                    Self.updating(&state.table, scope) { group in
                        if group.id == id, group.cursor == cursor { group.tail = batch }
                    }
                }
                metrics.dispatchersWaiting.add(1, ordering: .relaxed)
                let outcome = await signal.wait(for: key, after: ticket, timeout: max(.milliseconds(1), idle - (ContinuousClock.now - lastSent)))
                metrics.dispatchersWaiting.subtract(1, ordering: .relaxed)
                switch outcome {
                case .changed: continue
                case .timedOut:
                    guard ContinuousClock.now - lastSent >= idle else { continue }
                    await idleTick(scope, group: id, cursor: cursor)
                    lastSent = .now
                    continue
                case .shuttingDown: releaseAll(scope, group: id, .shuttingDown); return
                case .cancelled: return
                }
            }
            // Advance the group first: whoever joins from now on joins after this batch.
            let ends = feed.ends(batch)
            let members = groups.withLock { state -> [UInt64: Subscriber]? in
                guard var group = state.table[scope], group.id == id else { return [:] }
                guard group.cursor == cursor else { return nil }  // moved to a joiner's cursor meanwhile: read again
                group.cursor = feed.next(batch)
                group.tail = batch
                group.last = (batch, cursor, ticket)
                if ends {
                    state.table[scope] = nil
                    metrics.parked.subtract(group.members.count, ordering: .relaxed)
                } else {
                    // One-shot members are answered by this batch and leave now, so a commit that lands while their
                    // responses are written cannot reach them twice.
                    var staying = group
                    metrics.parked.subtract(staying.dropOneShots(), ordering: .relaxed)
                    state.table[scope] = staying
                }
                return group.members  // shares the table's storage: nothing per member under the lock
            }
            guard let members else { continue }
            // Awaited: commits made while this batch is written reach the next read together, one write per member.
            await push(batch, from: cursor, to: members, scope: scope, ends: ends)
            lastSent = .now
            if ends { return }
        }
    }

    private func push(_ batch: Feed.Batch, from cursor: UInt64, to members: [UInt64: Subscriber], scope: Feed.Scope, ends: Bool) async {
        // The batch's wire bytes for each form among the members (a few at most, so a list), made once.
        var encoded: [(form: Feed.Form, bytes: ByteBuffer)] = []
        let loops = Self.byLoop(members.values) { member in
            if case .stream(let form) = member.delivery, !encoded.contains(where: { $0.form == form }) {
                encoded.append((form, feed.wire(batch, form: form)))
            }
        }
        let wire = encoded
        await forEachLoop(loops) { member in
            switch member.delivery {
            case .once:
                // Already out of the group; the member writes its answer from the batch.
                if !member.released.exchange(true, ordering: .acquiringAndReleasing) {
                    self.deadlines.cancel(Expiry(scope: scope, member: member.id))
                    member.finish(.answered(batch))
                }
            case .stream(let form):
                // A socket that is not keeping up leaves the push path before this batch: it reads it itself.
                guard let bytes = wire.first(where: { $0.form == form })?.bytes, member.send(bytes) else {
                    self.release(member, from: scope, .behind(cursor))
                    return
                }
                if ends { self.release(member, from: scope, .ended) }
            }
        }
        feed.delivered(batch, metrics: metrics)
    }

    /// The scope stayed idle: keep-alives to every streaming member.
    private func idleTick(_ scope: Feed.Scope, group id: UInt64, cursor: UInt64) async {
        guard let keepAlive = feed.keepAlive?.wire else { return }
        let members = groups.withLock { state -> [Subscriber] in
            guard let group = state.table[scope], group.id == id else { return [] }
            return group.members.values.filter { if case .stream = $0.delivery { true } else { false } }
        }
        await forEachLoop(Self.byLoop(members)) { member in
            if !member.send(keepAlive) { self.release(member, from: scope, .behind(cursor)) }
        }
    }

    /// A fan-out is written in jobs of `slice` members (`HTTPLimits.pushSlice`), the next scheduled `sliceGap`
    /// later: NIO runs every queued job before it polls again, so one job for all members would hold off the loop's
    /// reads — the next appends — for all of it.
    private static var sliceGap: TimeAmount { .microseconds(5) }

    /// Members by event loop, in one pass that also calls `each` for every member. There is a loop per core, so a
    /// short list searched in order beats hashing every member's loop (a fan-out to 1000 members spent ~5 % of its
    /// CPU sorting them before the first write).
    private static func byLoop(_ members: some Sequence<Subscriber>,
                               each: (Subscriber) -> Void = { _ in }) -> [(loop: any EventLoop, members: [Subscriber])] {
        var loops: [(loop: any EventLoop, members: [Subscriber])] = []
        for member in members {
            each(member)
            if let index = loops.firstIndex(where: { $0.loop === member.eventLoop }) {
                loops[index].members.append(member)
            } else {
                loops.append((member.eventLoop, [member]))
            }
        }
        return loops
    }

    /// Runs `body` on its event loop for every member not yet released, in slices of `slice` members per loop;
    /// returns once every slice ran.
    private func forEachLoop(_ loops: [(loop: any EventLoop, members: [Subscriber])], _ body: @escaping @Sendable (Subscriber) -> Void) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let countdown = Countdown(loops.count) { continuation.resume() }
            for (loop, members) in loops {
                @Sendable func run(from start: Int) {
                    let end = min(start + slice, members.count)
                    for member in members[start..<end] where !member.released.load(ordering: .acquiring) { body(member) }
                    if end == members.count {
                        countdown.tick()
                    } else {
                        // Failed only when the loop shuts down: nothing is left to write then.
                        loop.scheduleTask(in: Self.sliceGap) { run(from: end) }.futureResult.whenFailure { _ in countdown.tick() }
                    }
                }
                loop.execute { run(from: 0) }
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

/// Lets the timer wheel, made before the push it fires into, reach it without keeping it alive.
private final class ExpiryRelay<Feed: TailFeed>: @unchecked Sendable {  // written once in init, before any deadline
    weak var push: TailPush<Feed>?
}

/// Calls `done` once `tick` was called `count` times.
private final class Countdown: Sendable {
    private let remaining: Atomic<Int>
    private let done: @Sendable () -> Void

    init(_ count: Int, done: @escaping @Sendable () -> Void) {
        remaining = Atomic(count)
        self.done = done
        if count == 0 { done() }
    }

    func tick() {
        if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { done() }
    }
}
