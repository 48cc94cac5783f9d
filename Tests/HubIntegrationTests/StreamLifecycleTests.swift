import NIOCore
import NIOHTTP1
import HubServer
import HubHTTP
import HubTestSupport
import Testing

@Suite("Durable Streams: create, append, read, head, delete")
struct StreamLifecycleTests {
    @Test("PUT creates (201, Location, type, offset), repeats idempotently, conflicts on a different config")
    func create() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            let created = try await hub.put(p, body: "first")
            #expect(created.status == 201)
            #expect(created.header("Content-Type") == "text/plain")
            #expect(created.header("Stream-Next-Offset") == "00000000000000000001")
            #expect(created.header("Location") == "http://127.0.0.1:\(hub.port)/v1/stream/\(p)")
            #expect(created.header("X-Content-Type-Options") == "nosniff")
            let again = try await hub.put(p, body: "first")
            #expect(again.status == 200 && again.header("Stream-Next-Offset") == "00000000000000000001")
            #expect(try await hub.put(p, [jsonType]).status == 409)
            #expect(try await hub.put(p, [textType, ("Stream-Closed", "true")]).status == 409)
            #expect(try await hub.get(p).text == "first")
            let defaulted = try await hub.put(uniqueStream(), [])
            #expect(defaulted.status == 201 && defaulted.header("Content-Type") == "application/octet-stream")
        }
    }

    @Test("PUT validates TTL and Expires-At")
    func createHeaders() async throws {
        try await withRunningHub { hub in
            for bad in ["+3600", "03600", "3600.0", "3.6e3", "-1", "abc"] {
                #expect(try await hub.put(uniqueStream(), [textType, ("Stream-TTL", bad)]).status == 400, "TTL \(bad)")
            }
            #expect(try await hub.put(uniqueStream(), [textType, ("Stream-Expires-At", "soon")]).status == 400)
            #expect(try await hub.put(uniqueStream(), [textType, ("Stream-TTL", "60"), ("Stream-Expires-At", "2099-01-01T00:00:00Z")]).status == 400)
            let p = uniqueStream()
            #expect(try await hub.put(p, [textType, ("Stream-Expires-At", "2099-01-01T00:00:00+00:00")]).status == 201)
            #expect(try await hub.put(p, [textType, ("Stream-Expires-At", "2099-01-01T00:00:00Z")]).status == 200, "same instant, other spelling")
            let head = try await hub.head(p)
            #expect(head.header("Stream-Expires-At") == "2099-01-01T00:00:00Z")
            let t = uniqueStream()
            _ = try await hub.put(t, [textType, ("Stream-TTL", "3600")])
            #expect(try await hub.head(t).header("Stream-TTL") == "3600")
        }
    }

    @Test("POST appends (204 + next offset) and refuses bad requests with the protocol's codes")
    func append() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            _ = try await hub.put(p)
            let ok = try await hub.post(p, body: "a")
            #expect(ok.status == 204 && ok.header("Stream-Next-Offset") == "00000000000000000001")
            #expect(try await hub.post(p, [("Content-Type", "TEXT/plain; charset=utf-8")], body: "b").status == 204)
            #expect(try await hub.post(p, [], body: "c").status == 400, "missing Content-Type")
            #expect(try await hub.post(p, [textType]).status == 400, "empty body")
            #expect(try await hub.post(p, [jsonType], body: "1").status == 409, "type mismatch")
            #expect(try await hub.post(uniqueStream(), body: "x").status == 404)
            let seq1 = try await hub.post(p, [textType, ("Stream-Seq", "09")], body: "d")
            #expect(seq1.status == 204)
            #expect(try await hub.post(p, [textType, ("Stream-Seq", "10")], body: "e").status == 204)
            #expect(try await hub.post(p, [textType, ("Stream-Seq", "10")], body: "f").status == 409)
            #expect(try await hub.get(p).text == "abde")
        }
    }

    @Test("closing: append-and-close, close-only is idempotent, then 409 with the final offset")
    func close() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            _ = try await hub.put(p)
            let closed = try await hub.post(p, [textType, ("Stream-Closed", "true")], body: "last")
            #expect(closed.status == 204 && closed.header("Stream-Closed") == "true")
            let again = try await hub.post(p, [("Stream-Closed", "true")])
            #expect(again.status == 204 && again.header("Stream-Closed") == "true" && again.header("Stream-Next-Offset") == "00000000000000000001")
            let refused = try await hub.post(p, body: "more")
            #expect(refused.status == 409 && refused.header("Stream-Closed") == "true" && refused.header("Stream-Next-Offset") == "00000000000000000001")
            let read = try await hub.get(p)
            #expect(read.text == "last" && read.header("Stream-Closed") == "true")
            #expect(try await hub.head(p).header("Stream-Closed") == "true")
            #expect(try await hub.post(uniqueStream(), [("Stream-Closed", "true")]).status == 404)
            let createdClosed = uniqueStream()
            #expect(try await hub.put(createdClosed, [textType, ("Stream-Closed", "true")], body: "all").status == 201)
            #expect(try await hub.put(createdClosed, [textType, ("Stream-Closed", "true")]).status == 200)
            #expect(try await hub.get(createdClosed).text == "all")
            #expect(try await hub.delete(createdClosed).status == 204)
            #expect(try await hub.get(createdClosed).status == 404)
        }
    }

    @Test("HEAD: metadata, no-store, no body; DELETE: 204 then 404; re-created paths start empty")
    func headAndDelete() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            _ = try await hub.put(p, body: "old data")
            let head = try await hub.head(p)
            #expect(head.status == 200 && head.header("Cache-Control") == "no-store" && head.body.readableBytes == 0)
            #expect(head.header("Stream-Next-Offset") == "00000000000000000001" && head.header("Stream-Closed") == nil)
            #expect(try await hub.delete(p).status == 204)
            #expect(try await hub.delete(p).status == 404)
            #expect(try await hub.head(p).status == 404)
            #expect(try await hub.put(p, body: "new data").status == 201)
            let read = try await hub.get(p)
            #expect(read.text == "new data" && read.header("Stream-Up-To-Date") == "true")
        }
    }

    @Test("expired streams answer 404 everywhere and can be created again")
    func ttlExpiry() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            _ = try await hub.put(p, [textType, ("Stream-TTL", "0")], body: "gone")
            #expect(try await hub.get(p).status == 404)
            #expect(try await hub.head(p).status == 404)
            #expect(try await hub.post(p, body: "x").status == 404)
            #expect(try await hub.put(p).status == 201)
            let q = uniqueStream()
            _ = try await hub.put(q, [textType, ("Stream-Expires-At", "2000-01-01T00:00:00Z")])
            #expect(try await hub.get(q).status == 404)
        }
    }

    @Test("bad paths, reserved __ds, oversized bodies, problem+json bodies")
    func badInput() async throws {
        try await withRunningHub({ $0.http.maxBodyBytes = 4096 }) { hub in
            let bad = try await hub.put("Upper/case")
            #expect(bad.status == 400 && bad.header("Content-Type") == "application/problem+json")
            #expect(bad.text.contains(#""code":"invalid-stream-path""#))
            #expect(try await hub.get("__ds/subscriptions/x").status == 404)
            #expect(try await hub.put("a/../b").status == 400)
            #expect(try await hub.put("a%2Fb").status == 400, "an encoded slash is refused, not reinterpreted")
            let patch = try await hub.client.request(.PATCH, hub.streamURL("a"))
            #expect(patch.status == 405 && patch.header("Allow")?.contains("POST") == true)
            let p = uniqueStream()
            _ = try await hub.put(p)
            let big = try await hub.post(p, body: String(repeating: "x", count: 5000))
            #expect(big.status == 413 && big.header("X-Content-Type-Options") == "nosniff")
            #expect(try await hub.get(p).text == "", "a refused body stores nothing")
            let missing = try await hub.get(uniqueStream())
            #expect(missing.status == 404 && missing.text.contains(#""code":"stream-not-found""#))
            #expect(try await hub.client.request(.GET, "/healthz").status == 200)
            #expect(try await hub.client.request(.GET, "/readyz").status == 200)
        }
    }
}
