import HubTestSupport
import Testing

@Suite("Durable Streams: JSON mode")
struct JSONModeTests {
    @Test("arrays flatten one level; reads return one array; [] creates an empty stream but is refused on POST")
    func flatten() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            #expect(try await hub.put(p, [jsonType], body: "[]").status == 201)
            #expect(try await hub.get(p).text == "[]")
            #expect(try await hub.post(p, [jsonType], body: #"{"a":1}"#).status == 204)
            #expect(try await hub.post(p, [jsonType], body: #"[{"b":2},[3,4]]"#).header("Stream-Next-Offset") == "00000000000000000003")
            #expect(try await hub.post(p, [jsonType], body: "[[[5]]]").status == 204)
            #expect(try await hub.post(p, [jsonType], body: "7").status == 204)
            #expect(try await hub.post(p, [jsonType], body: "[]").status == 400)
            #expect(try await hub.post(p, [jsonType], body: "{bad").status == 400)
            let read = try await hub.get(p)
            #expect(read.text == #"[{"a":1},{"b":2},[3,4],[[5]],7]"#)
            #expect(read.header("Content-Type") == "application/json")
            #expect(try await hub.get(p, "offset=now").text == "[]")
            #expect(try await hub.get(p, "offset=00000000000000000003").text == "[[[5]],7]")
        }
    }
}
