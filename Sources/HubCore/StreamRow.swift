import NIOCore

/// A stream's stored state, as every backend keeps it (one row of `streams`). The rules that decide what a create or
/// an append does with it live here too, so each backend only loads, locks and writes.
public struct StreamRow: Sendable {
    public var id: Int64
    public var path: StreamPath
    public var slotID: Int64
    public var contentType: ContentType
    public var createdMs: Int64
    public var accessedMs: Int64
    public var ttlSeconds: Int64?
    public var expiresAtMs: Int64?
    public var expiresAtText: String?
    public var closed: Bool
    public var streamSeq: String?
    public var head: UInt64
    public var parentID: Int64?
    public var parentHead: UInt64?
    public var forkSource: String?
    public var forkOffset: Int64?
    public var forkSubOffset: Int64
    public var forkCount: Int64
    public var deleted: Bool
    /// Retention removed this stream's records up to this position (and up to this slot `seq`).
    public var trimmedPos: UInt64
    public var trimmedSeq: UInt64

    public init(id: Int64, path: StreamPath, slotID: Int64, contentType: ContentType, createdMs: Int64, accessedMs: Int64, ttlSeconds: Int64?,
                expiresAtMs: Int64?, expiresAtText: String?, closed: Bool, streamSeq: String?, head: UInt64, parentID: Int64?, parentHead: UInt64?,
                forkSource: String?, forkOffset: Int64?, forkSubOffset: Int64, forkCount: Int64, deleted: Bool, trimmedPos: UInt64, trimmedSeq: UInt64) {
        self.id = id; self.path = path; self.slotID = slotID; self.contentType = contentType; self.createdMs = createdMs
        self.accessedMs = accessedMs; self.ttlSeconds = ttlSeconds; self.expiresAtMs = expiresAtMs; self.expiresAtText = expiresAtText
        self.closed = closed; self.streamSeq = streamSeq; self.head = head; self.parentID = parentID; self.parentHead = parentHead
        self.forkSource = forkSource; self.forkOffset = forkOffset; self.forkSubOffset = forkSubOffset; self.forkCount = forkCount
        self.deleted = deleted; self.trimmedPos = trimmedPos; self.trimmedSeq = trimmedSeq
    }

    public var expiry: StreamExpiry? {
        if let ttlSeconds { return .ttl(seconds: UInt64(ttlSeconds)) }
        if let expiresAtMs { return .at(millisecondsSince1970: expiresAtMs, text: expiresAtText ?? "") }
        return nil
    }

    public func isExpired(nowMs: Int64) -> Bool {
        if let expiresAtMs, nowMs >= expiresAtMs { return true }
        if let ttlSeconds, nowMs >= accessedMs + ttlSeconds * 1000 { return true }
        return false
    }

    public var info: StreamInfo {
        StreamInfo(id: id, path: path, contentType: contentType, head: Offset(head), closed: closed, expiry: expiry,
                   createdAtMilliseconds: createdMs)
    }

    /// A readable stream, as a reader sees it: expired streams are absent (or gone while forks hold them).
    public func requireReadable(nowMs: Int64) throws(StoreError) {
        if deleted { throw .streamGone(path) }
        if isExpired(nowMs: nowMs) { throw forkCount > 0 ? .streamGone(path) : .streamNotFound(path) }
    }

    /// The lineage this stream reads, oldest ancestor first: a fork reads positions up to its fork point from its
    /// source chain, later ones from itself. `parent` loads an ancestor by id.
    public func lineage(parent: (Int64) throws(StoreError) -> StreamRow?) throws(StoreError) -> [StreamSegment] {
        var out: [StreamSegment] = []
        var current = self
        var high = head
        while true {
            let low = current.parentHead ?? 0
            if high > low { out.append(StreamSegment(stream: current.id, low: low, high: high, trimmed: current.trimmedPos)) }
            guard let parentID = current.parentID, let parentHead = current.parentHead else { break }
            guard let next = try parent(parentID) else { throw .backend("fork source \(parentID) missing") }
            high = min(high, parentHead)
            current = next
        }
        return out.reversed()
    }

    // MARK: Create

