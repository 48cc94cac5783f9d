import CSQLite
import Foundation
import HubCore
import HubPostgres
@testable import HubSQLite
import HubTestSupport
import Logging
import NIOCore
import Synchronization
import Testing

/// Backends the contract runs against: every rule holds on each.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible {
    case sqlite
    case postgres
    var testDescription: String { rawValue }

    /// A fresh store (a file in a temporary directory, or a new database on the test PostgreSQL server), closed afterwards.
    func withStore<T>(_ body: (any StreamStore, LocalChangeSignal) async throws -> T) async throws -> T {
        let signal = LocalChangeSignal()
        let store: any StreamStore
        let close: () async -> Void
        switch self {
        case .sqlite:
            let directory = try TemporaryDirectory()
            let sqlite = try SQLiteStreamStore(.init(path: directory.path + "/hub.db"), signal: signal)
            store = sqlite
            close = { await sqlite.close(); _ = directory }
        case .postgres:
            let url = try await PostgresServer.shared.freshDatabase()
            let postgres = try await PostgresStreamStore(try PostgresSettings(url: url), signal: signal, nodeID: "contract",
                                                         logger: Logger(label: "contract", factory: { _ in SwiftLogNoOpLogHandler() }))
            store = postgres
            close = { await postgres.close() }
        }
        do {
            let value = try await body(store, signal)
            await close()
            return value
        } catch {
            await close()
            throw error
        }
    }
}

func path(_ text: String = uniqueStream("c")) -> StreamPath { StreamPath(text)! }
func text(_ s: String) -> NewMessage { NewMessage(body: ByteBuffer(string: s)) }
let plain = ContentType(validating: "text/plain")!
let json = ContentType(validating: "application/json")!

extension StreamStore {
    func readAll(_ p: StreamPath, after: Offset = .start) async throws -> String {
        var out = ""
        var from = after
        while true {
            let r = try await read(p, after: from, maxBytes: 1 << 20)
            out += r.records.map { String(buffer: $0.body) }.joined(separator: json.matches(r.info.contentType) ? "," : "")
            from = r.next
            if r.upToDate { return out }
        }
    }
}

@Suite("StreamStore contract")
struct StreamStoreContractTests {
    @Test("create is idempotent for the same configuration and refuses a different one", arguments: StoreKind.allCases)
    func createIdempotent(_ kind: StoreKind) async throws {
        try await kind.withStore { store, _ in
            let p = path()
            let first = try await store.create(p, CreateRequest(contentType: plain, messages: [text("a")]))
            #expect(first.created && first.info.head == Offset(1))
            let again = try await store.create(p, CreateRequest(contentType: ContentType(validating: "TEXT/PLAIN")!, messages: [text("a")]))
            #expect(!again.created && again.info.head == Offset(1), "the body of a repeated PUT is not appended again")
            await #expect(throws: StoreError.self) { try await store.create(p, CreateRequest(contentType: json)) }
            await #expect(throws: StoreError.self) { try await store.create(p, CreateRequest(contentType: plain, expiry: .ttl(seconds: 60))) }
            await #expect(throws: StoreError.self) { try await store.create(p, CreateRequest(contentType: plain, closed: true)) }
        }
    }

    @Test("appends get increasing offsets and dense slot seqs; reads page without gaps", arguments: StoreKind.allCases)
    func appendAndRead(_ kind: StoreKind) async throws {
        try await kind.withStore { store, _ in
            let slot = uniqueStream("s")
            let a = path(slot + "/a"), b = path(slot + "/b")
            _ = try await store.create(a, CreateRequest(contentType: plain))
            _ = try await store.create(b, CreateRequest(contentType: json))
            for i in 0..<5 {
                _ = try await store.append(a, AppendRequest(contentType: plain, messages: [text("a\(i);")]))
                _ = try await store.append(b, AppendRequest(contentType: json, messages: [text("\(i)"), text("\(i)")]))
            }
            let ra = try await store.read(a, after: .start, maxBytes: 1 << 20)
            let rb = try await store.read(b, after: .start, maxBytes: 1 << 20)
            #expect(ra.records.map(\.offset.position) == [1, 2, 3, 4, 5])
            #expect(rb.records.map(\.offset.position) == Array(1...10))
            #expect((ra.records + rb.records).map(\.seq).sorted() == Array(1...15), "one dense seq per slot")
            #expect(ra.upToDate && ra.next == Offset(5))
            let page = try await store.read(a, after: Offset(1), maxBytes: 1)
            #expect(page.records.count == 1 && page.records[0].offset == Offset(2) && !page.upToDate)
            #expect(try await store.readAll(a) == "a0;a1;a2;a3;a4;")
            await #expect(throws: StoreError.offsetOutOfRange(Offset(9))) { try await store.read(a, after: Offset(9), maxBytes: 10) }
        }
    }

