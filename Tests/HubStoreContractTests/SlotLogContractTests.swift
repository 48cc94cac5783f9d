import HubCore
import HubTestSupport
import NIOCore
import Testing

private typealias FullStore = any StreamStore & SlotLog & AdminStore

private func event(_ json: String, type: String? = nil, key: String? = nil) -> NewEvent {
    NewEvent(body: ByteBuffer(string: json), type: type, key: key)
}

private func slotName() -> SlotName { SlotName(uniqueStream("s").lowercased())! }

@Suite("SlotLog contract")
struct SlotLogContractTests {
    private func withStore(_ kind: StoreKind, _ body: (FullStore) async throws -> Void) async throws {
        try await kind.withStore { store, _ in try await body(store as! FullStore) }
    }

    @Test("events go to the inbox with dense seqs; keys deduplicate within the window and within one request", arguments: StoreKind.allCases)
    func eventsAndDedup(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let slot = slotName()
            let first = try await store.appendEvents(slot, [event(#"{"a":1}"#, type: "order", key: "k1"), event(#"{"a":2}"#)], createsSlot: true,
                                                     dedupWindowMs: 60_000)
            #expect(first == [1, 2])
            let again = try await store.appendEvents(slot, [event(#"{"a":1}"#, key: "k1"), event(#"{"a":3}"#, key: "k2"), event(#"{"a":3}"#, key: "k2")],
                                                     createsSlot: true, dedupWindowMs: 60_000)
            #expect(again == [1, 3, 3], "a seen key answers its first seq; a key repeated in one request stores one event")
            let read = try await store.readLog(.slot(slot), after: 0, limit: 100, maxBytes: 1 << 20)
            #expect(read.records.map(\.seq) == [1, 2, 3])
            #expect(read.records.map { String(buffer: $0.record.body) } == [#"{"a":1}"#, #"{"a":2}"#, #"{"a":3}"#])
            #expect(read.records.first?.record.type == "order")
            #expect(read.records.allSatisfy { $0.path.isInbox && $0.contentType.isJSON })
            // A zero window dedupes nothing.
            #expect(try await store.appendEvents(slot, [event("{}", key: "k1")], createsSlot: true, dedupWindowMs: -1) == [4])
            // The inbox is a Durable Streams JSON stream too.
            #expect(try await store.info(StreamPath(slot.rawValue)!).head == Offset(4))
            await #expect(throws: StoreError.slotNotFound(SlotName("nope-\(slot)")!)) {
                try await store.appendEvents(SlotName("nope-\(slot)")!, [event("{}")], createsSlot: false, dedupWindowMs: 0)
            }
        }
    }

    @Test("slot and stream scopes read by seq; a cursor past the head is refused", arguments: StoreKind.allCases)
    func scopes(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let slot = slotName()
            let a = StreamPath("\(slot)/a")!, b = StreamPath("\(slot)/b")!
            _ = try await store.create(a, CreateRequest(contentType: plain, messages: [text("a1")]))
            _ = try await store.create(b, CreateRequest(contentType: plain, messages: [text("b1")]))
            _ = try await store.append(a, AppendRequest(contentType: plain, messages: [text("a2")]))
            let all = try await store.readLog(.slot(slot), after: 0, limit: 10, maxBytes: 1 << 20)
            #expect(all.records.map(\.seq) == [1, 2, 3] && all.records.map(\.path) == [a, b, a] && all.headSeq == 3)
            let onlyA = try await store.readLog(.stream(a), after: 1, limit: 10, maxBytes: 1 << 20)
            #expect(onlyA.records.map(\.seq) == [3] && onlyA.next == 3)
            let paged = try await store.readLog(.slot(slot), after: 1, limit: 1, maxBytes: 1 << 20)
            #expect(paged.records.map(\.seq) == [2] && paged.next == 2)
            await #expect(throws: StoreError.seqOutOfRange(requested: 9, head: 3)) {
                try await store.readLog(.slot(slot), after: 9, limit: 10, maxBytes: 1 << 20)
            }
            #expect(all.changeKey == ChangeKey.slot(1) || all.changeKey < 0, "slot scopes wake on the slot's key")
        }
    }

