import Foundation
import HTTPTypes
@testable import HubHTTP
import HubServer
import HubTestSupport
import HubProtocol
import NIOHTTP1
import Synchronization
import Testing

/// The hot path (`HotPathRouter`, `HotPathHandler`) against the router: the same request gets the same answer on
/// both paths, pipelined requests are answered in order across them, and its limits hold.
@Suite("Hot path: appends, long-polls and SSE at the tail answered from the event loop")
struct HotPathTests {
    /// One append, sent to the hot path (no query) and to the router (`?via=router`: queries always go there).
    private struct Step {
        let headers: [(String, String)]
        let body: String?
    }

    @Test("a field's value read without the subscript's join is the subscript's value: absent, single, repeated, cookies")
    func fieldValue() {
        let long = "Bearer " + String(repeating: "t", count: 40)
        let cases: [(HTTPFields, HTTPField.Name)] = [
            ([:], .contentType),
            ([.contentType: "application/json"], .contentType),
            ([.authorization: long], .authorization),
            ([.contentType: ""], .contentType),
            ([.accept: "a", .contentType: "b", .accept: "application/json"], .accept),
            ([.cookie: "a=1", .cookie: "b=2"], .cookie),
            ([.contentType: "text/plain"], .authorization),
        ]
        for (fields, name) in cases {
            #expect(fields.value(name) == fields[name], "\(fields) \(name)")
        }
        let repeated: HTTPFields = [.accept: "a", .accept: "b"]
        #expect(repeated.value(.accept) == "a, b")
    }

