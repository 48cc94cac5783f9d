import HubTestSupport
import Testing

/// Forks as a client of the reference server makes them (issue 15): the reference zero offset
/// `0000000000000000_0000000000000000` as a fork point and a read offset, and sub-offsets inside an append, on both
/// stores (the fork's prefix is materialized by the store).
@Suite("Durable Streams: forks at the reference zero offset and sub-offsets")
struct ForkOffsetTests {
    static let zero = "0000000000000000_0000000000000000"

    @Test("on SQLite")
    func sqlite() async throws {
        try await withRunningHub { hub in try await Self.checks(hub.client) }
    }

    @Test("on PostgreSQL")
    func postgres() async throws {
        let url = try await PostgresServer.shared.freshDatabase()
        let directory = try TemporaryDirectory()
        let node = try await HubdProcess(dataDirectory: directory.path, arguments: ["--auth", "open", "--store", "postgres"],
                                         environment: ["HUB_POSTGRES_URL": url])
        do {
            try await node.untilReady()
            try await Self.checks(node.client)
        } catch {
            _ = await node.terminate()
            throw error
        }
        #expect(await node.terminate() == 0)
    }

    static func checks(_ client: TestHTTPClient) async throws {
        func url(_ path: String, _ query: String = "") -> String { "/v1/stream/\(path)" + (query.isEmpty ? "" : "?\(query)") }
        func put(_ path: String, _ headers: [(String, String)], body: String? = nil) async throws -> TestResponse {
            try await client.request(.PUT, url(path), headers: headers, body: body)
        }
        func post(_ path: String, _ headers: [(String, String)], body: String? = nil) async throws -> TestResponse {
            try await client.request(.POST, url(path), headers: headers, body: body)
        }
        func read(_ path: String, from offset: String = "-1") async throws -> TestResponse {
            try await client.request(.GET, url(path, "offset=\(offset)"))
        }
        func fork(_ source: String, at offset: String, sub: String? = nil) -> [(String, String)] {
            [("Stream-Forked-From", "/v1/stream/\(source)"), ("Stream-Fork-Offset", offset)] + (sub.map { [("Stream-Fork-Sub-Offset", $0)] } ?? [])
        }

        // A binary source: one append of "hello", then " world" and "!".
        let bin = uniqueStream()
        #expect(try await put(bin, [("Content-Type", "application/octet-stream")], body: "hello").status == 201)
        _ = try await post(bin, [("Content-Type", "application/octet-stream")], body: " world")
        _ = try await post(bin, [("Content-Type", "application/octet-stream")], body: "!")

        // The reference zero reads from the start, like -1.
        #expect(try await read(bin, from: zero).text == "hello world!")

        // Fork at zero: empty, its next offset is the start and readable, and it inherits the content type.
        let empty = uniqueStream()
        let created = try await put(empty, fork(bin, at: zero))
        #expect(created.status == 201 && created.header("Content-Type") == "application/octet-stream")
        let emptyRead = try await read(empty)
        #expect(emptyRead.text == "" && emptyRead.header("Stream-Up-To-Date") == "true")
        let next = try #require(emptyRead.header("Stream-Next-Offset"))
        #expect(try await read(empty, from: next).status == 200)
        #expect(try await put(empty, fork(bin, at: zero, sub: "0")).status == 200, "Sub-Offset 0 is the same fork as none")

        // Binary sub-offsets inside the first append, up to the whole message.
        for (sub, expected) in [("0", ""), ("1", "h"), ("3", "hel"), ("5", "hello")] {
            let cut = uniqueStream()
            #expect(try await put(cut, fork(bin, at: zero, sub: sub)).status == 201, "sub-offset \(sub)")
            #expect(try await read(cut).text == expected, "sub-offset \(sub)")
            let next = try #require(try await read(cut).header("Stream-Next-Offset"))
            #expect(try await read(cut, from: next).text == "", "the fork's next offset is readable")
        }
        #expect(try await put(uniqueStream(), fork(bin, at: zero, sub: "6")).status == 400, "past the message")
        #expect(try await put(uniqueStream(), fork(bin, at: zero, sub: "x")).status == 400, "malformed")
        #expect(try await put(uniqueStream(), fork(bin, at: zero, sub: "-1")).status == 400, "negative")
        #expect(try await put(uniqueStream(), fork(bin, at: "0000000000000000_0000000000000001")).status == 400,
                "only the exact zero literal is accepted")
        #expect(try await read(bin, from: "0000000000000000_0000000000000001").status == 400)