    /// Durable Streams §2: an existing stream answers 200 only to the same content type, expiry, closed state and fork.
    public func requireSameConfiguration(_ request: CreateRequest) throws(StoreError) {
        func conflict(_ reason: String) -> StoreError { .streamConflict(path, reason: reason) }
        let requestedType = request.contentType ?? (request.fork == nil ? .octetStream : contentType)
        guard requestedType.matches(contentType) else { throw conflict("it exists with content type \(contentType.raw)") }
        // A fork without its own expiry inherited its source's; only an explicit one must match.
        if request.fork == nil || request.expiry != nil {
            switch (request.expiry, expiry) {
            case (nil, nil): break
            case (let a?, let b?) where a.sameConfiguration(as: b): break
            default: throw conflict("it exists with a different TTL or Expires-At")
            }
        }
        guard request.closed == closed else { throw conflict(closed ? "it exists and is closed" : "it exists and is open") }
        let fork = request.fork
        guard fork?.source.rawValue == forkSource, fork?.offset.map({ Int64($0.position) }) == forkOffset,
              Int64(fork?.subOffset ?? 0) == forkSubOffset else { throw conflict("it exists with a different fork origin") }
    }

    /// Where a fork of this stream (its source) starts: the position it forks at, and whether the sub-offset cuts into
    /// the record after it (which the caller then loads and hands to `forkPlan`).
    public func forkPosition(_ fork: ForkPoint, request: CreateRequest, path newPath: StreamPath) throws(StoreError) -> (at: UInt64, needsNextRecord: Bool) {
        if deleted { throw .forkSourceGone(fork.source) }
        if let requested = request.contentType, !requested.matches(contentType) {
            throw .streamConflict(newPath, reason: "a fork's content type must match its source's (\(contentType.raw))")
        }
        let at = fork.offset?.position ?? head
        guard at <= head else { throw .invalidFork("Stream-Fork-Offset is beyond the source's tail") }
        guard fork.subOffset > 0 else { return (at, false) }
        guard head > 0 else { throw .invalidFork("a sub-offset needs a source with data") }
        guard at < head else { throw .invalidFork("Stream-Fork-Sub-Offset points past the next data boundary") }
        return (at, true)
    }

    /// How a new stream forks from this one (its source): content type, expiry, the position its own records follow,
    /// and the partial record a byte sub-offset carries over. `next` is the record after `at` when `forkPosition`
    /// asked for it.
    public func forkPlan(_ fork: ForkPoint, at: UInt64, next: (body: ByteBuffer, batchEnd: UInt64)?, request: CreateRequest) throws(StoreError) -> ForkPlan {
        var plan = ForkPlan(contentType: request.contentType ?? contentType, expiry: request.expiry ?? expiry, head: at, partial: nil)
        guard fork.subOffset > 0 else { return plan }
        guard let next else { throw .invalidFork("Stream-Fork-Sub-Offset points past the next data boundary") }
        if contentType.isJSON {
            // Messages of one append share a batch; the sub-offset counts messages into it.
            guard fork.subOffset <= next.batchEnd - at else { throw .invalidFork("Stream-Fork-Sub-Offset exceeds the message count") }
            plan.head = at + fork.subOffset
        } else {
            let length = UInt64(next.body.readableBytes)
            guard fork.subOffset <= length else { throw .invalidFork("Stream-Fork-Sub-Offset exceeds the message length") }
            if fork.subOffset == length {
                plan.head = at + 1
            } else {
                plan.partial = NewMessage(body: next.body.getSlice(at: next.body.readerIndex, length: Int(fork.subOffset))!)
            }
        }
        return plan
    }

    // MARK: Append

    /// Decides an append against this (live, not deleted) stream and the producer's stored state, in the order
    /// Durable Streams §3–§5 prescribe: producer fencing and dedup, closed, content type, producer sequence, `Stream-Seq`.
    public func checkAppend(_ request: AppendRequest, producerState state: ProducerAck?) throws(StoreError) -> AppendDecision {
        if let producer = request.producer, let state {
            // Fencing and dedup come first: a zombie gets 403 and a retry gets its original answer even after a close.
            if producer.epoch < state.epoch { throw .producerStaleEpoch(current: state.epoch) }
            if producer.epoch == state.epoch && producer.seq <= state.seq { return .duplicate(state) }
        }
        if closed {
            if request.messages.isEmpty && request.close && request.producer == nil { return .alreadyClosed }  // closing twice is idempotent
            throw .streamClosed(head: Offset(head))
        }
        if !request.messages.isEmpty, let type = request.contentType, !type.matches(contentType) {
            throw .contentTypeMismatch(expected: contentType.raw)
        }
        if let producer = request.producer {
            if let state {
                if producer.epoch > state.epoch {
                    guard producer.seq == 0 else { throw .producerEpochSeqNotZero }
                } else if producer.seq != state.seq + 1 {
                    throw .producerSeqGap(expected: state.seq + 1, received: producer.seq)
                }
            } else if producer.seq != 0 {
                throw .producerSeqGap(expected: 0, received: producer.seq)
            }
        }
        // Stream-Seq is opaque and compared bytewise: it must sort strictly after the last one.
        if let seq = request.streamSeq, let last = streamSeq, !last.utf8.lexicographicallyPrecedes(seq.utf8) {
            throw .streamSeqRegression(last: last)
        }
        return .write
    }
}