    @Test("every append outcome and refusal is the router's answer, status, headers and problem document alike")
    func sameAnswers() async throws {
        try await withRunningHub { hub in
            let hot = uniqueStream(), routed = uniqueStream()
            for p in [hot, routed] { #expect(try await hub.put(p, [textType]).status == 201) }
            let producer = [("Producer-Id", "p1"), ("Producer-Epoch", "0")]
            let steps: [Step] = [
                Step(headers: [textType], body: "one"),
                Step(headers: [textType], body: nil),                                       // 400 empty body
                Step(headers: [], body: "no type"),                                         // 400 missing content type
                Step(headers: [("Content-Type", "application/json")], body: "[1]"),         // 409 content type
                Step(headers: [("Content-Type", "text/plain; charset=utf-8")], body: "two"),  // the same type, with a parameter
                Step(headers: [textType, ("Stream-Seq", "b")], body: "three"),
                Step(headers: [textType, ("Stream-Seq", "a")], body: "four"),               // 409 seq regression
                Step(headers: [textType] + producer + [("Producer-Seq", "0")], body: "five"),  // 200
                Step(headers: [textType] + producer + [("Producer-Seq", "0")], body: "five"),  // 204 duplicate
                Step(headers: [textType] + producer + [("Producer-Seq", "2")], body: "six"),   // 409 gap
                Step(headers: [textType, ("Producer-Id", "p2")], body: "seven"),            // 400 incomplete producer
                Step(headers: [textType, ("Stream-Closed", "true")], body: nil),            // 204 closes
                Step(headers: [textType], body: "eight"),                                   // 409 closed
            ]
            let before = try await hotResponses(hub)
            for (index, step) in steps.enumerated() {
                let a = try await hub.client.request(.POST, hub.streamURL(hot), headers: step.headers, body: step.body)
                let b = try await hub.client.request(.POST, hub.streamURL(routed, "via=router"), headers: step.headers, body: step.body)
                #expect(a.status == b.status, "step \(index): \(a.status) \(a.text) vs \(b.status) \(b.text)")
                #expect(comparable(a.headers) == comparable(b.headers), "step \(index)")
                #expect(a.text.replacingOccurrences(of: hot, with: "S") == b.text.replacingOccurrences(of: routed, with: "S"), "step \(index)")
            }
            #expect(try await hubResponsesDelta(hub, since: before) == steps.count, "every hot request was answered by the hot path")
            let stored = try await hub.get(hot, "offset=-1").text, storedByRouter = try await hub.get(routed, "offset=-1").text
            #expect(stored.hasPrefix("one") && stored.contains("five") && stored == storedByRouter)
            #expect(try await hub.post(uniqueStream(), body: "x").status == 404)
        }
    }

    @Test("pipelined requests are answered in order, across the hot path and the router")
    func pipelining() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            #expect(try await hub.put(p, [textType]).status == 201)
            func post(_ body: String) -> String {
                "POST /v1/stream/\(p) HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            }
            let get = "GET /v1/stream/\(p)?offset=-1 HTTP/1.1\r\nHost: x\r\n\r\n"
            // Hot, router, hot (while the router's answer is pending: it goes to the router), hot, router.
            let wire = post("a") + get + post("b") + post("c") + get
            let responses = try await RawHTTP.exchange(port: hub.port, send: wire, responses: 5)
            #expect(responses.map(\.status) == [204, 200, 204, 204, 200])
            #expect(responses.map { $0.header("stream-next-offset") } == ["00000000000000000001", "00000000000000000001",
                                                                           "00000000000000000002", "00000000000000000003",
                                                                           "00000000000000000003"])
            #expect(responses[1].body == "a" && responses[4].body == "abc")
        }
    }

    @Test("an oversized body is refused with 413 and nothing of it is stored; Connection: close is honoured")
    func limits() async throws {
        try await withRunningHub({ $0.http.maxBodyBytes = 1024 }) { hub in
            let p = uniqueStream()
            #expect(try await hub.put(p, [textType]).status == 201)
            let big = String(repeating: "x", count: 4000)
            let refused = try await RawHTTP.exchange(
                port: hub.port, send: "POST /v1/stream/\(p) HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 4000\r\n\r\n\(big)",
                responses: 1)
            #expect(refused.map(\.status) == [413] && refused[0].body.contains("payload-too-large"))
            #expect(refused[0].header("connection") == "close", "the rest of the body is not read")
            #expect(refused[0].header("content-type") == "application/problem+json")
            let closing = try await RawHTTP.exchange(
                port: hub.port, send: "POST /v1/stream/\(p) HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                responses: 1)
            // Only the header is checked: a child process another test spawns at the wrong moment can inherit the
            // server's socket (NIO accepts without CLOEXEC) and hold the connection open past the server's close.
            #expect(closing.map(\.status) == [204] && closing[0].header("connection") == "close")
            #expect(try await hub.get(p, "offset=-1").text == "ok")
        }
    }

    @Test("with tokens, a verified token's appends take the hot path; anything else gets the router's refusal")
    func tokens() async throws {
        try await withTokenHub { hub, admin in
            _ = try await hub.admin(.POST, "slots", token: admin, json: #"{"name":"hot"}"#)
            let writer = try await hub.mint(admin, slot: "hot", scopes: ["create", "append", "read"])
            let reader = try await hub.mint(admin, slot: "hot", scopes: ["read"])
            let auth = ("Authorization", "Bearer \(writer.secret)")
            #expect(try await hub.put("hot/s", [textType, auth]).status == 201)
            let before = try await hotResponses(hub, token: admin)
            for i in 0..<5 { #expect(try await hub.post("hot/s", [textType, auth], body: "\(i)").status == 204) }
            #expect(try await hubResponsesDelta(hub, since: before, token: admin) == 5)
            #expect(try await hub.post("hot/s", [textType], body: "x").status == 401)
            #expect(try await hub.post("hot/s", [textType, ("Authorization", "Bearer \(reader.secret)")], body: "x").status == 403)
            #expect(try await hub.admin(.DELETE, "tokens/\(writer.id)", token: admin).status == 204)
            #expect(try await hub.post("hot/s", [textType, auth], body: "x").status == 401, "revocation reaches the hot path at once")
            #expect(try await hub.get("hot/s", "offset=-1", headers: [("Authorization", "Bearer \(reader.secret)")]).text == "01234")
        }
    }

    @Test("concurrent appends, some refused, share commits: every accepted one is stored once, no refused one at all")
    func mixedGroups() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            let created = try await hub.put(p, [textType])
            #expect(created.status == 201)
            // 8 connections × 25 appends; 6 of each 25 are refused (another content type) inside whatever group they join.
            let statuses = try await withThrowingTaskGroup(of: [(String, Int)].self) { group in
                for c in 0..<8 {
                    group.addTask {
                        var seen: [(String, Int)] = []
                        for i in 0..<25 {
                            let body = "<\(c)-\(i)>"
                            let type = i % 4 == 3 ? ("Content-Type", "application/json") : textType
                            seen.append((body, try await hub.post(p, [type], body: i % 4 == 3 ? "[1]" : body).status))
                        }
                        return seen
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(statuses.filter { $0.1 == 409 }.count == 48 && statuses.filter { $0.1 == 204 }.count == 152, "\(Dictionary(grouping: statuses.map(\.1), by: { $0 }).mapValues(\.count))")
            let stored = try await hub.get(p, "offset=-1").text
            for (body, status) in statuses where status == 204 {
                #expect(stored.components(separatedBy: body).count == 2, "\(body) stored once")
            }
            #expect(!stored.contains("[1]"))
        }
    }

    @Test("hot-path: false sends every append through the router")
    func switchedOff() async throws {
        try await withRunningHub({ $0.hotPath = false }) { hub in
            let p = uniqueStream()
            let created = try await hub.put(p, [textType])
            #expect(created.status == 201)
            for i in 0..<3 { #expect(try await hub.post(p, body: "\(i)").status == 204) }
            #expect(try await hotResponses(hub) == 0)
            #expect(try await hub.get(p, "offset=-1").text == "012")
        }
    }

    // MARK: Helpers

    /// Headers that must match between the two paths: all but the date.
    @Test("long-polls that come back for the next batch are answered on the hot path, as the router answers them")
    func hotLongPolls() async throws {
        try await withRunningHub(patientPolls) { hub in
            let p = uniqueStream()
            _ = try await hub.put(p, [jsonType], body: "[1]")
            let start = try #require(try await hub.get(p, "offset=-1").header("stream-next-offset"))
            let before = try await hotResponses(hub)
            var hotAnswers = 0
            func append(_ body: String?, _ headers: [(String, String)] = [jsonType]) async throws {
                #expect(try await hub.post(p, headers, body: body).status / 100 == 2)
                hotAnswers += 1  // appends take the hot path too
            }
            // The first poll at the tail finds no push group: the router reads, and parks it in a new one.
            async let first = hub.get(p, "offset=\(start)&live=long-poll")
            try await hub.untilWaiting(1)
            try await append("[2]")
            let one = try await first
            #expect(one.status == 200 && one.text == "[2]", "\(one.status) \(one.headers) \(one.text)")
            #expect(try await hubResponsesDelta(hub, since: before) == hotAnswers, "the first poll was the router's")
            let second = try #require(one.header("stream-next-offset"))

            // The poll that comes back finds the group at its offset: the hot path parks it and answers the next batch.
            async let hotData = hub.get(p, "offset=\(second)&live=long-poll&cursor=7")
            try await hub.untilWaiting(1)
            try await append("[3]")
            let data = try await hotData
            hotAnswers += 1
            #expect(try await hubResponsesDelta(hub, since: before) == hotAnswers, "the second poll was the hot path's")
            let routedData = try await hub.get(p, "offset=\(second)&live=long-poll&cursor=7&via=router")
            #expect(data.status == 200 && data.text == "[3]" && data.text == routedData.text)
            #expect(comparable(data.headers, without: "stream-cursor") == comparable(routedData.headers, without: "stream-cursor"))
            #expect(data.header("stream-cursor") != nil && data.header("etag") != nil)

            // The close, pushed to a poll parked on the hot path: 204 with Stream-Closed, as the router says it.
            let third = try #require(data.header("stream-next-offset"))
            async let closing = hub.get(p, "offset=\(third)&live=long-poll")
            try await hub.untilWaiting(1)
            try await append(nil, [("Stream-Closed", "true")])
            let closed = try await closing
            hotAnswers += 1
            let routedClosed = try await hub.get(p, "offset=\(third)&live=long-poll&via=router")
            #expect(closed.status == 204 && closed.header("stream-closed") == "true" && closed.header("stream-cursor") == nil)
            #expect(comparable(closed.headers) == comparable(routedClosed.headers))
            #expect(try await hubResponsesDelta(hub, since: before) == hotAnswers)
        }
    }

    @Test("a long-poll back one batch late is answered by the hot path from that batch, as the router answers it; a later commit sends it to the router")
    func hotLatePoll() async throws {
        try await withRunningHub(patientPolls) { hub in
            let p = uniqueStream()
            let start = try #require(try await hub.put(p, [jsonType], body: "[1]").header("stream-next-offset"))
            let before = try await hotResponses(hub)
            // The router parks the first poll in a new push group; the append moves the group past `start`.
            async let first = hub.get(p, "offset=\(start)&live=long-poll")
            try await hub.untilWaiting(1)
            #expect(try await hub.post(p, [jsonType], body: "[2]").status == 204)
            let one = try await first
            #expect(one.status == 200 && one.text == "[2]", "\(one.status) \(one.text)")
            // Another poll from `start` is one batch late: nothing was committed since the group read that batch.
            let late = try await hub.get(p, "offset=\(start)&live=long-poll&cursor=7")
            #expect(try await hubResponsesDelta(hub, since: before) == 2, "the append and the late poll")
            let routed = try await hub.get(p, "offset=\(start)&live=long-poll&cursor=7&via=router")
            #expect(late.status == 200 && late.text == "[2]" && late.text == routed.text)
            #expect(comparable(late.headers, without: "stream-cursor") == comparable(routed.headers, without: "stream-cursor"))
            // After another commit that batch is not what a read returns any more: the router answers.
            #expect(try await hub.post(p, [jsonType], body: "[3]").status == 204)
            #expect(try await hub.get(p, "offset=\(start)&live=long-poll").text == "[2,3]")
            #expect(try await hubResponsesDelta(hub, since: before) == 3, "only the second append")
        }
    }

    @Test("a long-poll parked on the hot path times out with the router's 204 at the tail")
    func hotLongPollTimeout() async throws {
        // Long enough for the first poll to park before its deadline on a loaded machine.
        try await withRunningHub({ $0.http.longPollTimeout = .seconds(2) }) { hub in
            let p = uniqueStream()
            let tail = try #require(try await hub.put(p, [jsonType], body: "[1]").header("stream-next-offset"))
            let before = try await hotResponses(hub)
            // The router's poll times out and leaves the stream's push group at the tail; the next poll joins it.
            let routed = try await hub.get(p, "offset=\(tail)&live=long-poll")
            #expect(try await hubResponsesDelta(hub, since: before) == 0)
            let hot = try await hub.get(p, "offset=\(tail)&live=long-poll")
            #expect(try await hubResponsesDelta(hub, since: before) == 1, "the second poll was the hot path's")
            #expect(hot.status == 204 && routed.status == 204)
            #expect(comparable(hot.headers, without: "stream-cursor") == comparable(routed.headers, without: "stream-cursor"))
            #expect(hot.header("stream-next-offset") == tail && hot.header("stream-cursor") != nil)
        }
    }

    /// Two SSE readers of one stream at its tail: the first (the router's) parks in a new push group, the second finds
    /// the group at its offset and is the hot path's. Returns once both have their first control event.
    private func twoTailReaders(_ hub: RunningHub, _ p: String, at tail: String, before: Int,
                                _ body: @Sendable () async throws -> Void) async throws -> (routed: SSERead, hot: SSERead) {
        let url = hub.streamURL(p, "offset=\(tail)&live=sse")
        let routed = SSERead(), hot = SSERead()
        async let routedEnded = hub.sse(url, onHead: routed.head) { await routed.log.add($0); return true }
        try await hub.untilWaiting(1)  // parked: the stream's group is at the tail
        #expect(try await hubResponsesDelta(hub, since: before) == 0, "the first reader was the router's")
        async let hotEnded = hub.sse(url, onHead: hot.head) { await hot.log.add($0); return true }
        try await eventually {
            let hotStarted = await !hot.log.events.isEmpty, routedStarted = await !routed.log.events.isEmpty
            return hotStarted && routedStarted
        }
        #expect(try await hubResponsesDelta(hub, since: before) == 1, "the second reader was the hot path's")
        try await body()
        let ended = try await (routedEnded, hotEnded)
        #expect(ended == (true, true), "the server ended both responses")
        return (routed, hot)
    }

    final class SSERead: Sendable {
        let log = EventLog()
        private let received = Mutex<HTTPResponseHead?>(nil)
        var response: HTTPResponseHead? { received.withLock { $0 } }
        var head: @Sendable (HTTPResponseHead) -> Void { { h in self.received.withLock { $0 = h } } }
        /// The events with the cursor left out (both paths use the current interval's; a boundary may pass between).
        var events: [String] {
            get async {
                await log.events.map { "\($0.type): " + $0.data.replacing(try! Regex(#""streamCursor":"[0-9]+",?"#), with: "") }
            }
        }
    }

    @Test("SSE readers that join at the tail are served by the hot path, head and events as the router serves them")
    func hotSSE() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            let tail = try #require(try await hub.put(p, [jsonType], body: "[1]").header("stream-next-offset"))
            let before = try await hotResponses(hub)
            let (routed, hot) = try await twoTailReaders(hub, p, at: tail, before: before) { () async throws in
                #expect(try await hub.post(p, [jsonType], body: "[2]").status == 204)
                #expect(try await hub.post(p, [jsonType, ("Stream-Closed", "true")], body: "[3]").status == 204)
            }
            let routedHead = try #require(routed.response), hotHead = try #require(hot.response)
            #expect(comparable(hotHead.headers) == comparable(routedHead.headers))
            #expect(hotHead.headers.first(name: "transfer-encoding") == "chunked" && hotHead.headers.first(name: "content-type") == "text/event-stream")
            let events = await hot.events
            #expect(events == (await routed.events))
            #expect(events.first == #"control: {"streamNextOffset":"\#(tail)","upToDate":true}"#)
            #expect(events.last?.contains(#""streamClosed":true"#) == true)
            #expect(events.filter { $0.hasPrefix("data: ") } == ["data: [2]", "data: [3]"] || events.filter { $0.hasPrefix("data: ") } == ["data: [2,3]"])
            #expect(try await hubResponsesDelta(hub, since: before) == 3, "the hot reader and both appends")
            // The connection is kept for the next request after the stream ended.
            #expect(try await hub.get(p, "offset=-1").text == "[1,2,3]")
        }
    }

    @Test("an SSE reader the push lets go (its stream deleted) is followed by a task: the router's error event, then the end")
    func hotSSEFollowsWhenLetGo() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            let tail = try #require(try await hub.put(p, [jsonType], body: "[1]").header("stream-next-offset"))
            let before = try await hotResponses(hub)
            let (routed, hot) = try await twoTailReaders(hub, p, at: tail, before: before) { () async throws in
                #expect(try await hub.delete(p).status == 204)
            }
            let routedEvents = await routed.events, hotEvents = await hot.events
            #expect(hotEvents == routedEvents)
            #expect(hotEvents.count == 2 && hotEvents.last?.hasPrefix("error: ") == true && hotEvents.last?.contains("404") == true, "\(hotEvents)")
        }
    }

    @Test("a hot SSE reader that leaves is taken off the push at once; the others read on")
    func hotSSEReaderLeaves() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            let tail = try #require(try await hub.put(p, [jsonType], body: "[1]").header("stream-next-offset"))
            let url = hub.streamURL(p, "offset=\(tail)&live=sse")
            let before = try await hotResponses(hub)
            let routed = SSERead()
            async let routedEnded = hub.sse(url) { await routed.log.add($0); return true }
            try await hub.untilWaiting(1)
            // The hot reader stops after its first event: the client closes the connection.
            #expect(try await hub.sse(url) { _ in false } == false)
            #expect(try await hubResponsesDelta(hub, since: before) == 1, "the second reader was the hot path's")
            try await eventually { hub.liveWaiters() <= 1 }  // off the push with its connection
            #expect(try await hub.post(p, [jsonType, ("Stream-Closed", "true")], body: "[2]").status == 204)
            #expect(try await routedEnded)
            #expect(await routed.events.filter { $0.hasPrefix("data: ") } == ["data: [2]"])
            #expect(try await openSSE(hub) == 0)
        }
    }

    private func openSSE(_ hub: RunningHub) async throws -> Int {
        let text = try await hub.client.request(.GET, "/metrics").text
        let line = text.split(separator: "\n").first { $0.hasPrefix(#"hub_connections{transport="sse"} "#) }
        return (line?.split(separator: " ").last).flatMap { Double($0) }.map { Int($0) } ?? -1
    }

    @Test("the cursor's jitter: 1 to 3600 seconds, spread out")
    func cursorJitter() {
        let draws = (0..<2000).map { _ in StreamReads.jitterSeconds() }
        #expect(draws.allSatisfy { (1...3600).contains($0) })
        #expect(Set(draws).count > 1000 && draws.min()! < 200 && draws.max()! > 3400)
    }

    @Test("the hot path takes only live reads it can answer as the router would; the rest go to the router")
    func liveReadTargets() {
        let offset = "00000000000000000003"
        #expect(HotPathRouter.liveRead("/v1/stream/a/b?offset=\(offset)&live=long-poll&cursor=9")?.clientCursor == "9")
        #expect(HotPathRouter.liveRead("/v1/stream/a?live=long-poll&offset=-1")?.from.position == 0)
        #expect(HotPathRouter.liveRead("/v1/stream/a?offset=\(offset)&live=sse")?.mode == .sse)
        #expect(HotPathRouter.liveRead("/v1/stream/a?offset=\(offset)&live=long-poll")?.mode == .longPoll)
        for target in ["/v1/stream/a?offset=now&live=long-poll", "/v1/stream/a?offset=now&live=sse", "/v1/stream/a?offset=\(offset)",
                       "/v1/stream/a?offset=\(offset)&live=bogus", "/v1/stream/a?offset=\(offset)&live=sse&live=sse",
                       "/v1/stream/a?offset=\(offset)&live=long-poll&offset=\(offset)", "/v1/stream/a?offset=\(offset)&live=long-poll&token=x",
                       "/v1/stream/a?offset=bad&live=long-poll", "/v1/stream/a?offset=\(offset)&live=long%2Dpoll", "/v1/stream/a",
                       "/v1/stream/a?offset=\(offset)&live=long-poll&", "/v1/stream/x/__ds/y?offset=\(offset)&live=long-poll"] {
            #expect(HotPathRouter.liveRead(target) == nil, "\(target)")
        }
    }

    private func comparable(_ headers: HTTPHeaders, without excluded: String = "date") -> [String] {
        headers.filter { !["date", excluded].contains($0.name.lowercased()) }.map { "\($0.name.lowercased()): \($0.value)" }.sorted()
    }

    private func hotResponses(_ hub: RunningHub, token: String? = nil) async throws -> Int {
        let headers = token.map { [("Authorization", "Bearer \($0)")] } ?? []
        let text = try await hub.client.request(.GET, "/metrics", headers: headers).text
        let line = text.split(separator: "\n").first { $0.hasPrefix("hub_hot_path_responses_total ") }
        return Int(line?.split(separator: " ").last ?? "0") ?? 0
    }

    private func hubResponsesDelta(_ hub: RunningHub, since before: Int, token: String? = nil) async throws -> Int {
        try await hotResponses(hub, token: token) - before
    }
}

/// HTTP/1.1 on a plain blocking socket: what a pipelining client sends, written at once, and the responses read
/// back in order (Content-Length bodies; 204 has none).
enum RawHTTP {
    struct Response: Sendable {
        let status: Int
        let headers: [(String, String)]
        let body: String
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name }?.1 }
    }

    static func exchange(port: Int, send: String, responses count: Int) async throws -> [Response] {
        try await withCheckedThrowingContinuation { continuation in
            // Blocking calls off the cooperative pool, which the in-process hub needs.
            DispatchQueue.global().async {
                continuation.resume(with: Result { try blockingExchange(port: port, send: send, count: count) })
            }
        }
    }

    /// How a response's body is framed.
    enum Framing: Sendable {
        /// By its Content-Length (none: empty).
        case length
        /// None: the answer to a HEAD.
        case head
        /// Chunked, read to its last chunk.
        case chunked
    }

    /// Each request sent only after the answer to the one before, on one connection; and how many bytes arrived
    /// beyond the last answer.
    static func sequential(port: Int, _ requests: [(request: String, framing: Framing)]) async throws -> (responses: [Response], extra: Int) {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result {
                    let fd = try connectLoopback(port: port)
                    defer { close(fd) }
                    var reader = Reader(fd: fd)
                    var responses: [Response] = []
                    for (request, framing) in requests {
                        try send(request, to: fd)
                        responses.append(try reader.response(framing))
                    }
                    // Anything more (a body sent after a HEAD answer, say) shows up within a short wait.
                    var timeout = timeval(tv_sec: 0, tv_usec: 300_000)
                    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                    try? reader.fill()
                    return (responses, reader.buffer.count)
                })
            }
        }
    }

    static func send(_ text: String, to fd: Int32) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { break }  // a server that refuses a body may close before it was all sent
            sent += n
        }
    }

    private static func blockingExchange(port: Int, send text: String, count: Int) throws -> [Response] {
        let fd = try connectLoopback(port: port)
        defer { close(fd) }
        try send(text, to: fd)
        var reader = Reader(fd: fd)
        return try (0..<count).map { _ in try reader.response(.length) }
    }

    /// Reads responses off a blocking socket (a 60-s timeout: a bound for a failure, never waited out by a passing
    /// test, so generous enough for a loaded machine), one at a time.
    struct Reader {
        let fd: Int32
        var buffer: [UInt8] = []
        var closed = false
        var count = 0

        init(fd: Int32) {
            self.fd = fd
            var timeout = timeval(tv_sec: 60, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        mutating func fill() throws {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { return }  // a signal (another test's SIGCHLD): the caller reads again
            // A server that closes with a refused body unread resets the connection: that is a close too.
            if n == 0 || (n < 0 && errno == ECONNRESET) { closed = true; return }
            guard n > 0 else { throw TestFailure("read failed or timed out (errno \(errno)) after \(count) responses") }
            buffer += chunk[..<n]
        }

        mutating func response(_ framing: Framing) throws -> Response {
            while true {
                guard let end = RawHTTP.find(Array("\r\n\r\n".utf8), in: buffer) else {
                    if closed { throw TestFailure("closed after \(count) responses") }
                    try fill()
                    continue
                }
                let lines = String(decoding: buffer[..<end], as: UTF8.self).components(separatedBy: "\r\n")
                let status = Int(lines[0].split(separator: " ")[1]) ?? 0
                let headers = lines.dropFirst().compactMap { line -> (String, String)? in
                    guard let colon = line.firstIndex(of: ":") else { return nil }
                    return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
                }
                if case .chunked = framing {
                    buffer.removeFirst(end + 4)
                    count += 1
                    return Response(status: status, headers: headers, body: try chunkedBody())
                }
                let length = framing == .head ? 0 : Int(headers.first { $0.0.lowercased() == "content-length" }?.1 ?? "0") ?? 0
                while buffer.count < end + 4 + length {
                    if closed { throw TestFailure("closed inside a body") }
                    try fill()
                }
                count += 1
                defer { buffer.removeFirst(end + 4 + length) }
                return Response(status: status, headers: headers, body: String(decoding: buffer[(end + 4)..<(end + 4 + length)], as: UTF8.self))
            }
        }

        /// Chunks up to the last one (with no trailers), their data joined.
        private mutating func chunkedBody() throws -> String {
            var body: [UInt8] = []
            while true {
                guard let line = RawHTTP.find(Array("\r\n".utf8), in: buffer) else {
                    if closed { throw TestFailure("closed inside a chunked body") }
                    try fill()
                    continue
                }
                guard let size = Int(String(decoding: buffer[..<line], as: UTF8.self), radix: 16) else { throw TestFailure("bad chunk size") }
                while buffer.count < line + 2 + size + 2 {
                    if closed { throw TestFailure("closed inside a chunk") }
                    try fill()
                }
                body += buffer[(line + 2)..<(line + 2 + size)]
                buffer.removeFirst(line + 2 + size + 2)
                if size == 0 { return String(decoding: body, as: UTF8.self) }
            }
        }
    }

    /// Sends `request`, reads until `marker` arrived, closes the client's sending side (as a client that leaves
    /// does with its FIN), and waits for the server to close the connection. True when it did within `within`.
    static func serverClosesAfterHalfClose(port: Int, request: String, marker: String, within: Int) async throws -> Bool {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result {
                    let fd = try connectLoopback(port: port)
                    defer { close(fd) }
                    var timeout = timeval(tv_sec: within, tv_usec: 0)
                    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                    let bytes = Array(request.utf8)
                    guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { throw TestFailure("short write") }
                    var received: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 65536)
                    while find(Array(marker.utf8), in: received) == nil {
                        let n = read(fd, &chunk, chunk.count)
                        if n < 0 && errno == EINTR { continue }
                        guard n > 0 else { throw TestFailure("no \(marker) before the connection ended (errno \(errno))") }
                        received += chunk[..<n]
                    }
                    shutdown(fd, Int32(SHUT_WR))
                    while true {
                        let n = read(fd, &chunk, chunk.count)
                        if n < 0 && errno == EINTR { continue }
                        if n == 0 || (n < 0 && errno == ECONNRESET) { return true }
                        if n < 0 { return false }  // timed out: still open
                    }
                })
            }
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }
}

/// For tests whose polls wait for an append: the tests' usual 2 s deadline has passed before the append on a loaded
/// 2-core machine running every suite at once (a poll answered 204 is then a timing failure, not a wrong answer).
func patientPolls(_ config: inout HubConfiguration) { config.http.longPollTimeout = .seconds(60) }