        // Re-creating with the same sub-offset is idempotent; another one conflicts.
        let again = uniqueStream()
        #expect(try await put(again, fork(bin, at: zero, sub: "3")).status == 201)
        #expect(try await put(again, fork(bin, at: zero, sub: "3")).status == 200)
        #expect(try await put(again, fork(bin, at: zero, sub: "4")).status == 409)

        // An initial body and later appends land after the materialized prefix.
        let grown = uniqueStream()
        #expect(try await put(grown, fork(bin, at: zero, sub: "3") + [("Content-Type", "application/octet-stream")], body: "p").status == 201)
        #expect(try await post(grown, [("Content-Type", "application/octet-stream")], body: "!").status == 204)
        #expect(try await read(grown).text == "help!")

        // Sub-offsets compose across chained forks: a cut of a cut.
        let chained = uniqueStream()
        #expect(try await put(chained, fork(grown, at: zero, sub: "2")).status == 201)
        #expect(try await read(chained).text == "he")
        let later = uniqueStream()
        #expect(try await put(later, fork(grown, at: "00000000000000000001", sub: "1")).status == 201, "the prefix, then one byte of the next append")
        #expect(try await read(later).text == "help")

        // A fork at every message boundary reads exactly the source's prefix.
        let prefixes = ["", "hello", "hello world", "hello world!"]
        for (position, prefix) in prefixes.enumerated() {
            let at = position == 0 ? zero : String(repeating: "0", count: 20 - String(position).count) + String(position)
            let boundary = uniqueStream()
            #expect(try await put(boundary, fork(bin, at: at)).status == 201)
            #expect(try await read(boundary).text == prefix, "fork at \(at)")
        }

        // JSON: sub-offsets count the flattened messages of the append, up to all of them.
        let json = uniqueStream()
        #expect(try await put(json, [jsonType], body: #"[{"a":1},{"b":2},{"c":3}]"#).status == 201)
        _ = try await post(json, [jsonType], body: #"{"d":4}"#)
        for (sub, expected) in [("1", #"[{"a":1}]"#), ("2", #"[{"a":1},{"b":2}]"#), ("3", #"[{"a":1},{"b":2},{"c":3}]"#)] {
            let cut = uniqueStream()
            #expect(try await put(cut, fork(json, at: zero, sub: sub)).status == 201, "JSON sub-offset \(sub)")
            #expect(try await read(cut).text == expected, "JSON sub-offset \(sub)")
        }
        #expect(try await put(uniqueStream(), fork(json, at: zero, sub: "4")).status == 400, "past the append's messages")

        // Producer state does not cross a sub-offset boundary (binary and JSON).
        for (type, body) in [("application/octet-stream", "abc"), ("application/json", #"[1,2,3]"#)] {
            let source = uniqueStream()
            _ = try await put(source, [("Content-Type", type)])
            let producer = [("Content-Type", type), ("Producer-Id", "w"), ("Producer-Epoch", "0"), ("Producer-Seq", "0")]
            #expect(try await post(source, producer, body: body).status == 200)
            let cut = uniqueStream()
            #expect(try await put(cut, fork(source, at: zero, sub: "1")).status == 201)
            #expect(try await post(cut, producer, body: body).status == 200, "\(type): seq 0 is new on the fork, not a duplicate")
        }

        // A closed source can be forked at a sub-offset; the fork is open.
        let closed = uniqueStream()
        _ = try await put(closed, [("Content-Type", "application/octet-stream")], body: "xyz")
        _ = try await post(closed, [("Stream-Closed", "true")])
        let ofClosed = uniqueStream()
        #expect(try await put(ofClosed, fork(closed, at: zero, sub: "2")).status == 201)
        #expect(try await read(ofClosed).text == "xy")
        #expect(try await post(ofClosed, [("Content-Type", "application/octet-stream")], body: "!").status == 204)
    }
}
