import NIOCore

/// When a stream expires (Durable Streams §9). A sliding TTL restarts on every read or write; an absolute
/// deadline never moves.
public enum StreamExpiry: Hashable, Sendable {
    case ttl(seconds: UInt64)
    case at(millisecondsSince1970: Int64, text: String)

    /// Same configuration: TTL values equal, or deadlines at the same instant whatever their spelling.
    public func sameConfiguration(as other: StreamExpiry) -> Bool {
        switch (self, other) {
        case (.ttl(let a), .ttl(let b)): a == b
        case (.at(let a, _), .at(let b, _)): a == b
        default: false
        }
    }
}

/// An idempotent producer's claim on one append (Durable Streams §5).
public struct ProducerClaim: Hashable, Sendable {
    public let id: String
    public let epoch: UInt64
    public let seq: UInt64
    public init(id: String, epoch: UInt64, seq: UInt64) { self.id = id; self.epoch = epoch; self.seq = seq }
}

/// What a producer's append was acknowledged as: the epoch and the highest accepted seq.
public struct ProducerAck: Hashable, Sendable {
    public let epoch: UInt64
    public let seq: UInt64
    public init(epoch: UInt64, seq: UInt64) { self.epoch = epoch; self.seq = seq }
}

/// Where a new stream forks from (Durable Streams §8). `offset` nil means the source's tail.
/// `subOffset` counts messages (JSON sources) or bytes (other types) past `offset`.
public struct ForkPoint: Hashable, Sendable {
    public let source: StreamPath
    public let offset: Offset?
    public let subOffset: UInt64
    public init(source: StreamPath, offset: Offset?, subOffset: UInt64) {
        self.source = source; self.offset = offset; self.subOffset = subOffset
    }
}

/// One message handed to the store. `type` is the event name (events surface); nil on Durable Streams.
public struct NewMessage: Sendable {
    public var body: ByteBuffer
    public var type: String?
    public init(body: ByteBuffer, type: String? = nil) { self.body = body; self.type = type }
}

public struct CreateRequest: Sendable {
    /// nil: inherit from the fork source, else `application/octet-stream`.
    public var contentType: ContentType?
    public var expiry: StreamExpiry?
    public var closed: Bool
    public var fork: ForkPoint?
    /// The initial content: already flattened for JSON streams.
    public var messages: [NewMessage]
    /// Create the slot if it does not exist (open mode); otherwise a missing slot is `.slotNotFound`.
    public var createsSlot: Bool
    public init(contentType: ContentType?, expiry: StreamExpiry? = nil, closed: Bool = false, fork: ForkPoint? = nil, messages: [NewMessage] = [],
                createsSlot: Bool = true) {
        self.contentType = contentType; self.expiry = expiry; self.closed = closed; self.fork = fork; self.messages = messages
        self.createsSlot = createsSlot
    }
}

public struct AppendRequest: Sendable {
    /// The request's content type; nil only on close-only requests, which do not check it.
    public var contentType: ContentType?
    public var messages: [NewMessage]
    public var close: Bool
    /// `Stream-Seq`: opaque, compared bytewise; must grow per stream.
    public var streamSeq: String?
    public var producer: ProducerClaim?
    public init(contentType: ContentType?, messages: [NewMessage], close: Bool = false, streamSeq: String? = nil, producer: ProducerClaim? = nil) {
        self.contentType = contentType; self.messages = messages; self.close = close; self.streamSeq = streamSeq; self.producer = producer
    }
}

/// A stream's metadata as of one moment.
public struct StreamInfo: Hashable, Sendable {
    /// Identifies this incarnation of the path: a stream deleted and re-created gets a new id.
    public let id: Int64
    public let path: StreamPath
    public let contentType: ContentType
    /// The tail: the offset after the last record.
    public let head: Offset
    public let closed: Bool
    public let expiry: StreamExpiry?
    public let createdAtMilliseconds: Int64

    public init(id: Int64, path: StreamPath, contentType: ContentType, head: Offset, closed: Bool, expiry: StreamExpiry?, createdAtMilliseconds: Int64) {
        self.id = id; self.path = path; self.contentType = contentType; self.head = head; self.closed = closed
        self.expiry = expiry; self.createdAtMilliseconds = createdAtMilliseconds
    }
}

public struct CreateOutcome: Sendable {
    /// False when an identical stream already existed (idempotent PUT).
    public let created: Bool
    public let info: StreamInfo
    public init(created: Bool, info: StreamInfo) { self.created = created; self.info = info }
}

public enum AppendOutcome: Sendable {
    /// Stored (or, for a close-only request, the stream is now closed).
    case appended(StreamInfo, producer: ProducerAck?)
    /// A producer retry of something already stored: nothing was written.
    case duplicate(StreamInfo, producer: ProducerAck)

    public var info: StreamInfo {
        switch self { case .appended(let i, _), .duplicate(let i, _): i }
    }
}

/// One stored message.
public struct StoredRecord: Sendable {
    /// Position of this record; the offset after it.
    public let offset: Offset
    /// The slot-wide sequence number (dense per slot).
    public let seq: UInt64
    public let timestampMilliseconds: Int64
    public let type: String?
    public let body: ByteBuffer
    public init(offset: Offset, seq: UInt64, timestampMilliseconds: Int64, type: String?, body: ByteBuffer) {
        self.offset = offset; self.seq = seq; self.timestampMilliseconds = timestampMilliseconds; self.type = type; self.body = body
    }
}

public struct ReadResult: Sendable {
    public let info: StreamInfo
    public let records: [StoredRecord]
    /// Where the next read starts: the last record's offset, or the requested one when nothing was read.
    public let next: Offset
    /// True when `next` is the stream's tail.
    public var upToDate: Bool { next == info.head }
    public init(info: StreamInfo, records: [StoredRecord], next: Offset) { self.info = info; self.records = records; self.next = next }
}