    @Test("concurrent appends are all stored once, in one dense seq", arguments: StoreKind.allCases)
    func concurrentAppends(_ kind: StoreKind) async throws {
        try await kind.withStore { store, _ in
            let p = path()
            _ = try await store.create(p, CreateRequest(contentType: plain))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<8 {
                    group.addTask { for i in 0..<50 { _ = try await store.append(p, AppendRequest(contentType: plain, messages: [text("\(w).\(i)\n")])) } }
                }
                try await group.waitForAll()
            }
            let all = try await store.read(p, after: .start, maxBytes: 1 << 30)
            #expect(all.records.count == 400)
            #expect(all.records.map(\.seq) == Array(1...400))
            #expect(Set(all.records.map { String(buffer: $0.body) }).count == 400)
        }
    }

    /// On PostgreSQL concurrent appends are decided together and committed as one group: a producer's retry racing
    /// its first attempt, and its next sequence number, must each get the answer they would get one at a time.
    @Test("concurrent producers with racing retries: each append stored once, retries answered as duplicates", arguments: StoreKind.allCases)
    func concurrentProducers(_ kind: StoreKind) async throws {
        try await kind.withStore { store, _ in
            let p = path()
            _ = try await store.create(p, CreateRequest(contentType: plain))
            let duplicates = try await withThrowingTaskGroup(of: Int.self) { group in
                for w in 0..<4 {
                    group.addTask {
                        var duplicates = 0
                        for seq in 0..<20 {
                            let request = AppendRequest(contentType: plain, messages: [text("\(w).\(seq)\n")],
                                                        producer: ProducerClaim(id: "p\(w)", epoch: 0, seq: UInt64(seq)))
                            // The attempt and its retry at the same time: one stores, the other is a duplicate.
                            async let first = store.append(p, request)
                            async let retry = store.append(p, request)
                            for outcome in try await [first, retry] {
                                if case .duplicate(_, let ack) = outcome { #expect(ack == ProducerAck(epoch: 0, seq: UInt64(seq))); duplicates += 1 }
                            }
                        }
                        return duplicates
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(duplicates == 80, "one of each pair")
            let all = try await store.read(p, after: .start, maxBytes: 1 << 30)
            #expect(all.records.count == 80 && all.records.map(\.seq) == Array(1...80))
            for w in 0..<4 {
                let mine = all.records.map { String(buffer: $0.body) }.filter { $0.hasPrefix("\(w).") }
                #expect(mine == (0..<20).map { "\(w).\($0)\n" }, "each producer's appends in its order")
            }
            await #expect(throws: StoreError.producerSeqGap(expected: 20, received: 22)) {
                try await store.append(p, AppendRequest(contentType: plain, messages: [text("x")], producer: ProducerClaim(id: "p0", epoch: 0, seq: 22)))
            }
        }
    }

    @Test("closing: refuses data, close-only is idempotent, reads still return everything", arguments: StoreKind.allCases)
    func closing(_ kind: StoreKind) async throws {
        try await kind.withStore { store, _ in
            let p = path()
            _ = try await store.create(p, CreateRequest(contentType: plain, messages: [text("x")]))
            let closed = try await store.append(p, AppendRequest(contentType: plain, messages: [text("y")], close: true))
            #expect(closed.info.closed && closed.info.head == Offset(2))
            await #expect(throws: StoreError.streamClosed(head: Offset(2))) {
                try await store.append(p, AppendRequest(contentType: plain, messages: [text("z")]))
            }
            let again = try await store.append(p, AppendRequest(contentType: nil, messages: [], close: true))
            #expect(again.info.closed)
            #expect(try await store.readAll(p) == "xy")
        }
    }

    @Test("validation order: closed, then content type, then Stream-Seq (bytewise)", arguments: StoreKind.allCases)
    func validationOrder(_ kind: StoreKind) async throws {
        try await kind.withStore { store, _ in
            let p = path()
            _ = try await store.create(p, CreateRequest(contentType: plain))
            _ = try await store.append(p, AppendRequest(contentType: plain, messages: [text("1")], streamSeq: "09"))
            _ = try await store.append(p, AppendRequest(contentType: plain, messages: [text("2")], streamSeq: "10"))
            // Bytewise, not numeric: "2" sorts after "10".
            _ = try await store.append(p, AppendRequest(contentType: plain, messages: [text("2")], streamSeq: "2"))
            await #expect(throws: StoreError.streamSeqRegression(last: "2")) {
                try await store.append(p, AppendRequest(contentType: plain, messages: [text("3")], streamSeq: "10"))
            }
            await #expect(throws: StoreError.streamSeqRegression(last: "2")) {
                try await store.append(p, AppendRequest(contentType: plain, messages: [text("3")], streamSeq: "2"))
            }
            await #expect(throws: StoreError.contentTypeMismatch(expected: "text/plain")) {
                try await store.append(p, AppendRequest(contentType: json, messages: [text("3")], streamSeq: "1"))
            }
            _ = try await store.append(p, AppendRequest(contentType: plain, messages: [], close: true))
            await #expect(throws: StoreError.streamClosed(head: Offset(3))) {
                try await store.append(p, AppendRequest(contentType: json, messages: [text("3")], streamSeq: "1"))
            }
        }
    }

    @Test("idempotent producers: accept, dedupe, fence, gaps, epochs", arguments: StoreKind.allCases)
    func producers(_ kind: StoreKind) async throws {
        try await kind.withStore { store, _ in
            let p = path()
            _ = try await store.create(p, CreateRequest(contentType: plain))
            func send(_ epoch: UInt64, _ seq: UInt64, _ body: String = "m", close: Bool = false) async throws -> AppendOutcome {
                try await store.append(p, AppendRequest(contentType: plain, messages: body.isEmpty ? [] : [text(body)], close: close,
                                                        producer: ProducerClaim(id: "w1", epoch: epoch, seq: seq)))
            }
            await #expect(throws: StoreError.producerSeqGap(expected: 0, received: 1)) { try await send(0, 1) }
            guard case .appended(_, let ack?) = try await send(0, 0, "a") else { Issue.record("not appended"); return }
            #expect(ack == ProducerAck(epoch: 0, seq: 0))
            _ = try await send(0, 1, "b")
            guard case .duplicate(_, let dup) = try await send(0, 0, "a") else { Issue.record("not a duplicate"); return }
            #expect(dup == ProducerAck(epoch: 0, seq: 1), "a duplicate reports the highest accepted seq")
            await #expect(throws: StoreError.producerSeqGap(expected: 2, received: 5)) { try await send(0, 5) }
            await #expect(throws: StoreError.producerEpochSeqNotZero) { try await send(1, 3) }
            _ = try await send(1, 0, "c")
            await #expect(throws: StoreError.producerStaleEpoch(current: 1)) { try await send(0, 2) }
            _ = try await send(1, 1, "d", close: true)
            guard case .duplicate(let info, _) = try await send(1, 1, "different body", close: true) else { Issue.record("close retry"); return }
            #expect(info.closed)
            await #expect(throws: StoreError.streamClosed(head: Offset(4))) { try await send(1, 2, "e") }
            await #expect(throws: StoreError.producerStaleEpoch(current: 1)) { try await send(0, 9) }
            #expect(try await store.readAll(p) == "abcd")
        }
    }

    @Test("forks stitch the source prefix, then their own records; sub-offsets cut bytes or messages", arguments: StoreKind.allCases)
    func forks(_ kind: StoreKind) async throws {
        try await kind.withStore { store, _ in
            let src = path()
            _ = try await store.create(src, CreateRequest(contentType: plain, messages: [text("hello")]))
            _ = try await store.append(src, AppendRequest(contentType: plain, messages: [text(" world")]))
            let whole = path(), cut = path(), chained = path()
            _ = try await store.create(whole, CreateRequest(contentType: nil, fork: ForkPoint(source: src, offset: nil, subOffset: 0)))
            _ = try await store.create(cut, CreateRequest(contentType: plain, fork: ForkPoint(source: src, offset: Offset(1), subOffset: 3),
                                                          messages: [text("!")]))
            _ = try await store.append(src, AppendRequest(contentType: plain, messages: [text(" later")]))
            #expect(try await store.readAll(whole) == "hello world", "later source appends never show in a fork")
            #expect(try await store.readAll(cut) == "hello wo!")
            #expect(try await store.read(cut, after: .start, maxBytes: 1 << 20).next == Offset(3), "fork offsets continue past the fork point")
            _ = try await store.create(chained, CreateRequest(contentType: plain, fork: ForkPoint(source: cut, offset: Offset(2), subOffset: 1)))
            #expect(try await store.readAll(chained) == "hello wo!")
            #expect(try await store.readAll(chained, after: Offset(1)) == " wo!")

            let js = path(), jfork = path()
            _ = try await store.create(js, CreateRequest(contentType: json, messages: [text("1")]))
            _ = try await store.append(js, AppendRequest(contentType: json, messages: [text("2"), text("3"), text("4")]))
            _ = try await store.create(jfork, CreateRequest(contentType: json, fork: ForkPoint(source: js, offset: Offset(1), subOffset: 2)))
            #expect(try await store.readAll(jfork) == "1,2,3")
            await #expect(throws: StoreError.self) {
                try await store.create(path(), CreateRequest(contentType: json, fork: ForkPoint(source: js, offset: Offset(1), subOffset: 4)))
            }
            await #expect(throws: StoreError.self) {
                try await store.create(path(), CreateRequest(contentType: plain, fork: ForkPoint(source: src, offset: Offset(9), subOffset: 0)))
            }
            await #expect(throws: StoreError.self) {
                try await store.create(path(), CreateRequest(contentType: json, fork: ForkPoint(source: src, offset: nil, subOffset: 0)))
            }
            await #expect(throws: StoreError.forkSourceNotFound(StreamPath("nope")!)) {
                try await store.create(path(), CreateRequest(contentType: nil, fork: ForkPoint(source: StreamPath("nope")!, offset: nil, subOffset: 0)))
            }
        }
    }

    @Test("deleting a forked source soft-deletes it; the last fork's deletion collects it", arguments: StoreKind.allCases)
    func softDelete(_ kind: StoreKind) async throws {
        try await kind.withStore { store, _ in
            let src = path(), fork = path()
            _ = try await store.create(src, CreateRequest(contentType: plain, messages: [text("data")]))
            _ = try await store.create(fork, CreateRequest(contentType: nil, fork: ForkPoint(source: src, offset: nil, subOffset: 0)))
            try await store.delete(src)
            await #expect(throws: StoreError.streamGone(src)) { try await store.info(src) }
            await #expect(throws: StoreError.streamGone(src)) { try await store.delete(src) }
            await #expect(throws: StoreError.self) { try await store.create(src, CreateRequest(contentType: plain)) }
            #expect(try await store.readAll(fork) == "data")
            try await store.delete(fork)
            await #expect(throws: StoreError.streamNotFound(src)) { try await store.info(src) }
            let recreated = try await store.create(src, CreateRequest(contentType: plain))
            #expect(recreated.created && recreated.info.head == .start)
        }
    }

    @Test("deleting a slot releases the sources its forks read in other slots (and collects a deleted one)", arguments: StoreKind.allCases)
    func slotDeletionReleasesSources(_ kind: StoreKind) async throws {
        try await kind.withStore { store, _ in
            let admin = store as! any AdminStore
            let home = uniqueStream("h"), away = uniqueStream("a")
            let kept = path(home + "/kept"), gone = path(home + "/gone")
            for source in [kept, gone] { _ = try await store.create(source, CreateRequest(contentType: plain, messages: [text("data")])) }
            for (n, source) in [kept, gone].enumerated() {
                _ = try await store.create(path(away + "/f\(n)"), CreateRequest(contentType: nil, fork: ForkPoint(source: source, offset: nil, subOffset: 0)))
            }
            try await store.delete(gone)
            await #expect(throws: StoreError.streamGone(gone)) { try await store.info(gone) }
            try await admin.deleteSlot(SlotName(away)!, actor: "test")
            await #expect(throws: StoreError.streamNotFound(gone), "its last fork went with the slot: collected") { try await store.info(gone) }
            try await store.delete(kept)
            await #expect(throws: StoreError.streamNotFound(kept), "no fork reads it any more: deleted, not soft-deleted") { try await store.info(kept) }
        }
    }

    @Test("a sliding TTL expires an idle stream; Expires-At is absolute", arguments: StoreKind.allCases)
    func expiry(_ kind: StoreKind) async throws {
        try await kind.withStore { store, _ in
            let ttl = path(), deadline = path()
            _ = try await store.create(ttl, CreateRequest(contentType: plain, expiry: .ttl(seconds: 0)))
            await #expect(throws: StoreError.streamNotFound(ttl)) { try await store.info(ttl) }
            #expect(try await store.create(ttl, CreateRequest(contentType: plain)).created, "an expired path can be created again")
            let past = Int64(Date().timeIntervalSince1970 * 1000) - 1
            _ = try await store.create(deadline, CreateRequest(contentType: plain, expiry: .at(millisecondsSince1970: past, text: "")))
            await #expect(throws: StoreError.streamNotFound(deadline)) {
                try await store.append(deadline, AppendRequest(contentType: plain, messages: [text("x")]))
            }
        }
    }

    @Test("the expiry sweep removes expired streams with their data, in batches", arguments: StoreKind.allCases)
    func sweep(_ kind: StoreKind) async throws {
        try await kind.withStore { store, _ in
            let kept = path()
            let gone = (0..<3).map { _ in path() }
            for p in gone { _ = try await store.create(p, CreateRequest(contentType: plain, expiry: .ttl(seconds: 0), messages: [text("x")])) }
            _ = try await store.create(kept, CreateRequest(contentType: plain, expiry: .ttl(seconds: 3600), messages: [text("y")]))
            let sweeper = try #require(store as? any ExpirySweeping)
            #expect(try await sweeper.sweepExpired(limit: 2) == 2)
            #expect(try await sweeper.sweepExpired(limit: 2) == 1)
            #expect(try await sweeper.sweepExpired(limit: 2) == 0)
            let admin = try #require(store as? any AdminStore)
            let left = try await admin.streams(slot: nil, limit: 100)
            #expect(left.map(\.path) == [kept] && left[0].records == 1, "expired streams and their records are gone")
        }
    }

    @Test("the change signal fires after a commit, never before", arguments: StoreKind.allCases)
    func signal(_ kind: StoreKind) async throws {
        try await kind.withStore { store, signal in
            let p = path()
            let info = try await store.create(p, CreateRequest(contentType: plain)).info
            let ticket = signal.ticket(for: info.id)
            async let woke = signal.wait(for: info.id, after: ticket, timeout: .seconds(10))
            _ = try await store.append(p, AppendRequest(contentType: plain, messages: [text("x")]))
            #expect(await woke == .changed)
            #expect(try await store.read(p, after: .start, maxBytes: 100).records.count == 1, "a woken reader sees the data")
            #expect(await signal.wait(for: info.id, after: signal.ticket(for: info.id), timeout: .milliseconds(20)) == .timedOut)
        }
    }
}