/// One stretch of a stream's lineage: the records of `stream` with positions in `(low, high]`, of which retention
/// removed those up to `trimmed`.
public struct StreamSegment: Sendable {
    public let stream: Int64
    public let low: UInt64
    public let high: UInt64
    public let trimmed: UInt64

    /// Where a read of this segment starts, for a read that asked for records after `after` and has reached `from`:
    /// positions after the returned one, up to `high`; nil when retention removed the rest of the segment. A read
    /// from the start skips what retention removed (moving `from` and `start`, where the read really began); any
    /// other offset below it throws `.belowRetention`.
    public func readStart(after: Offset, from: inout UInt64, start: inout Offset) throws(StoreError) -> UInt64? {
        let floor = min(trimmed, high)
        if floor > max(from, low) {
            if after.position > 0 { throw .belowRetention(floor: .offset(Offset(floor))) }
            from = floor
            start = Offset(floor)
            if floor == high { return nil }
        }
        return max(from, low)
    }
}

/// A slot's row as the writers and retention see it.
public struct SlotRow: Sendable {
    public let id: Int64
    public let headSeq: UInt64
    public let floorSeq: UInt64
    public let maxAgeSeconds: Int64?
    public let maxBytes: Int64?
    public let maxRecords: Int64?
    public init(id: Int64, headSeq: UInt64, floorSeq: UInt64, maxAgeSeconds: Int64?, maxBytes: Int64?, maxRecords: Int64?) {
        self.id = id; self.headSeq = headSeq; self.floorSeq = floorSeq
        self.maxAgeSeconds = maxAgeSeconds; self.maxBytes = maxBytes; self.maxRecords = maxRecords
    }
}

/// What `StreamRow.checkAppend` decided.
public enum AppendDecision: Sendable {
    /// A producer retry of something already stored: answer it, write nothing (but touch a sliding TTL).
    case duplicate(ProducerAck)
    /// A close-only request on a closed stream: answer success, write nothing.
    case alreadyClosed
    /// Store the records, the close and the producer state.
    case write
}

/// How a new stream forks (see `StreamRow.forkPlan`).
public struct ForkPlan: Sendable {
    public var contentType: ContentType
    public var expiry: StreamExpiry?
    /// The fork's own records start after this position; everything up to it is read from the source.
    public var head: UInt64
    /// A byte sub-offset's cut of the next source record, which becomes the fork's first own record.
    public var partial: NewMessage?
}

/// Event keys (events surface): which events of one request are stored, and which answer an earlier `seq`.
public struct EventKeyPlan: Sendable {
    /// Indexes of the events to store, in order.
    public let fresh: [Int]
    /// The distinct keys of the request, to look up in the store's window before `resolve`.
    public let keys: [String]
    private let firstIndexOfKey: [String: Int]

    public init(_ events: [NewEvent]) {
        var firstIndexOfKey: [String: Int] = [:]
        var keys: [String] = []
        for (i, event) in events.enumerated() {
            guard let key = event.key, firstIndexOfKey[key] == nil else { continue }
            firstIndexOfKey[key] = i
            keys.append(key)
        }
        self.firstIndexOfKey = firstIndexOfKey
        self.keys = keys
        fresh = []
    }

    private init(fresh: [Int], keys: [String], firstIndexOfKey: [String: Int]) {
        self.fresh = fresh; self.keys = keys; self.firstIndexOfKey = firstIndexOfKey
    }

    /// With the keys the store already knows (within the window): the events that must be stored — those without a
    /// key, and the first event of each unknown key; repeats inside the request store nothing.
    public func resolving(known: [String: UInt64], _ events: [NewEvent]) -> EventKeyPlan {
        let fresh = events.indices.filter { i in
            guard let key = events[i].key else { return true }
            return firstIndexOfKey[key] == i && known[key] == nil
        }
        return EventKeyPlan(fresh: fresh, keys: keys, firstIndexOfKey: firstIndexOfKey)
    }

    /// Every event's `seq`: its own for stored ones (`stored[n]` for `fresh[n]`), else its key's.
    public func seqs(_ events: [NewEvent], known: [String: UInt64], stored: [UInt64]) -> [UInt64] {
        var byIndex: [Int: UInt64] = [:]
        for (n, i) in fresh.enumerated() { byIndex[i] = stored[n] }
        return events.indices.map { i in
            if let seq = byIndex[i] { return seq }
            guard let key = events[i].key else { return 0 }
            return known[key] ?? firstIndexOfKey[key].flatMap { byIndex[$0] } ?? 0
        }
    }
}
