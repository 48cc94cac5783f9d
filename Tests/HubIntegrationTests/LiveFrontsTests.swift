import Foundation
import HubServer
import HubTestSupport
import WSClient
import WSCore
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Testing

/// The four client behaviours of the live fronts (docs/api/events.md, docs/api/websocket.md), against a real hub.
@Suite("Live fronts: events surface and WebSocket")
struct LiveFrontsTests {
    @Test("wire daemon: slot token from self-service, a wake-only SSE doorbell, then a pull with ?since=")
    func wireDaemon() async throws {
        try await withTokenHub({ $0.http.selfServiceSlots = true }) { hub, _ in
            let allocated = try await hub.client.request(.POST, "/v1/slot/allocate")
            #expect(allocated.status == 201)
            let doc = json(allocated.text)
            let slot = try #require(doc["slot_id"] as? String), token = try #require(doc["slot_token"] as? String)
            let auth = [("Authorization", "Bearer \(token)")]

            let heads = LockedBox<HTTPResponseHead>()
            let daemon = Task {
                try await hub.sse("/v1/events/\(slot)/stream?wake=1", headers: auth, onHead: { heads.set($0) }) { event in
                    #expect(event.type == "message")
                    return event.data != "2"  // doorbells carry the newest seq; stop once it reaches 2
                }
            }
            try await hub.untilWaiting(1)
            let live = json(try await hub.client.request(.GET, "/v1/slot/\(slot)/state", headers: auth).text)
            #expect(live["subscribers"] as? Int == 1 && live["head_seq"] as? Int == 0 && live["last_read_at"] is String)
            #expect(try await hub.postEvents(slot, #"{"type":"order.created","id":1}"#, token: token).text == #"{"seq":1}"#)
            #expect(try await hub.postEvents(slot, #"{"id":2}"#, token: token, headers: [("Event-Type", "note")]).status == 200)
            _ = try await daemon.value
            let head = try #require(heads.value)
            #expect(head.headers["Content-Type"].first == "text/event-stream" && head.headers["X-Accel-Buffering"].first == "no")

            let pulled = json(try await hub.client.request(.GET, "/v1/events/\(slot)?since=0", headers: auth).text)
            let events = try #require(pulled["events"] as? [[String: Any]])
            #expect(events.map { $0["seq"] as? Int } == [1, 2])
            #expect(events.map { $0["event"] as? String } == ["order.created", "note"])
            #expect((events[1]["data"] as? [String: Any])?["id"] as? Int == 2)
            #expect(pulled["next"] as? Int == 2 && pulled["head"] as? Int == 2)

            // No token, another slot's token, or a query token: refused before any work.
            #expect(try await hub.client.request(.GET, "/v1/events/\(slot)?since=0").status == 401)
            #expect(try await hub.client.request(.POST, "/v1/events/other-slot", headers: auth + [jsonType], body: "{}").status == 403)
            let state = json(try await hub.client.request(.GET, "/v1/slot/\(slot)/state", headers: auth).text)
            #expect(state["head_seq"] as? Int == 2 && state["records"] as? Int == 2 && state["floor_seq"] as? Int == 0)
        }
    }