@Suite("SQLite specifics")
struct SQLiteStoreTests {
    @Test("data survives closing and reopening, and seqs continue")
    func reopen() async throws {
        let directory = try TemporaryDirectory()
        let file = directory.path + "/hub.db"
        let p = path("reopen/x")
        do {
            let store = try SQLiteStreamStore(.init(path: file, synchronous: .full), signal: LocalChangeSignal())
            _ = try await store.create(p, CreateRequest(contentType: plain, messages: [text("a")]))
            await store.close()
        }
        do {
            let store = try SQLiteStreamStore(.init(path: file), signal: LocalChangeSignal())
            _ = try await store.append(p, AppendRequest(contentType: plain, messages: [text("b")]))
            let r = try await store.read(p, after: .start, maxBytes: 100)
            #expect(r.records.map(\.seq) == [1, 2] && r.records.map { String(buffer: $0.body) } == ["a", "b"])
            try await store.delete(p)  // the slot's newest records go: its head must not
            await store.close()
        }
        let store = try SQLiteStreamStore(.init(path: file), signal: LocalChangeSignal())
        _ = try await store.create(path("reopen/y"), CreateRequest(contentType: plain, messages: [text("c")]))
        #expect(try await store.read(path("reopen/y"), after: .start, maxBytes: 100).records.map(\.seq) == [3])
        await store.close()
    }

