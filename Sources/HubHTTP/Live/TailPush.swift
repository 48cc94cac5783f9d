import HubCore
import NIOCore
import NIOWebSocket
import Synchronization

/// Pushes each committed batch to every WebSocket subscriber parked at the tail of a scope, so a commit costs one
/// task, one shared read and one encoding per scope, and one event-loop job per event loop, instead of waking a
/// task per subscriber (DESIGN §5). A subscriber parks only when it has read everything and its connection needs
/// no per-frame work (no permessage-deflate, not a durable consumer). It is released back to its own pull loop,
/// with the cursor of the last batch it was sent, when its socket stops keeping up (its channel is not writable),
/// and on shutdown or cancellation; from there it reads from the store like any other reader.
final class TailPush: Sendable {
    enum Release: Sendable {
        /// Continue pulling after this seq.
        case behind(UInt64)
        case shuttingDown
        case cancelled
    }

    final class Subscriber: Sendable {
        let id: UInt64
        let channel: any Channel
        let form: LiveBatch.Form
        /// Set once; a batch job on the event loop checks it before writing, so a released subscriber gets nothing
        /// more from the push path (jobs for one channel run in order on its event loop).
        let released = Atomic<Bool>(false)
        let continuation = Mutex<CheckedContinuation<Release, Never>?>(nil)

        init(id: UInt64, channel: any Channel, form: LiveBatch.Form) { self.id = id; self.channel = channel; self.form = form }
    }

    private struct Group {
        /// Tells this group from a later one for the same scope (a dispatcher serves only its own group).
        let id: UInt64
        /// Everything up to this seq was pushed (or is being pushed) to every member.
        var cursor: UInt64
        var members: [UInt64: Subscriber] = [:]
        var task: Task<Void, Never>?
    }

    private let groups = Mutex<(table: [SlotScope: Group], nextID: UInt64)>(([:], 0))
    private let signal: any ChangeSignal
    private let shared: SharedLogReads
    private let metrics: HubMetrics

    init(signal: any ChangeSignal, shared: SharedLogReads, metrics: HubMetrics) {
        self.signal = signal; self.shared = shared; self.metrics = metrics
    }

    /// Parks a subscriber that has read everything after `after` until the push path lets it go.
    func park(_ scope: SlotScope, key: Int64, after: UInt64, channel: any Channel, form: LiveBatch.Form) async -> Release {
        let subscriber = groups.withLock { state -> Subscriber? in
            if let group = state.table[scope], group.cursor != after { return nil }  // the tail moved on: pull first
            state.nextID &+= 1
            return Subscriber(id: state.nextID, channel: channel, form: form)
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
    private func release(_ subscriber: Subscriber, from scope: SlotScope, _ outcome: Release) {
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
    private func dispatch(_ scope: SlotScope, group id: UInt64, key: Int64) async {
        while !Task.isCancelled {
            guard let cursor = groups.withLock({ state in state.table[scope].flatMap { $0.id == id ? $0.cursor : nil } }) else { return }
            let ticket = signal.ticket(for: key)
            let batch: LiveBatch
            do {
                batch = try await shared.read(scope, after: cursor, ticket: ticket)
            } catch {
                releaseAll(scope, group: id, .behind(cursor))  // each subscriber meets the error on its own read
                return
            }
            if batch.records.isEmpty {
                metrics.dispatchersWaiting.add(1, ordering: .relaxed)
                let outcome = await signal.wait(for: key, after: ticket, timeout: .seconds(60))
                metrics.dispatchersWaiting.subtract(1, ordering: .relaxed)
                switch outcome {
                case .changed, .timedOut: continue
                case .shuttingDown: releaseAll(scope, group: id, .shuttingDown); return
                case .cancelled: return
                }
            }
            // Advance the group first: whoever joins from now on joins after this batch.
            let members = groups.withLock { state -> [Subscriber] in
                guard var group = state.table[scope], group.id == id else { return [] }
                group.cursor = batch.result.next
                state.table[scope] = group
                return Array(group.members.values)
            }
            push(batch, from: cursor, to: members, scope: scope)
        }
    }

    private func push(_ batch: LiveBatch, from cursor: UInt64, to members: [Subscriber], scope: SlotScope) {
        var byLoop: [ObjectIdentifier: (loop: any EventLoop, members: [Subscriber])] = [:]
        for member in members {
            let loop = member.channel.eventLoop
            byLoop[ObjectIdentifier(loop), default: (loop, [])].members.append(member)
        }
        var frames: [LiveBatch.Form: [WebSocketFrame]] = [:]
        for form in Set(members.map(\.form)) {
            frames[form] = batch.frames(form).map { WebSocketFrame(fin: true, opcode: .text, data: $0) }
        }
        let records = batch.records.map(\.record)
        for (_, entry) in byLoop {
            entry.loop.execute { [frames] in
                for member in entry.members where !member.released.load(ordering: .acquiring) {
                    let channel = member.channel
                    // A socket that is not keeping up leaves the push path before this batch: it reads it itself.
                    guard channel.isActive, channel.isWritable else {
                        self.release(member, from: scope, .behind(cursor))
                        continue
                    }
                    for frame in frames[member.form] ?? [] { channel.write(frame, promise: nil) }
                    channel.flush()
                }
            }
        }
        metrics.recordDelivery(records)
    }

    /// Ends the group (so nobody joins a group whose dispatcher is gone) and releases every member.
    private func releaseAll(_ scope: SlotScope, group id: UInt64, _ outcome: Release) {
        let members = groups.withLock { state -> [Subscriber] in
            guard let group = state.table[scope], group.id == id else { return [] }
            state.table[scope] = nil
            metrics.parked.subtract(group.members.count, ordering: .relaxed)
            return Array(group.members.values)
        }
        for member in members { release(member, from: scope, outcome) }
    }
}