    @Test("events: SSE ids are seqs, Last-Event-ID resumes, and an event_id or Idempotency-Key stores an event once")
    func eventsResumeAndDedup() async throws {
        try await withRunningHub { hub in
            #expect(try await hub.postEvents("acme", #"[{"n":1,"event_id":"a"},{"n":2},{"n":3,"type":"x"}]"#).text == #"{"seqs":[1,2,3]}"#)
            #expect(try await hub.postEvents("acme", #"{"n":1,"event_id":"a"}"#).text == #"{"seq":1}"#, "a repeated event_id answers the first seq")
            #expect(try await hub.postEvents("acme", #"{"n":4}"#, headers: [("Idempotency-Key", "k")]).text == #"{"seq":4}"#)
            #expect(try await hub.postEvents("acme", #"{"n":4}"#, headers: [("Idempotency-Key", "k")]).text == #"{"seq":4}"#)
            let log = EventLog()
            try await hub.sse("/v1/events/acme/stream?since=0", headers: [("Last-Event-ID", "1")]) { event in
                await log.add(event).count < 3
            }
            let events = await log.events
            #expect(events.map(\.id) == ["2", "3", "4"], "Last-Event-ID wins over ?since=")
            #expect(events.map(\.type) == ["message", "x", "message"])
            #expect(events.first?.data == #"{"n":2}"#)
            // Bad input is refused and stores nothing.
            #expect(try await hub.postEvents("acme", "{nope").status == 400)
            #expect(try await hub.postEvents("acme", "[]").status == 400)
            #expect(try await hub.client.request(.GET, "/v1/events/acme?limit=5000").status == 400)
            #expect(try await hub.client.request(.GET, "/v1/events/acme?since=99").status == 400)
            #expect(json(try await hub.client.request(.GET, "/v1/slot/acme/state").text)["head_seq"] as? Int == 4)
        }
    }

    @Test("browser/TUI: auth before the upgrade, then typed frames live; a slot-wide socket sees every stream in seq order")
    func browserTypedFrames() async throws {
        try await withTokenHub { hub, admin in
            #expect(try await hub.admin(.POST, "slots", token: admin, json: #"{"name":"acme"}"#).status == 201)
            let reader = try await hub.mint(admin, slot: "acme", scopes: ["read", "append", "create"])
            // Refused before the upgrade: a problem document, never a half-open socket.
            let upgrade = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]
            let refused = try await hub.client.request(.GET, "/v1/ws?slot=acme", headers: upgrade)
            #expect(refused.status == 401 && refused.header("Content-Type") == "application/problem+json")
            #expect(try await hub.client.request(.GET, "/v1/ws?slot=acme&consumer=w", headers: upgrade + [("Authorization", "Bearer \(reader.secret)")]).status == 403,
                    "a consumer needs the consume scope")