    @Test("the statement cache tells apart statements of the same length that end alike (its hash reads only the end)")
    func statementCacheKeys() throws {
        let directory = try TemporaryDirectory()
        let db = try SQLiteConnection(path: directory.path + "/cache.db", readOnly: false)
        let tail = String(repeating: " ", count: 40) + "FROM (SELECT 1 AS v)"
        let one = "SELECT v + 1 " + tail, two = "SELECT v + 2 " + tail  // equal length, equal last 32 bytes
        for _ in 0..<2 {
            #expect(try db.first(one, [], { $0.int(0) }) == 2)
            #expect(try db.first(two, [], { $0.int(0) }) == 3)
        }
    }

    @Test("the writer's row cache agrees with the database after appends, closes, Stream-Seq, producers, trims, outside updates, rollbacks and recreation")
    func writerRowCacheAgrees() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteStreamStore(.init(path: directory.path + "/hub.db"), signal: LocalChangeSignal())
        let slot = SlotName(uniqueStream("s").lowercased())!
        _ = try await store.createSlot(slot, settings: SlotSettings(maxRecords: 3), actor: "test")
        let p = StreamPath("\(slot)/log")!, q = StreamPath("\(slot)/other")!
        /// The cached stream row and slot state are exactly what the database holds (and are there: the check is not vacuous).
        func agree(_ p: StreamPath, cached: Bool = true, _ comment: Comment) async throws {
            try await store.writer.perform { db, _ throws(StoreError) in
                let fresh = try StreamQueries.loadUncached(db, path: p)
                if cached { #expect(db.rowCache?.stream(p) != nil, comment) }
                #expect(String(reflecting: try StreamQueries.load(db, path: p)) == String(reflecting: fresh), comment)
                guard let fresh, let slot = db.rowCache?.slot(fresh.slotID) else { return }
                let state = try db.first("SELECT \(SlotHead.sql), floor_seq, max_records FROM slots s WHERE id = ?", [.int(fresh.slotID)]) {
                    "\($0.int(0)) \($0.int(1)) \(String(describing: $0.optionalInt(2)))"
                }
                #expect("\(slot.headSeq) \(slot.floorSeq) \(String(describing: slot.maxRecords))" == state, comment)
            }
        }
        _ = try await store.create(p, CreateRequest(contentType: plain, createsSlot: false))
        _ = try await store.create(q, CreateRequest(contentType: plain, expiry: .ttl(seconds: 3600), createsSlot: false))
        for i in 1...5 { _ = try await store.append(p, AppendRequest(contentType: plain, messages: [text("m\(i)")])) }
        try await agree(p, cached: false, "appends that trim the slot to 3 records (the trim rewrites the row)")
        _ = try await store.append(q, AppendRequest(contentType: plain, messages: [text("a"), text("b")], streamSeq: "0001"))
        try await agree(q, "Stream-Seq on a stream with a TTL")
        try await agree(p, cached: false, "the other stream's append trimmed this one's records")
        _ = try await store.append(p, AppendRequest(contentType: plain, messages: [text("x")], producer: ProducerClaim(id: "w", epoch: 0, seq: 0)))
        try await agree(p, cached: false, "a producer's append (trimming p again)")
        _ = try await store.read(q, after: .start, maxBytes: 1 << 20)  // a read of a TTL stream touches it
        try await agree(q, cached: false, "touched by a read")
        // A statement the cache knows nothing of: the update hook drops the row.
        _ = try await store.append(p, AppendRequest(contentType: plain, messages: [text("y")]))
        try await store.writer.perform { db, _ throws(StoreError) in
            try StreamQueries.run(db, "UPDATE streams SET stream_seq = 'zz' WHERE path = ?", [.text(p.rawValue)])
        }
        try await agree(p, cached: false, "an UPDATE outside the append")
        // A savepoint's rollback undoes an append the cache saw.
        let head = try await store.info(p).head
        try await store.writer.perform { db, changed throws(StoreError) in
            do throws(SQLiteFailure) { try db.run("SAVEPOINT t") } catch { throw error.storeError }
            _ = try StreamQueries.append(db, path: p, request: AppendRequest(contentType: plain, messages: [text("undone")]),
                                         nowMs: SQLiteStreamStore.nowMs, changed: &changed)
            #expect(db.rowCache?.stream(p)?.head == head.position + 1)
            do throws(SQLiteFailure) {
                try db.rollback(to: "t")
                try db.run("RELEASE t")
            } catch {
                throw error.storeError
            }
        }
        try await agree(p, cached: false, "after the rollback")
        #expect(try await store.info(p).head == head)
        _ = try await store.append(p, AppendRequest(contentType: plain, messages: [text("z")], close: true))
        try await agree(p, "a closing append")
        try await store.delete(p)
        _ = try await store.create(p, CreateRequest(contentType: ContentType(validating: "application/json")!, createsSlot: false))
        _ = try await store.append(p, AppendRequest(contentType: ContentType(validating: "application/json")!, messages: [text("[1]")]))
        try await agree(p, "a new stream at a deleted stream's path")
        let read = try await store.read(p, after: .start, maxBytes: 1 << 20)
        #expect(read.records.count == 1 && read.info.head == Offset(1))
        await store.close()
    }