    @Test("a seq is never handed out twice: deleting the stream with the newest records, or trimming them all, keeps the head",
          arguments: StoreKind.allCases)
    func headOutlivesItsRecords(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let slot = slotName()
            let a = StreamPath("\(slot)/a")!, b = StreamPath("\(slot)/b")!, c = StreamPath("\(slot)/c")!
            _ = try await store.create(a, CreateRequest(contentType: plain, messages: [text("a1"), text("a2")]))
            _ = try await store.create(b, CreateRequest(contentType: plain, messages: [text("b1")]))
            try await store.delete(b)  // took seq 3, the newest
            let state = try await store.logState(slot), info = try await store.slot(slot)
            #expect(state.headSeq == 3 && info.headSeq == 3)
            _ = try await store.append(a, AppendRequest(contentType: plain, messages: [text("a3")]))
            #expect(try await store.readLog(.slot(slot), after: 0, limit: 10, maxBytes: 1 << 20).records.map(\.seq) == [1, 2, 4])
            // Byte retention below one record's size trims every record, the newest too.
            _ = try await store.updateSlot(slot, settings: SlotSettings(maxBytes: 1), actor: "test")
            #expect(try await store.applyRetention(dedupWindowMs: 60_000) == 3)
            let trimmed = try await store.logState(slot)
            #expect(trimmed.headSeq == 4 && trimmed.records == 0, "\(trimmed)")
            _ = try await store.updateSlot(slot, settings: SlotSettings(), actor: "test")
            _ = try await store.create(c, CreateRequest(contentType: plain, messages: [text("c1")]))
            let after = try await store.readLog(.slot(slot), after: 4, limit: 10, maxBytes: 1 << 20)
            #expect(after.records.map(\.seq) == [5] && after.headSeq == 5)
            let consumer = try await store.openConsumer("head", scope: .slot(slot), ackWaitMs: 1000, maxInFlight: 10)
            #expect(consumer.headSeq == 5)
        }
    }

    @Test("a stream read by seq starts right after every cursor, with other streams' seqs between and a trimmed start",
          arguments: StoreKind.allCases)
    func streamReadFromEveryCursor(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let slot = slotName()
            _ = try await store.createSlot(slot, settings: SlotSettings(maxRecords: 40), actor: "test")
            let a = StreamPath("\(slot)/a")!, b = StreamPath("\(slot)/b")!
            for path in [a, b] { _ = try await store.create(path, CreateRequest(contentType: plain, createsSlot: false)) }
            for i in 0..<30 {
                _ = try await store.append(a, AppendRequest(contentType: plain, messages: (0...(i % 3)).map { text("a\(i).\($0)") }))
                if i % 4 != 1 { _ = try await store.append(b, AppendRequest(contentType: plain, messages: (0...(i % 2)).map { text("b\(i).\($0)") })) }
            }
            let state = try await store.logState(slot)
            #expect(state.floorSeq > 0, "the record limit trimmed the start")
            // The oracle: the slot scope (read through another index), filtered to stream a.
            let slotRead = try await store.readLog(.slot(slot), after: state.floorSeq, limit: 1000, maxBytes: 1 << 20)
            let ofA = slotRead.records.filter { $0.path == a }.map(\.seq)
            #expect(!ofA.isEmpty)
            for after in state.floorSeq...state.headSeq {
                let read = try await store.readLog(.stream(a), after: after, limit: 3, maxBytes: 1 << 20)
                #expect(read.records.map(\.seq) == Array(ofA.filter { $0 > after }.prefix(3)), "after \(after)")
                #expect(read.records.allSatisfy { $0.path == a })
            }
        }
    }

    @Test("max_records trims at every commit; a cursor below the floor is gone on every read path", arguments: StoreKind.allCases)
    func recordRetention(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let slot = slotName()
            _ = try await store.createSlot(slot, settings: SlotSettings(maxRecords: 3), actor: "test")
            let p = StreamPath("\(slot)/log")!
            _ = try await store.create(p, CreateRequest(contentType: plain, createsSlot: false))
            for i in 1...5 { _ = try await store.append(p, AppendRequest(contentType: plain, messages: [text("m\(i)")])) }
            let state = try await store.logState(slot)
            #expect(state.records == 3 && state.floorSeq == 2 && state.headSeq == 5)
            let read = try await store.readLog(.slot(slot), after: 0, limit: 10, maxBytes: 1 << 20)
            #expect(read.records.map(\.seq) == [3, 4, 5], "after=0 starts at the oldest retained record")
            #expect(try await store.readLog(.slot(slot), after: 2, limit: 10, maxBytes: 1 << 20).records.count == 3, "the floor itself is served")
            await #expect(throws: StoreError.belowRetention(floor: .seq(2))) {
                try await store.readLog(.slot(slot), after: 1, limit: 10, maxBytes: 1 << 20)
            }
            await #expect(throws: StoreError.belowRetention(floor: .seq(2))) {
                try await store.readLog(.stream(p), after: 1, limit: 10, maxBytes: 1 << 20)
            }
            // Durable Streams offsets: the start reads what is left, an offset below the floor is gone.
            #expect(try await store.readAll(p) == "m3m4m5")
            await #expect(throws: StoreError.belowRetention(floor: .offset(Offset(2)))) {
                try await store.read(p, after: Offset(1), maxBytes: 1 << 20)
            }
            #expect(try await store.readAll(p, after: Offset(2)) == "m3m4m5")
        }
    }

    @Test("the sweep applies max_bytes and max_age; a fork reading trimmed source records is gone", arguments: StoreKind.allCases)
    func sweptRetention(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let slot = slotName()
            _ = try await store.createSlot(slot, settings: SlotSettings(maxBytes: 25), actor: "test")
            let p = StreamPath("\(slot)/log")!
            _ = try await store.create(p, CreateRequest(contentType: plain, messages: (1...5).map { _ in text("0123456789") }, createsSlot: false))
            let fork = StreamPath("\(slot)/fork")!
            _ = try await store.create(fork, CreateRequest(contentType: plain, fork: ForkPoint(source: p, offset: Offset(2), subOffset: 0)))
            #expect(try await store.applyRetention(dedupWindowMs: 0) == 3)
            let state = try await store.logState(slot)
            #expect(state.bytes == 20 && state.records == 2 && state.floorSeq == 3)
            await #expect(throws: StoreError.belowRetention(floor: .offset(Offset(2)))) {
                try await store.read(fork, after: Offset(1), maxBytes: 1 << 20)
            }
            #expect(try await store.readAll(fork) == "", "the fork's inherited records are gone, and it has none of its own")

            let aged = slotName()
            _ = try await store.createSlot(aged, settings: SlotSettings(maxAgeSeconds: 0), actor: "test")
            let q = StreamPath("\(aged)/log")!
            _ = try await store.create(q, CreateRequest(contentType: plain, messages: [text("old")], createsSlot: false))
            try await Task.sleep(for: .milliseconds(5))
            _ = try await store.applyRetention(dedupWindowMs: 0)
            #expect(try await store.logState(aged).records == 0)
            #expect(try await store.info(q).head == Offset(1), "offsets never go back after a trim")
        }
    }

    @Test("consumers: created on first open, keep their scope, acknowledge cumulatively, list lag, reset", arguments: StoreKind.allCases)
    func consumers(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let slot = slotName()
            _ = try await store.appendEvents(slot, (1...4).map { event(#"{"n":\#($0)}"#) }, createsSlot: true, dedupWindowMs: 0)
            let opened = try await store.openConsumer("worker", scope: .slot(slot), ackWaitMs: 30_000, maxInFlight: 100)
            #expect(opened.ackedSeq == 0)
            #expect(try await store.acknowledge("worker", slot: slot, seq: 3) == 3)
            #expect(try await store.acknowledge("worker", slot: slot, seq: 2) == 3, "acks are cumulative; an older one changes nothing")
            await #expect(throws: StoreError.seqOutOfRange(requested: 9, head: 4)) { try await store.acknowledge("worker", slot: slot, seq: 9) }
            await #expect(throws: StoreError.self) { try await store.openConsumer("worker", scope: .stream(StreamPath(slot.rawValue)!), ackWaitMs: 1, maxInFlight: 1) }
            #expect(try await store.openConsumer("worker", scope: .slot(slot), ackWaitMs: 5_000, maxInFlight: 10).ackedSeq == 3)
            let listed = try await store.consumers(slot: slot)
            #expect(listed.count == 1 && listed[0].lag == 1 && listed[0].ackWaitMs == 5_000)
            try await store.deleteConsumer("worker", slot: slot, actor: "test")
            #expect(try await store.consumers(slot: slot).isEmpty)
            await #expect(throws: StoreError.consumerNotFound("worker")) { try await store.acknowledge("worker", slot: slot, seq: 1) }
            #expect(try await store.audit(limit: 5).contains { $0.action == "consumer.reset" })
        }
    }
}