            let frames = Frames()
            let session = Task {
                try await webSocket(port: hub.port, "slot=acme&envelope=typed", token: reader.secret) { text, _ in
                    frames.add(text) < 3
                }
            }
            try await hub.untilWaiting(1)
            #expect(try await hub.put("acme/orders", [textType, ("Authorization", "Bearer \(reader.secret)")], body: "hello").status == 201)
            #expect(try await hub.postEvents("acme", #"{"type":"ping","n":1}"#, token: reader.secret).status == 200)
            #expect(try await hub.post("acme/orders", [textType, ("Authorization", "Bearer \(reader.secret)")], body: "again").status == 204)
            _ = try await session.value
            let items = frames.items
            #expect(items.map { $0["seq"] as? Int } == [1, 2, 3])
            #expect(items.map { $0["event"] as? String } == ["message", "ping", "message"])
            #expect(items.map { $0["stream"] as? String } == ["acme/orders", "acme", "acme/orders"])
            #expect(items[0]["data"] as? String == "hello" && (items[1]["data"] as? [String: Any])?["n"] as? Int == 1)
            #expect(items.allSatisfy { ($0["ts"] as? String)?.hasSuffix("Z") == true })
        }
    }

    @Test("web view: a cursor below retention gets one uniform answer: HTTP 410, WebSocket 4410 after a problem frame, SSE error event")
    func retentionAnswers() async throws {
        try await withTokenHub { hub, admin in
            #expect(try await hub.admin(.POST, "slots", token: admin, json: #"{"name":"view","retention":{"max_records":3}}"#).status == 201)
            for n in 1...6 { #expect(try await hub.postEvents("view", #"{"n":\#(n)}"#, token: admin).status == 200) }
            let auth = [("Authorization", "Bearer \(admin)")]
            let listed = try await hub.client.request(.GET, "/v1/events/view?since=1", headers: auth)
            #expect(listed.status == 410 && json(listed.text)["code"] as? String == "below-retention" && listed.header("Hub-Retention-Floor") == "3")
            #expect(try await hub.client.request(.GET, "/v1/events/view?since=3", headers: auth).status == 200, "the floor itself is served")
            let offsetRead = try await hub.client.request(.GET, "/v1/stream/view?offset=00000000000000000001", headers: auth)
            #expect(offsetRead.status == 410 && json(offsetRead.text)["code"] as? String == "below-retention")

            let refused = await (try await RawWebSocket.upgrade(port: hub.port, path: "/v1/ws?slot=view&since=1", headers: auth)).readUntilClose()
            #expect(refused.code == 4410)
            #expect(refused.texts.count == 1 && json(refused.texts[0])["code"] as? String == "below-retention", "the problem frame comes before the close")

            let log = EventLog()
            let ended = try await hub.sse("/v1/events/view/stream?since=1", headers: auth) { event in _ = await log.add(event); return true }
            #expect(ended, "the server ends the stream after the error event")
            let events = await log.events
            #expect(events.count == 1 && events[0].type == "error" && json(events[0].data)["status"] as? Int == 410)

            // After re-hydrating (since = the floor, or no since), the view follows again.
            let resumed = Frames()
            try await webSocket(port: hub.port, "slot=view&since=3", token: admin) { text, _ in resumed.add(text) < 3 }
            #expect(resumed.seqs == [4, 5, 6])
        }
    }

    @Test("worker: at-least-once with cumulative acks; redelivery after ack_wait; a restart of hubd resumes after the last ack")
    func durableConsumer() async throws {
        let directory = try TemporaryDirectory()
        var hubd = try await HubdProcess(dataDirectory: directory.path, arguments: ["--auth", "open"])
        for n in 1...5 { #expect(try await hubd.client.request(.POST, "/v1/events/jobs", headers: [jsonType], body: #"{"job":\#(n)}"#).status == 200) }

        // Redelivery: nothing acknowledged within ack_wait, so seq 1 and 2 come again.
        let redelivered = Frames()
        try await webSocket(port: hubd.port, "slot=jobs&consumer=worker&ack_wait_ms=200&max_in_flight=2") { text, _ in
            redelivered.add(text) < 4
        }
        #expect(redelivered.seqs == [1, 2, 1, 2], "max_in_flight holds back 3 until an ack or a redelivery")

        // Process 1..3, acknowledge 3 (cumulative), then crash before acknowledging 4.
        let first = Frames()
        try await webSocket(port: hubd.port, "slot=jobs&consumer=worker") { text, outbound in
            let count = first.add(text)
            if count == 3 { try await outbound.write(.text(#"{"type":"ack","seq":3}"#)) }
            return count < 4
        }
        #expect(first.seqs == [1, 2, 3, 4])
        // The ack was sent before the session ended; the listing shows it once committed. Then restart hubd.
        try await eventually(every: .milliseconds(10)) {
            (json(try await hubd.client.request(.GET, "/v1/admin/consumers?slot=jobs").text)["items"] as? [[String: Any]])?.first?["acked_seq"] as? Int == 3
        }
        #expect(await hubd.terminate() == 0)
        hubd = try await HubdProcess(dataDirectory: directory.path, arguments: ["--auth", "open"])
        let listed = try #require((json(try await hubd.client.request(.GET, "/v1/admin/consumers?slot=jobs").text)["items"] as? [[String: Any]])?.first)
        #expect(listed["acked_seq"] as? Int == 3 && listed["lag"] as? Int == 2)

        let resumed = Frames()
        try await webSocket(port: hubd.port, "slot=jobs&consumer=worker") { text, _ in resumed.add(text) < 2 }
        #expect(resumed.seqs == [4, 5], "reconnecting without since resumes right after the last acknowledgement")

        // Reset through the admin API: the consumer starts over.
        #expect(try await hubd.client.request(.DELETE, "/v1/admin/consumers/jobs/worker").status == 204)
        #expect(try await hubd.client.request(.DELETE, "/v1/admin/consumers/jobs/worker").status == 404)
        let restarted = Frames()
        try await webSocket(port: hubd.port, "slot=jobs&consumer=worker") { text, _ in restarted.add(text) < 1 }
        #expect(restarted.seqs == [1])
        #expect(await hubd.terminate() == 0)
    }

    @Test("WebSocket limits: an inbound message over 64 KiB closes with 1009; an ack without a consumer gets an error frame")
    func inboundLimits() async throws {
        try await withRunningHub { hub in
            _ = try await hub.postEvents("lim", "{}")
            let errors = Frames()
            let close = try await webSocket(port: hub.port, "slot=lim&since=0") { text, outbound in
                let n = errors.add(text)
                if n == 1 { try await outbound.write(.text(#"{"type":"ack","seq":1}"#)) }
                if n == 2 { try await outbound.write(.text(String(repeating: "x", count: 70_000))) }
                return true
            }
            let items = errors.items
            #expect(items.count == 2 && items[1]["code"] as? String == "not-a-consumer")
            #expect(close?.closeCode == .messageTooLarge)
        }
    }

    @Test("fan-out: 50 WebSocket subscribers at the tail each get every record exactly once, in order, while appends race")
    func webSocketFanOut() async throws {
        try await withRunningHub { hub in
            _ = try await hub.postEvents("fan", #"{"n":0}"#)
            let count = 300
            let sessions = (0..<50).map { i in
                Task {
                    let frames = Frames()
                    // Half deflate (pull path), half plain (push path at the tail).
                    try await webSocket(port: hub.port, "slot=fan&since=1", deflate: i % 2 == 0) { text, _ in frames.add(text) < count }
                    return frames.seqs
                }
            }
            try await hub.untilWaiting(1)
            // Appends from four writers, some in batches, while subscribers move between the push and pull paths.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<4 {
                    group.addTask {
                        var sent = 0
                        while sent < count / 4 {
                            let n = min(1 + (sent % 3), count / 4 - sent)
                            let body = "[" + (0..<n).map { #"{"w":\#(w),"i":\#(sent + $0)}"# }.joined(separator: ",") + "]"
                            let posted = try await hub.postEvents("fan", body)
                            #expect(posted.status == 200)
                            sent += n
                        }
                    }
                }
                try await group.waitForAll()
            }
            for session in sessions {
                let seqs = try await session.value
                #expect(seqs == Array(2...(count + 1)))
            }
        }
    }

    /// Raw sockets read what the server sends; they do not answer the close, so this checks the server's side.
    @Test("graceful shutdown closes WebSockets with 1001, on the push path and the pull path alike")
    func shutdownCloses() async throws {
        try await withRunningHub { hub in
            _ = try await hub.postEvents("bye", "{}")
            let pushed = try await RawWebSocket.upgrade(port: hub.port, path: "/v1/ws?slot=bye")
            let pulled = try await RawWebSocket.upgrade(port: hub.port, path: "/v1/ws?slot=bye",
                                                        headers: [("Sec-WebSocket-Extensions", "permessage-deflate")])
            try await hub.untilWaiting(2)
            await hub.shutdown()
            #expect(await pushed.readCloseCode() == 1001)
            #expect(await pulled.readCloseCode() == 1001)
        }
    }

    @Test("permessage-deflate is negotiated when offered, and compressed frames arrive intact")
    func deflate() async throws {
        try await withRunningHub { hub in
            let big = "{\"text\":\"" + String(repeating: "compressible ", count: 400) + "\"}"
            #expect(try await hub.postEvents("z", big).status == 200)
            let offered = try await RawWebSocket.upgrade(port: hub.port, path: "/v1/ws?slot=z", headers: [("Sec-WebSocket-Extensions", "permessage-deflate")])
            #expect(offered.responseHead.lowercased().contains("sec-websocket-extensions: permessage-deflate"))
            let plain = try await RawWebSocket.upgrade(port: hub.port, path: "/v1/ws?slot=z")
            #expect(!plain.responseHead.lowercased().contains("permessage-deflate"), "not offered, not used")
            let frames = Frames()
            try await webSocket(port: hub.port, "slot=z&since=0", deflate: true) { text, _ in frames.add(text) < 1 }
            #expect(((frames.items.first?["event"] as? [String: Any])?["text"] as? String)?.count == 13 * 400)
        }
    }

    @Test("a client that stops reading is closed with 4008 without stalling other subscribers")
    func slowConsumer() async throws {
        try await withRunningHub({ $0.http.webSocketSendTimeout = .milliseconds(300); $0.http.webSocketCloseGrace = .seconds(120) }) { hub in
            _ = try await hub.postEvents("fan", "{}")
            let stalled = try await RawWebSocket.upgrade(port: hub.port, path: "/v1/ws?slot=fan")
            let healthy = Frames()
            let payload = "{\"pad\":\"" + String(repeating: "p", count: 60_000) + "\"}"
            let session = Task {
                try await webSocket(port: hub.port, "slot=fan&since=1") { text, _ in healthy.add(text) < 150 }
            }
            try await hub.untilWaiting(2)
            // The stalled client's watchdog fires while the appends go on: once its count is in the metrics, the client
            // reads what the server sent and then the 4008, within the server's grace for the close (raised above; the
            // appends and the metrics polls can take longer than hubd's 10 s on a loaded machine).
            async let stalledEnd: (texts: [String], code: Int?, end: RawWebSocket.End) = {
                try await eventually(every: .milliseconds(50)) {
                    try await hub.client.request(.GET, "/metrics").text.contains("hub_slow_consumer_closes_total 1")
                }
                return await stalled.readUntilClose()
            }()
            for _ in 0..<150 { #expect(try await hub.postEvents("fan", payload).status == 200) }
            _ = try await session.value
            #expect(healthy.seqs == Array(2...151), "the healthy subscriber got everything, in order")
            let end = try await stalledEnd
            #expect(end.code == 4008, "the stalled client read \(end.texts.count) frames, then \(end.code.map(String.init) ?? "no close frame")")
        }
    }

    @Test("a stalled client that never reads again is dropped once the close grace is over")
    func stalledClientDropped() async throws {
        try await withRunningHub({ $0.http.webSocketSendTimeout = .milliseconds(300); $0.http.webSocketCloseGrace = .milliseconds(500) }) { hub in
            _ = try await hub.postEvents("fan", "{}")
            let stalled = try await RawWebSocket.upgrade(port: hub.port, path: "/v1/ws?slot=fan")
            try await hub.untilWaiting(1)
            let payload = "{\"pad\":\"" + String(repeating: "p", count: 60_000) + "\"}"
            // Appends until the client's small receive buffer and the server's send buffer are full and the watchdog fires.
            try await eventually(every: .milliseconds(20)) {
                #expect(try await hub.postEvents("fan", payload).status == 200)
                return try await hub.client.request(.GET, "/metrics").text.contains("hub_slow_consumer_closes_total 1")
            }
            // The 4008 waits behind what the client never reads; after the grace the session ends and the connection is dropped.
            try await eventually(every: .milliseconds(50)) {
                try await hub.client.request(.GET, "/metrics").text.contains(#"hub_connections{transport="websocket"} 0"#)
            }
            let end = await stalled.readUntilClose()
            #expect(!end.texts.isEmpty, "what reached the socket before the drop is still there")
            #expect(end.end == .endOfStream && end.code == nil, "dropped: the close frame never got past the unread frames")
        }
    }
}