    @Test("the WAL restarts under a steady stream of commits (no gap for a concurrent checkpoint to catch up in)")
    func walBoundedUnderLoad() async throws {
        let directory = try TemporaryDirectory()
        let file = directory.path + "/hub.db"
        let store = try SQLiteStreamStore(.init(path: file), signal: LocalChangeSignal())
        let p = path("wal/load")
        _ = try await store.create(p, CreateRequest(contentType: plain))
        let body = String(repeating: "x", count: 64 << 10)
        // 8 appenders with no pause between commits: 2560 appends of 64 KiB, 160 MiB through the WAL. A checkpoint
        // that only ran beside the commits never reached the log's end, and the log grew to hold all of it.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { for _ in 0..<320 { _ = try await store.append(p, AppendRequest(contentType: plain, messages: [text(body)])) } }
            }
            try await group.waitForAll()
        }
        let wal = try #require(try FileManager.default.attributesOfItem(atPath: file + "-wal")[.size] as? Int)
        #expect(wal < 64 << 20, "WAL is \(wal >> 20) MiB after 160 MiB of appends")
        #expect(try await store.info(p).head.position == 2560)
        await store.close()
    }

    @Test("one store file, one writer: a second open is refused until the first closes")
    func exclusiveOpen() async throws {
        let directory = try TemporaryDirectory()
        let file = directory.path + "/hub.db"
        let first = try SQLiteStreamStore(.init(path: file), signal: LocalChangeSignal())
        #expect(StoreLock.isHeld(databasePath: file))
        #expect(throws: StoreError.unavailable("\(file) is in use by another process (a running hubd?)")) {
            _ = try SQLiteStreamStore(.init(path: file), signal: LocalChangeSignal())
        }
        await first.close()
        // Patience: a process other tests spawn at this moment holds a copy of the descriptor until it execs.
        #expect(!StoreLock.isHeld(databasePath: file, patience: .seconds(2)))
        let second = try SQLiteStreamStore(.init(path: file), signal: LocalChangeSignal())
        await second.close()
    }

    @Test("a schema-5 store is upgraded: records keep their seqs, positions and slots; appends and slot reads go on")
    func upgradeFromSchema5() async throws {
        let directory = try TemporaryDirectory()
        let file = directory.path + "/hub.db"
        // A store as hubd with schema 5 left it: two slots, three streams, seqs interleaved across streams.
        for sql in Migrations.all.prefix(5) { execute(sql, on: file) }
        execute("""
            PRAGMA user_version = 5;
            INSERT INTO slots(id, name, head_seq, created_ms) VALUES(1, 'up', 3, 0), (2, 'vp', 1, 0);
            INSERT INTO streams(id, path, slot_id, content_type, created_ms, accessed_ms, head, record_count, byte_count)
                VALUES(1, 'up/a', 1, 'text/plain', 0, 0, 2, 2, 2), (2, 'up/b', 1, 'text/plain', 0, 0, 1, 1, 1),
                      (3, 'vp/a', 2, 'text/plain', 0, 0, 1, 1, 1);
            INSERT INTO records(stream_id, pos, slot_id, seq, batch_end, ts_ms, type, body)
                VALUES(1, 1, 1, 1, 1, 0, NULL, 'a'), (2, 1, 1, 2, 1, 0, 'kind', 'x'), (1, 2, 1, 3, 2, 0, NULL, 'b'),
                      (3, 1, 2, 1, 1, 0, NULL, 'v');
            """, on: file)

        let ticks = ProgressTicks()
        let store = try SQLiteStreamStore(.init(path: file, migrationProgress: { ticks.count.add(1, ordering: .relaxed) }), signal: LocalChangeSignal())
        #expect(ticks.count.load(ordering: .relaxed) == 1, "the migration announced itself once (it took less than 10 s)")
        let a = try await store.read(path("up/a"), after: .start, maxBytes: 100)
        #expect(a.records.map(\.seq) == [1, 3] && a.records.map(\.offset.position) == [1, 2] && a.records.map { String(buffer: $0.body) } == ["a", "b"])
        let slot = try await store.readLog(.slot(SlotName("up")!), after: 0, limit: 10, maxBytes: 1000)
        #expect(slot.records.map(\.record.seq) == [1, 2, 3] && slot.records.map(\.path.rawValue) == ["up/a", "up/b", "up/a"])
        #expect(slot.records.map(\.record.type) == [nil, "kind", nil])
        #expect(try await store.readLog(.slot(SlotName("vp")!), after: 0, limit: 10, maxBytes: 1000).records.map(\.record.seq) == [1])
        _ = try await store.append(path("up/b"), AppendRequest(contentType: plain, messages: [text("y")]))
        #expect(try await store.readLog(.slot(SlotName("up")!), after: 2, limit: 10, maxBytes: 1000).records.map(\.record.seq) == [3, 4])
        await store.close()
        let report = try StoreVerifier.verify(path: file)
        #expect(report.schemaVersion == Migrations.all.count && report.problems.isEmpty && report.records == 5)
    }

    @Test("a slot's seqs end at 2^43 - 1: the append past the last is refused whole, nothing stored")
    func seqSpaceBound() async throws {
        let directory = try TemporaryDirectory()
        let file = directory.path + "/hub.db"
        let p = path("cap/a")
        do {
            let store = try SQLiteStreamStore(.init(path: file), signal: LocalChangeSignal())
            _ = try await store.create(p, CreateRequest(contentType: plain))
            await store.close()
        }
        execute("UPDATE slots SET head_seq = \(RecordKey.maxSeq - 2) WHERE name = 'cap'", on: file)
        let store = try SQLiteStreamStore(.init(path: file), signal: LocalChangeSignal())
        _ = try await store.append(p, AppendRequest(contentType: plain, messages: [text("a"), text("b")]))
        await expectCapacityExhausted { _ = try await store.append(p, AppendRequest(contentType: plain, messages: [text("c")])) }
        let r = try await store.read(p, after: .start, maxBytes: 100)
        #expect(r.records.map(\.seq) == [RecordKey.maxSeq - 1, RecordKey.maxSeq] && r.next.position == 2)
        let log = try await store.readLog(.slot(SlotName("cap")!), after: RecordKey.maxSeq - 1, limit: 10, maxBytes: 1000)
        #expect(log.records.map(\.record.seq) == [RecordKey.maxSeq] && log.headSeq == RecordKey.maxSeq)
        await store.close()
    }

    @Test("slot ids end at 2^20 - 1: past the top a new slot takes the lowest free id; with every id taken, 507")
    func slotIDBound() async throws {
        let directory = try TemporaryDirectory()
        let file = directory.path + "/hub.db"
        do {
            let store = try SQLiteStreamStore(.init(path: file), signal: LocalChangeSignal())
            _ = try await store.create(path("low/a"), CreateRequest(contentType: plain, messages: [text("l")]))  // id 1
            await store.close()
        }
        // Ids 1 and 3 ... 2^20 - 1 taken (2 is free), the last one by "top".
        execute("""
            WITH RECURSIVE n(x) AS (SELECT 3 UNION ALL SELECT x + 1 FROM n WHERE x < \(RecordKey.maxSlotID - 1))
            INSERT INTO slots(id, name, head_seq, created_ms) SELECT x, 'f' || x, 0, 0 FROM n;
            INSERT INTO slots(id, name, head_seq, created_ms) VALUES(\(RecordKey.maxSlotID), 'top', 0, 0);
            """, on: file)
        let store = try SQLiteStreamStore(.init(path: file), signal: LocalChangeSignal())
        let hole = path("hole/a")
        _ = try await store.create(hole, CreateRequest(contentType: plain, messages: [text("h1"), text("h2")]))
        await expectCapacityExhausted { _ = try await store.create(path("over/a"), CreateRequest(contentType: plain)) }
        await expectCapacityExhausted { _ = try await store.createSlot(SlotName("over")!, settings: SlotSettings(), actor: "test") }
        await #expect(throws: StoreError.slotNotFound(SlotName("over")!)) { _ = try await store.readLog(.slot(SlotName("over")!), after: 0, limit: 1, maxBytes: 1) }
        // The slot in the hole and the slot with the last id keep their own seqs; the first slot's records are its own.
        #expect(try await store.readLog(.slot(SlotName("hole")!), after: 0, limit: 10, maxBytes: 1000).records.map(\.record.seq) == [1, 2])
        let top = path("top/a")
        _ = try await store.create(top, CreateRequest(contentType: plain, messages: [text("a"), text("b")]))
        #expect(try await store.readLog(.slot(SlotName("top")!), after: 0, limit: 10, maxBytes: 1000).records.map(\.record.seq) == [1, 2])
        let topText = try await store.readAll(top), lowText = try await store.readAll(path("low/a"))
        #expect(topText == "ab" && lowText == "l")
        await store.close()
    }

    /// Runs `sql` on the store file directly, as an older hubd (or anything but this one) would.
    private func execute(_ sql: String, on file: String, sourceLocation: SourceLocation = #_sourceLocation) {
        var db: OpaquePointer?
        #expect(sqlite3_open(file, &db) == SQLITE_OK, sourceLocation: sourceLocation)
        #expect(sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK, sourceLocation: sourceLocation)
        sqlite3_close(db)
    }

    private func expectCapacityExhausted(_ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async {
        do {
            try await body()
            Issue.record("not refused", sourceLocation: sourceLocation)
        } catch StoreError.capacityExhausted {
        } catch {
            Issue.record("expected capacityExhausted, got \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("a database from a newer hubd is refused")
    func newerSchema() async throws {
        let directory = try TemporaryDirectory()
        let file = directory.path + "/hub.db"
        do {
            let store = try SQLiteStreamStore(.init(path: file), signal: LocalChangeSignal())
            await store.close()
        }
        // Stamp the file as written by a future hubd.
        execute("PRAGMA user_version = 999", on: file)
        #expect(throws: StoreError.schemaTooNew(found: 999, supported: Migrations.all.count)) {
            _ = try SQLiteStreamStore(.init(path: file), signal: LocalChangeSignal())
        }
    }
}

private final class ProgressTicks: Sendable {
    let count = Atomic<Int>(0)
}
