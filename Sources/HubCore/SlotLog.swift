import NIOCore

/// What a live subscription covers: every stream of a slot, or one stream. Both are read by slot `seq`, so one
/// number resumes either (DESIGN §2). A stream subscription covers the stream's own records, not those a fork
/// inherits from its source (those carry the source slot's numbers).
public enum SlotScope: Hashable, Sendable, CustomStringConvertible {
    case slot(SlotName)
    case stream(StreamPath)

    public var slot: SlotName {
        switch self {
        case .slot(let s): s
        case .stream(let p): p.slot
        }
    }

    /// The stored form of a consumer's target: nil for the whole slot.
    public var streamPath: StreamPath? {
        if case .stream(let p) = self { return p }
        return nil
    }

    public var description: String {
        switch self {
        case .slot(let s): "slot \(s)"
        case .stream(let p): "stream \(p)"
        }
    }
}

/// Keys of the `ChangeSignal`: streams wake by their id, slot-wide subscriptions by the negated slot id, which no
/// stream id can equal (both are positive).
public enum ChangeKey {
    public static func slot(_ slotID: Int64) -> Int64 { -slotID }
}

/// One record as the slot log hands it out: with the stream it belongs to.
public struct SlotRecord: Sendable {
    public let path: StreamPath
    public let contentType: ContentType
    public let record: StoredRecord
    public init(path: StreamPath, contentType: ContentType, record: StoredRecord) {
        self.path = path; self.contentType = contentType; self.record = record
    }
    public var seq: UInt64 { record.seq }
}

public struct SlotReadResult: Sendable {
    public let records: [SlotRecord]
    /// The slot's last assigned `seq` as of the read.
    public let headSeq: UInt64
    /// Records up to this `seq` were removed by retention (0: none). A cursor below it has missed data.
    public let floorSeq: UInt64
    /// The `ChangeSignal` key that wakes readers of this scope.
    public let changeKey: Int64
    /// Where the next read starts: the last record's seq, or the requested one when nothing was read.
    public let next: UInt64
    public init(records: [SlotRecord], headSeq: UInt64, floorSeq: UInt64, changeKey: Int64, next: UInt64) {
        self.records = records; self.headSeq = headSeq; self.floorSeq = floorSeq; self.changeKey = changeKey; self.next = next
    }
}

/// One event for a slot's inbox (events surface). `key` deduplicates: a key seen within the window answers the
/// first event's `seq` and stores nothing.
public struct NewEvent: Sendable {
    public var body: ByteBuffer
    public var type: String?
    public var key: String?
    public init(body: ByteBuffer, type: String?, key: String?) { self.body = body; self.type = type; self.key = key }
}

/// A slot's figures for `GET /v1/slot/{slot}/state`.
public struct SlotLogState: Sendable, Hashable {
    public var headSeq: UInt64
    public var floorSeq: UInt64
    public var records: Int64
    public var bytes: Int64
    public init(headSeq: UInt64, floorSeq: UInt64, records: Int64, bytes: Int64) {
        self.headSeq = headSeq; self.floorSeq = floorSeq; self.records = records; self.bytes = bytes
    }
}

/// A durable consumer: a named cursor in a slot that survives restarts (DESIGN §2).
public struct ConsumerState: Sendable, Hashable {
    public var slot: SlotName
    public var name: String
    public var scope: SlotScope
    /// Everything up to and including this `seq` is acknowledged.
    public var ackedSeq: UInt64
    public var ackWaitMs: Int64
    public var maxInFlight: Int64
    public var createdAtMs: Int64
    public var updatedAtMs: Int64
    /// The slot's head when listed, for lag (`headSeq - ackedSeq`); equal to `ackedSeq` otherwise.
    public var headSeq: UInt64

    public init(slot: SlotName, name: String, scope: SlotScope, ackedSeq: UInt64, ackWaitMs: Int64, maxInFlight: Int64, createdAtMs: Int64,
                updatedAtMs: Int64, headSeq: UInt64) {
        self.slot = slot; self.name = name; self.scope = scope; self.ackedSeq = ackedSeq; self.ackWaitMs = ackWaitMs
        self.maxInFlight = maxInFlight; self.createdAtMs = createdAtMs; self.updatedAtMs = updatedAtMs; self.headSeq = headSeq
    }

    public var lag: UInt64 { headSeq > ackedSeq ? headSeq - ackedSeq : 0 }

    /// Consumer names: what a client may choose, bounded so keys and logs stay small.
    public static func isValidName(_ name: some StringProtocol) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name.utf8.allSatisfy { b in
            (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || (0x30...0x39).contains(b) || b == 0x2E || b == 0x5F || b == 0x2D
        }
    }
}

/// The slot as one ordered log: the events surface, WebSocket subscriptions, durable consumers and retention.
public protocol SlotLog: Sendable {
    /// Appends events to the slot's inbox (the stream whose path is the slot; created as JSON on first use).
    /// Returns each event's `seq`, the original one for an event whose key was seen within `dedupWindowMs`.
    func appendEvents(_ slot: SlotName, _ events: [NewEvent], createsSlot: Bool, dedupWindowMs: Int64) async throws(StoreError) -> [UInt64]
    /// Records of `scope` with `seq > after`, oldest first, at most `limit` and about `maxBytes`. `after == 0` starts
    /// at the oldest retained record; any other cursor below the retention floor throws `.belowRetention`, and one
    /// past the slot's head throws `.seqOutOfRange`.
    func readLog(_ scope: SlotScope, after: UInt64, limit: Int, maxBytes: Int) async throws(StoreError) -> SlotReadResult
    func logState(_ slot: SlotName) async throws(StoreError) -> SlotLogState

    /// Opens (creating on first use) the consumer `name` of `scope`'s slot. A consumer keeps the scope it was created
    /// with; opening it for another scope throws `.consumerConflict`.
    func openConsumer(_ name: String, scope: SlotScope, ackWaitMs: Int64, maxInFlight: Int64) async throws(StoreError) -> ConsumerState
    /// Cumulative acknowledgement: the cursor moves to `seq` unless it is already past it. Returns the new cursor.
    func acknowledge(_ name: String, slot: SlotName, seq: UInt64) async throws(StoreError) -> UInt64
    func consumers(slot: SlotName?) async throws(StoreError) -> [ConsumerState]
    /// Deletes the consumer; its next connection starts over (from `since`, or the oldest retained record).
    func deleteConsumer(_ name: String, slot: SlotName, actor: String) async throws(StoreError)

    /// Applies every slot's retention (max age, bytes, records) and forgets dedup keys older than `dedupWindowMs`.
    /// Returns how many records were removed.
    func applyRetention(dedupWindowMs: Int64) async throws(StoreError) -> Int
}

/// The streams a slot read's rows name: paths and content types repeat across records, so each distinct one is
/// parsed (and checked) once per read.
public struct StreamIdentities {
    private var known: [String: (StreamPath, ContentType)] = [:]
    public init() {}

    /// The parsed path and content type of a row; `contentType` is read only for a path not seen before.
    public mutating func resolve(path rawPath: String, contentType: () throws -> String) throws -> (path: StreamPath, contentType: ContentType) {
        if let stream = known[rawPath] { return stream }
        guard let path = StreamPath(rawPath), let type = ContentType(validating: try contentType()) else {
            throw StoreError.backend("corrupt stream row for \(rawPath)")
        }
        known[rawPath] = (path, type)
        return (path, type)
    }
}
