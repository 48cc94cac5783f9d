import NIOCore
import NIOHTTP1
import HubServer
import HubHTTP
import HubProtocol
import Foundation
import HubTestSupport
import NIOHTTP1
import Synchronization
import Testing

@Suite("Durable Streams: catch-up, ETags, long-poll, SSE")
struct ReadModeTests {
    @Test("offsets: -1 and absent mean the start, now the tail; malformed or repeated offsets are 400")
    func offsets() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            _ = try await hub.put(p, body: "ab")
            _ = try await hub.post(p, body: "cd")
            #expect(try await hub.get(p, "offset=-1").text == "abcd")
            let after = try await hub.get(p, "offset=00000000000000000001")
            #expect(after.text == "cd" && after.header("Stream-Next-Offset") == "00000000000000000002")
            let now = try await hub.get(p, "offset=now")
            #expect(now.status == 200 && now.text == "" && now.header("Stream-Next-Offset") == "00000000000000000002")
            #expect(now.header("Stream-Up-To-Date") == "true" && now.header("Cache-Control") == "no-store")
            let tail = try await hub.get(p, "offset=00000000000000000002")
            #expect(tail.status == 200 && tail.text == "" && tail.header("Stream-Next-Offset") == "00000000000000000002")
            for bad in ["offset=", "offset=-1&offset=-1", "offset=a%2Cb", "offset=a%20b", "offset=..%2Fx", "offset=%00", "offset=x%0D%0A"] {
                #expect(try await hub.get(p, bad).status == 400, "\(bad)")
            }
            #expect(try await hub.get(p, "offset=-1&unknown=1").status == 200, "unknown parameters are ignored")
        }
    }

    @Test("pagination reassembles 100 KiB byte for byte; Up-To-Date only on the last chunk")
    func pagination() async throws {
        try await withRunningHub({ $0.http.readChunkBytes = 8192 }) { hub in
            let p = uniqueStream()
            _ = try await hub.put(p, [("Content-Type", "application/octet-stream")])
            var expected = ""
            for i in 0..<100 {
                let chunk = String(repeating: String(UnicodeScalar(UInt8(65 + i % 26))), count: 1024)
                expected += chunk
                _ = try await hub.post(p, [("Content-Type", "application/octet-stream")], body: chunk)
            }
            var offset = "-1", got = "", pages = 0
            while true {
                let r = try await hub.get(p, "offset=\(offset)")
                got += r.text; pages += 1
                offset = r.header("Stream-Next-Offset")!
                if r.header("Stream-Up-To-Date") == "true" { break }
                #expect(r.header("Cache-Control")?.contains("max-age=60") == true)
            }
            #expect(got == expected && pages > 5)
        }
    }

    @Test("ETag: 304 on a match, a new tag after an append and after the close")
    func etags() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            _ = try await hub.put(p, body: "x")
            let first = try await hub.get(p)
            let tag = try #require(first.header("ETag"))
            let cached = try await hub.get(p, headers: [("If-None-Match", tag)])
            #expect(cached.status == 304 && cached.body.readableBytes == 0)
            #expect(try await hub.get(p, headers: [("If-None-Match", "\"other\"")]).status == 200)
            _ = try await hub.post(p, body: "y")
            let grown = try await hub.get(p)
            #expect(grown.header("ETag") != tag)
            _ = try await hub.post(p, [("Stream-Closed", "true")])
            #expect(try await hub.get(p).header("ETag") != grown.header("ETag"))
        }
    }

    @Test("long-poll: needs an offset, returns data at once, waits for an append, times out with 204 and a cursor")
    func longPoll() async throws {
        try await withRunningHub({ $0.http.longPollTimeout = .milliseconds(300) }) { hub in
            let p = uniqueStream()
            _ = try await hub.put(p, body: "a")
            #expect(try await hub.get(p, "live=long-poll").status == 400)
            let immediate = try await hub.get(p, "offset=-1&live=long-poll")
            #expect(immediate.status == 200 && immediate.text == "a" && immediate.header("Stream-Cursor") != nil)
            let timeout = try await hub.get(p, "offset=00000000000000000001&live=long-poll")
            #expect(timeout.status == 204 && timeout.header("Stream-Up-To-Date") == "true")
            #expect(timeout.header("Stream-Next-Offset") == "00000000000000000001" && timeout.header("Stream-Cursor") != nil)
            let cursor = timeout.header("Stream-Cursor")!
            let collapsed = try await hub.get(p, "offset=00000000000000000001&live=long-poll&cursor=\(cursor)")
            #expect(Int(collapsed.header("Stream-Cursor")!)! > Int(cursor)!, "a held cursor gets a strictly larger one")
            #expect(try await hub.get(uniqueStream(), "offset=now&live=long-poll").status == 404)
        }
    }

    @Test("long-poll wakes on an append made while it waits (no polling)")
    func longPollWakes() async throws {
        try await withRunningHub({ $0.http.longPollTimeout = .seconds(300) }) { hub in
            let p = uniqueStream()
            _ = try await hub.put(p)
            async let waiting = hub.get(p, "offset=now&live=long-poll")
            try await hub.untilWaiting()
            let start = ContinuousClock.now
            _ = try await hub.post(p, body: "n")
            let answer = try await waiting
            #expect(answer.status == 200 && answer.text == "n")
            #expect(ContinuousClock.now - start < .seconds(120), "answered by the append, not the 300 s timeout")
        }
    }

    @Test("long-poll on a closed stream at its tail answers 204 with Stream-Closed at once")
    func longPollClosed() async throws {
        // A timeout far beyond the bound below: the bound tells "at once" from "at the timeout" even on a loaded machine.
        try await withRunningHub({ $0.http.longPollTimeout = .seconds(300) }) { hub in
            let p = uniqueStream()
            _ = try await hub.put(p, [textType, ("Stream-Closed", "true")], body: "z")
            let start = ContinuousClock.now
            let r = try await hub.get(p, "offset=00000000000000000001&live=long-poll")
            #expect(r.status == 204 && r.header("Stream-Closed") == "true" && r.header("Stream-Up-To-Date") == "true")
            #expect(ContinuousClock.now - start < .seconds(120), "answered at once, not at the 300 s timeout")
        }
    }

    @Test("SSE: exact content type, backlog, live append, then append-and-close ends the response")
    func sseLive() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            _ = try await hub.put(p, body: "one\r\ntwo")
            let head = Mutex<HTTPResponseHead?>(nil)
            let log = EventLog()
            let ended = try await hub.sse(hub.streamURL(p, "offset=-1&live=sse"), onHead: { h in head.withLock { $0 = h } }) { event in
                let events = await log.add(event)
                if events.count == 2 { _ = try await hub.post(p, [textType, ("Stream-Closed", "true")], body: "three") }
                return true
            }
            #expect(ended, "the server closes the response after the final control event")
            let h = try #require(head.withLock { $0 })
            #expect(h.headers.first(name: "Content-Type") == "text/event-stream")
            #expect(h.headers.first(name: "Content-Length") == nil && h.headers.first(name: "Cache-Control")?.contains("no-cache") == true)
            #expect(h.headers.first(name: "stream-sse-data-encoding") == nil)
            let events = await log.events
            #expect(events.map(\.type) == ["data", "control", "data", "control"])
            #expect(events[0].data == "one\ntwo", "CRLF in a payload becomes separate data lines")
            #expect(events[1].data.contains(#""streamNextOffset":"00000000000000000001""#) && events[1].data.contains("streamCursor"))
            #expect(events[2].data == "three")
            #expect(events[3].data == #"{"streamNextOffset":"00000000000000000002","upToDate":true,"streamClosed":true}"#)
        }
    }

    @Test("SSE: binary streams are base64; JSON data events are arrays; offset=now on a closed stream closes at once")
    func sseEncodings() async throws {
        try await withRunningHub { hub in
            let bin = uniqueStream()
            _ = try await hub.put(bin, [("Content-Type", "application/x-protobuf"), ("Stream-Closed", "true")], body: "\u{1}\u{2}")
            let encoding = Mutex<String?>(nil)
            let log = EventLog()
            try await hub.sse(hub.streamURL(bin, "offset=-1&live=sse"), onHead: { h in encoding.withLock { $0 = h.headers.first(name: "stream-sse-data-encoding") } }) {
                _ = await log.add($0); return true
            }
            #expect(encoding.withLock { $0 } == "base64")
            #expect(await log.events.first?.data == "AQI=")

            let js = uniqueStream()
            _ = try await hub.put(js, [jsonType], body: #"[{"a":"x\ny"},2]"#)
            _ = try await hub.post(js, [("Stream-Closed", "true")])
            let jlog = EventLog()
            try await hub.sse(hub.streamURL(js, "offset=-1&live=sse")) { _ = await jlog.add($0); return true }
            #expect(await jlog.events.first?.data == #"[{"a":"x\ny"},2]"#)

            let nowLog = EventLog()
            let ended = try await hub.sse(hub.streamURL(js, "offset=now&live=sse")) { _ = await nowLog.add($0); return true }
            #expect(ended)
            #expect(await nowLog.events.map(\.type) == ["control"])
            #expect(await nowLog.events.first?.data.contains(#""upToDate":true,"streamClosed":true"#) == true)
        }
    }

    @Test("fan-out: 300 SSE subscribers (sharing their reads; pushed in slices of 16) each get every append exactly once, in order")
    func fanOut() async throws {
        try await withRunningHub({ $0.http.pushSlice = 16 }) { hub in
            let p = uniqueStream()
            _ = try await hub.put(p, [jsonType])
            // Appends land while a batch is written to the slices: later batches carry several of them.
            let subscribers = 300, messages = 30
            try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<subscribers {
                    group.addTask { try await hub.sseNumbers(p, count: messages) }
                }
                try await hub.untilWaiting(subscribers)
                for i in 0..<messages { _ = try await hub.post(p, [jsonType], body: "\(i)") }
                for try await received in group {
                    #expect(received == Array(0..<messages), "every message once, in order")
                }
            }
        }
    }

    @Test("fan-out under racing appends, one member per slice: every reader gets every message once, in stream order")
    func fanOutRacingAppends() async throws {
        try await withRunningHub({ $0.http.pushSlice = 1 }) { hub in
            let p = uniqueStream()
            _ = try await hub.put(p, [jsonType])
            // A batch's walk over 40 readers takes 40 loop jobs; four publishers' commits land meanwhile, so batches
            // carry several messages from several publishers, in commit order.
            let subscribers = 40, publishers = 4, each = 20
            let messages = publishers * each
            try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<subscribers {
                    group.addTask { try await hub.sseNumbers(p, count: messages) }
                }
                try await hub.untilWaiting(subscribers)
                try await withThrowingTaskGroup(of: Void.self) { publishing in
                    for w in 0..<publishers {
                        publishing.addTask { for i in 0..<each { _ = try await hub.post(p, [jsonType], body: "\(w * each + i)") } }
                    }
                    try await publishing.waitForAll()
                }
                let stored = try await hub.get(p, "offset=-1")
                let order = try #require(try JSONSerialization.jsonObject(with: Data(stored.text.utf8)) as? [Int])
                #expect(order.count == messages)
                for try await received in group {
                    #expect(received == order, "every message once, in the stream's order")
                }
            }
        }
    }

    @Test("SSE readers parked at the tail: pushed batches with their control events, and the close ends them")
    func parkedSSE() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            _ = try await hub.put(p, [jsonType])
            // Five readers of p end with the close, each having seen every batch and a control event after each.
            try await withThrowingTaskGroup(of: [SSEEvent].self) { group in
                for _ in 0..<5 {
                    group.addTask {
                        let log = EventLog()
                        let ended = try await hub.sse(hub.streamURL(p, "offset=-1&live=sse")) { _ = await log.add($0); return true }
                        #expect(ended, "the close ends the response")
                        return await log.events
                    }
                }
                try await hub.untilWaiting(5)
                _ = try await hub.post(p, [jsonType], body: "1")
                _ = try await hub.post(p, [jsonType], body: "[2,3]")
                _ = try await hub.post(p, [("Stream-Closed", "true")])
                for try await events in group {
                    #expect(events.filter { $0.type == "data" }.map(\.data).joined(separator: ",") == "[1],[2,3]")
                    let controls = events.filter { $0.type == "control" }.compactMap {
                        (try? JSONSerialization.jsonObject(with: Data($0.data.utf8))) as? [String: Any]
                    }
                    let offsets = controls.compactMap { $0["streamNextOffset"] as? String }
                    #expect(offsets == ["00000000000000000000", "00000000000000000001", "00000000000000000003", "00000000000000000003"])
                    #expect(controls.last?["streamClosed"] as? Bool == true && controls.dropLast().allSatisfy { $0["streamCursor"] != nil })
                }
            }
        }
    }

    // Each on its own hub, neither bound to the clock: the whole suite starting at once on 2 cores can hold the
    // cooperative pool for seconds, which a keep-alive count inside a short maximum duration cannot survive.
    @Test("an idle SSE reader gets keep-alive comments")
    func sseKeepAlives() async throws {
        try await withRunningHub({ $0.http.sseKeepAlive = .milliseconds(100) }) { hub in
            let q = uniqueStream()
            _ = try await hub.put(q, [jsonType])
            let keepAlives = Mutex(0)
            try await hub.client.stream(hub.streamURL(q, "offset=now&live=sse"), onHead: { _ in }) { chunk in
                let seen = keepAlives.withLock { count in
                    count += String(buffer: chunk).components(separatedBy: ": keep-alive").count - 1
                    return count
                }
                return seen < 3  // then the client leaves
            }
            #expect(keepAlives.withLock { $0 } >= 3)
        }
    }

    @Test("an idle SSE response ends at the max duration")
    func sseMaxDuration() async throws {
        try await withRunningHub({ $0.http.sseMaxDuration = .seconds(2) }) { hub in
            let q = uniqueStream()
            _ = try await hub.put(q, [jsonType])
            let started = ContinuousClock.now
            let ended = try await hub.sse(hub.streamURL(q, "offset=now&live=sse")) { _ in true }
            #expect(ended, "the server ended it")
            #expect(ContinuousClock.now - started >= .milliseconds(1500))
        }
    }

    @Test("SSE needs an offset and a stream")
    func sseErrors() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            _ = try await hub.put(p)
            #expect(try await hub.get(p, "live=sse").status == 400)
            #expect(try await hub.get(uniqueStream(), "offset=-1&live=sse").status == 404)
            #expect(try await hub.get(p, "offset=-1&live=bogus").status == 400)
        }
    }

    @Test("a client that closes its side ends its SSE response at once, parked at the tail or not")
    func sseEndsWhenClientLeaves() async throws {
        // Keep-alives far apart: the connection must close because the client left, not at a failed write.
        try await withRunningHub({ $0.http.sseKeepAlive = .seconds(120) }) { hub in
            let p = uniqueStream()
            _ = try await hub.put(p, [jsonType], body: "[1]")
            let request = "GET /v1/stream/\(p)?offset=-1&live=sse HTTP/1.1\r\nHost: localhost\r\n\r\n"
            let closed = try await RawHTTP.serverClosesAfterHalfClose(port: hub.port, request: request, marker: "upToDate", within: 20)
            #expect(closed, "the server closed the connection after the client's FIN")
        }
    }

    @Test("graceful shutdown ends an open SSE response cleanly")
    func shutdownEndsSSE() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            _ = try await hub.put(p, body: "x")
            let ended = try await hub.sse(hub.streamURL(p, "offset=-1&live=sse")) { event in
                if event.type == "control" { await hub.shutdown() }
                return true
            }
            #expect(ended, "the response ended from the server side")
        }
    }
}

extension RunningHub {
    /// An SSE read of JSON stream `p` from its start, until its data events carried `count` numbers: the numbers.
    fileprivate func sseNumbers(_ p: String, count: Int) async throws -> [Int] {
        @Sendable func numbers(_ events: [SSEEvent]) -> [Int] {
            events.flatMap { (try? JSONSerialization.jsonObject(with: Data($0.data.utf8)) as? [Int]) ?? [] }
        }
        let seen = EventLog()
        try await sse(streamURL(p, "offset=-1&live=sse")) { event in
            guard event.type == "data" else { return true }
            return numbers(await seen.add(event)).count < count
        }
        return numbers(await seen.events)
    }
}
