import HubTestSupport
import Testing

@Suite("Durable Streams: idempotent producers and forks")
struct ProducerAndForkTests {
    func producer(_ epoch: Int, _ seq: Int, _ id: String = "w1") -> [(String, String)] {
        [textType, ("Producer-Id", id), ("Producer-Epoch", String(epoch)), ("Producer-Seq", String(seq))]
    }

    @Test("producer decision table over HTTP")
    func producers() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            _ = try await hub.put(p)
            let first = try await hub.post(p, producer(0, 0), body: "a")
            #expect(first.status == 200 && first.header("Producer-Epoch") == "0" && first.header("Producer-Seq") == "0")
            let dup = try await hub.post(p, producer(0, 0) + [("Stream-Seq", "1")], body: "a")
            #expect(dup.status == 204 && dup.header("Producer-Seq") == "0")
            let gap = try await hub.post(p, producer(0, 5), body: "x")
            #expect(gap.status == 409 && gap.header("Producer-Expected-Seq") == "1" && gap.header("Producer-Received-Seq") == "5")
            #expect(try await hub.post(p, producer(1, 1), body: "x").status == 400)
            #expect(try await hub.post(p, producer(1, 0), body: "b").status == 200)
            let stale = try await hub.post(p, producer(0, 1), body: "x")
            #expect(stale.status == 403 && stale.header("Producer-Epoch") == "1")
            #expect(try await hub.post(p, [textType, ("Producer-Id", "w1"), ("Producer-Epoch", "1")], body: "x").status == 400)
            #expect(try await hub.post(p, [textType, ("Producer-Id", "w1"), ("Producer-Epoch", "1e3"), ("Producer-Seq", "0")], body: "x").status == 400)
            #expect(try await hub.post(p, producer(0, 0, "w2"), body: "c").status == 200, "producers are independent")
            let close = try await hub.post(p, producer(1, 1) + [("Stream-Closed", "true")], body: "d")
            #expect(close.status == 200 && close.header("Stream-Closed") == "true")
            let retry = try await hub.post(p, producer(1, 1) + [("Stream-Closed", "true")], body: "other")
            #expect(retry.status == 204 && retry.header("Stream-Closed") == "true")
            #expect(try await hub.post(p, producer(1, 2) + [("Stream-Closed", "true")], body: "e").status == 409)
            #expect(try await hub.post(p, producer(0, 9), body: "e").status == 403)
            #expect(try await hub.get(p).text == "abcd")

            let q = uniqueStream()
            _ = try await hub.put(q)
            _ = try await hub.post(q, producer(0, 0), body: "m")
            let closeOnly = try await hub.post(q, [("Producer-Id", "w1"), ("Producer-Epoch", "0"), ("Producer-Seq", "1"), ("Stream-Closed", "true")])
            #expect(closeOnly.status == 204 && closeOnly.header("Producer-Seq") == "1" && closeOnly.header("Stream-Closed") == "true",
                    "close-only stores nothing: 204, but it still advances the producer")
            let closeOnlyRetry = try await hub.post(q, [("Producer-Id", "w1"), ("Producer-Epoch", "0"), ("Producer-Seq", "1"), ("Stream-Closed", "true")])
            #expect(closeOnlyRetry.status == 204 && closeOnlyRetry.header("Stream-Closed") == "true")
        }
    }

    @Test("forks: inherit the prefix and type, never see later source appends, sub-offsets cut")
    func forks() async throws {
        try await withRunningHub { hub in
            let src = uniqueStream(), fork = uniqueStream(), cut = uniqueStream()
            _ = try await hub.put(src, body: "hello")
            let from = [("Stream-Forked-From", "/v1/stream/\(src)")]
            let created = try await hub.put(fork, from)
            #expect(created.status == 201 && created.header("Content-Type") == "text/plain")
            #expect(created.header("Stream-Forked-From") == nil, "fork headers are never echoed")
            #expect(try await hub.put(fork, from).status == 200, "same fork again is idempotent")
            _ = try await hub.post(src, body: " world")
            _ = try await hub.post(fork, body: "!")
            #expect(try await hub.get(fork).text == "hello!")
            #expect(try await hub.put(cut, [textType] + from + [("Stream-Fork-Offset", "00000000000000000000"), ("Stream-Fork-Sub-Offset", "3")], body: "p").status == 201)
            #expect(try await hub.get(cut).text == "help")
            #expect(try await hub.put(uniqueStream(), [jsonType] + from).status == 409)
            #expect(try await hub.put(uniqueStream(), [("Stream-Forked-From", "/v1/stream/\(uniqueStream())")]).status == 404)
            #expect(try await hub.put(uniqueStream(), from + [("Stream-Fork-Offset", "00000000000000000099")]).status == 400)
            #expect(try await hub.put(uniqueStream(), from + [("Stream-Fork-Sub-Offset", "1")]).status == 400)

            #expect(try await hub.delete(src).status == 204)
            for status in [try await hub.get(src).status, try await hub.head(src).status, try await hub.post(src, body: "x").status,
                           try await hub.delete(src).status] {
                #expect(status == 410)
            }
            #expect(try await hub.put(src).status == 409)
            #expect(try await hub.put(uniqueStream(), from).status == 409, "a soft-deleted source cannot be forked")
            #expect(try await hub.get(fork).text == "hello!")
            _ = try await hub.delete(fork)
            _ = try await hub.delete(cut)
            #expect(try await hub.get(src).status == 404, "the last fork's deletion collects the source")
        }
    }
}
