import Foundation
import HubProtocol
import HubCore
import NIOCore
import Testing

@testable import HubProtocol

@Suite("Offsets and read starts")
struct OffsetTests {
    @Test("wire form is 20 zero-padded digits and sorts like the number")
    func wireForm() throws {
        #expect(Offset(0).wire == "00000000000000000000")
        #expect(Offset(42).wire == "00000000000000000042")
        #expect(Offset(UInt64.max).wire == "18446744073709551615")
        #expect(Offset(9).wire < Offset(10).wire)
        #expect(Offset(wire: "00000000000000000042") == Offset(42))
        #expect(Offset(wire: "0000000000000000_0000000000000000") == .start, "the reference server's zero")
        #expect(try ReadStart.parse(["0000000000000000_0000000000000000"], required: true) == .after(.start))
    }

    @Test("malformed offsets are refused", arguments: ["", "42", "-1", "now", "0000000000000000004a", "000000000000000000042",
                                                      "0000000000000000000,", "00000000000000000/00", "99999999999999999999",
                                                      "0000000000000000_0000000000000001", "0000000000000001_0000000000000000",
                                                      "0000000000000000-0000000000000000", "000000000000000_00000000000000000"])
    func malformed(_ text: String) {
        #expect(Offset(wire: text) == nil)
    }

    @Test("offset query: sentinels, repeats, required")
    func readStart() throws {
        #expect(try ReadStart.parse([], required: false) == .beginning)
        #expect(try ReadStart.parse(["-1"], required: true) == .beginning)
        #expect(try ReadStart.parse(["now"], required: true) == .now)
        #expect(try ReadStart.parse(["00000000000000000007"], required: true) == .after(Offset(7)))
        #expect(throws: ProtocolError.missingParameter("offset")) { try ReadStart.parse([], required: true) }
        #expect(throws: ProtocolError.repeatedParameter("offset")) { try ReadStart.parse(["-1", "-1"], required: false) }
        #expect(throws: ProtocolError.invalidOffset("")) { try ReadStart.parse([""], required: false) }
        for bad in ["a,b", "a b", "../x", "x\u{0}", "x\r\n", "/"] {
            #expect(throws: ProtocolError.self) { try ReadStart.parse([bad], required: false) }
        }
    }
}

@Suite("SSE framing")
struct SSEFramingTests {
    func frame(_ type: String?, _ data: String) -> String {
        var out = ByteBuffer()
        SSE.writeEvent(type: type, data: ByteBuffer(string: data), into: &out)
        return String(buffer: out)
    }

    @Test("CR, LF and CRLF each start a new data line, so payloads cannot inject fields")
    func lineBreaks() {
        #expect(frame("data", "a\r\nid: 99\rb\nc") == "event: data\ndata:a\ndata:id: 99\ndata:b\ndata:c\n\n")
        #expect(frame(nil, "") == "data:\n\n")
        #expect(frame("data", "\n") == "event: data\ndata:\ndata:\n\n")
        #expect(frame("data", "x\r") == "event: data\ndata:x\ndata:\n\n")
        #expect(frame("data", "\r\n\r\nevent: control") == "event: data\ndata:\ndata:\ndata:event: control\n\n")
    }

    @Test("a line starting with a space keeps it: one space after the colon is the one parsers strip")
    func leadingSpace() {
        #expect(frame("data", " x\n  y") == "event: data\ndata:  x\ndata:   y\n\n")
        var parser = SSEParserForTests()
        #expect(parser.parse(frame("data", " x\n  y")) == [" x", "  y"])
    }

    @Test("control events carry camelCase fields, cursor only while open")
    func control() {
        var out = ByteBuffer()
        DSEvents.writeControl(next: Offset(3), cursor: "77", upToDate: true, closed: false, into: &out)
        #expect(String(buffer: out) == "event: control\ndata:{\"streamNextOffset\":\"00000000000000000003\",\"streamCursor\":\"77\",\"upToDate\":true}\n\n")
        out.clear()
        DSEvents.writeControl(next: Offset(3), cursor: "77", upToDate: true, closed: true, into: &out)
        #expect(String(buffer: out) == "event: control\ndata:{\"streamNextOffset\":\"00000000000000000003\",\"upToDate\":true,\"streamClosed\":true}\n\n")
    }

    @Test("binary streams are sent as base64, text and JSON as is")
    func dataEncoding() {
        let records = [StoredRecord(offset: Offset(1), seq: 1, timestampMilliseconds: 0, type: nil, body: ByteBuffer(bytes: [0, 1, 2, 0xFF]))]
        var out = ByteBuffer()
        DSEvents.writeData(records, contentType: .octetStream, into: &out)
        #expect(String(buffer: out) == "event: data\ndata:AAEC/w==\n\n")
        out.clear()
        let json = [StoredRecord(offset: Offset(1), seq: 1, timestampMilliseconds: 0, type: nil, body: ByteBuffer(string: "{\"a\":\"x\\ny\"}")),
                    StoredRecord(offset: Offset(2), seq: 2, timestampMilliseconds: 0, type: nil, body: ByteBuffer(string: "2"))]
        DSEvents.writeData(json, contentType: ContentType(validating: "application/json")!, into: &out)
        #expect(String(buffer: out) == "event: data\ndata:[{\"a\":\"x\\ny\"},2]\n\n")
    }

    @Test("base64 matches RFC 4648 test vectors")
    func base64() {
        let vectors = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (input, expected) in vectors {
            #expect(String(buffer: Base64.encode(ByteBuffer(string: input))) == expected)
        }
    }
}

@Suite("JSON mode flattening")
struct JSONFlatteningTests {
    func flatten(_ text: String, allowEmpty: Bool = false) throws -> [String] {
        try JSONMessages.flatten(ByteBuffer(string: text), allowEmptyArray: allowEmpty).map { String(buffer: $0) }
    }

    @Test("arrays flatten exactly one level, keeping each message's bytes")
    func oneLevel() throws {
        #expect(try flatten(#"{"a":1}"#) == [#"{"a":1}"#])
        #expect(try flatten(#"[{"a":1},{"b":2}]"#) == [#"{"a":1}"#, #"{"b":2}"#])
        #expect(try flatten("[[1,2],[3,4]]") == ["[1,2]", "[3,4]"])
        #expect(try flatten("[[[1,2,3]]]") == ["[[1,2,3]]"])
        #expect(try flatten(" [ 1 , \"two\" ,null,true, false, -0.5e+3 ] ") == ["1", "\"two\"", "null", "true", "false", "-0.5e+3"])
        #expect(try flatten("\"just a string\"") == ["\"just a string\""])
        #expect(try flatten("[]", allowEmpty: true) == [])
    }

    @Test("invalid JSON and an empty array on append are refused",
          arguments: ["", " ", "[", "[1,]", "{\"a\":}", "{a:1}", "01", "1.", "tru", "\"\u{01}\"", "[1] 2", "\"\\x\"", "NaN", "{\"a\":1,}"])
    func invalid(_ text: String) {
        #expect(throws: ProtocolError.self) { try flatten(text) }
    }

    @Test("UTF-8: multibyte characters keep their bytes; broken sequences are refused, in strings and out of them")
    func utf8() throws {
        func flattenBytes(_ bytes: [UInt8]) throws -> [[UInt8]] {
            try JSONMessages.flatten(ByteBuffer(bytes: bytes), allowEmptyArray: false).map { Array($0.readableBytesView) }
        }
        let text = #"[{"name":"Zoë","sign":"€","clef":"𝄞"},"日本"]"#
        #expect(try flatten(text) == [#"{"name":"Zoë","sign":"€","clef":"𝄞"}"#, #""日本""#])
        let broken: [[UInt8]] = [
            [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF0, 0x8F, 0xBF, 0xBF],
            [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFF], [0xE2, 0x82], [0xF0, 0x9D, 0x84], [0xC3, 0x41],
        ]
        for sequence in broken {
            #expect(throws: ProtocolError.self, "\(sequence) in a string") { try flattenBytes([0x22] + sequence + [0x22]) }
            #expect(throws: ProtocolError.self, "\(sequence) outside a string") { try flattenBytes([0x5B, 0x31, 0x2C] + sequence + [0x5D]) }
        }
        // Against the standard library's validator: every two-byte sequence of non-ASCII bytes, and a fixed sample of
        // longer ones mixing them with ASCII (so truncated sequences followed by more text are covered too).
        var samples: [[UInt8]] = []
        for a in UInt8(0x80)...0xFF { for b in UInt8(0x80)...0xFF { samples.append([a, b]) } }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt8 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let r = UInt8(truncatingIfNeeded: state >> 33)
            return r < 0x10 ? 0x41 : r | 0x80
        }
        for _ in 0..<100_000 { samples.append((0..<Int(next() % 4 + 1)).map { _ in next() }) }
        for (n, sequence) in samples.enumerated() {
            let valid = String(validating: sequence, as: UTF8.self) != nil
            // Plain bytes around it, so the sequence sits at every offset of the scanner's eight-byte steps.
            let before = [UInt8](repeating: 0x61, count: n % 11), after = [UInt8](repeating: 0x62, count: n % 7)
            let accepted = (try? flattenBytes([0x22] + before + sequence + after + [0x22])) != nil
            if valid != accepted { Issue.record("\(sequence): the standard library says \(valid ? "valid" : "invalid")"); break }
        }
    }

    @Test("a string's quote, escapes, control characters and non-ASCII bytes are seen at every offset of a word")
    func stringOffsets() throws {
        for p in 0...17 {
            let a = String(repeating: "a", count: p), b = String(repeating: "b", count: 17 - p)
            for inner in [#"\""#, #"\\"#, #"\u00e9"#, "é", "€", "𝄞", ""] {
                let text = "[\"\(a)\(inner)\(b)\",1]"
                #expect(try flatten(text) == ["\"\(a)\(inner)\(b)\"", "1"], "\(text)")
            }
            for bad in ["\u{01}", "\u{1F}", "\t", "\n", #"\x"#, #"""#] {
                #expect(throws: ProtocolError.self, "\(p) \(bad.debugDescription)") { try flatten("[\"\(a)\(bad)\(b)\"]") }
            }
        }
    }

    @Test("an object's members keep their exact bytes; non-objects and broken objects are refused")
    func members() throws {
        let members = try JSONMessages.members(ByteBuffer(string: #" { "seq" : 17, "data":{"b": 2.50, "a":[1]} ,"event":"x\"y" } "#)).mapValues { String(buffer: $0) }
        #expect(members == ["seq": "17", "data": #"{"b": 2.50, "a":[1]}"#, "event": #""x\"y""#])
        #expect(try JSONMessages.members(ByteBuffer(string: "{}")).isEmpty)
        for bad in ["[1]", "{\"a\"}", "{\"a\":1", "{\"a\":1,}", "", "{} x"] {
            #expect(throws: ProtocolError.self, "\(bad)") { try JSONMessages.members(ByteBuffer(string: bad)) }
        }
    }

    @Test("[] appends nothing and is an error on POST")
    func emptyArray() {
        #expect(throws: ProtocolError.emptyJSONArray) { try flatten("[]") }
    }

    @Test("nesting is bounded")
    func depth() {
        #expect(throws: ProtocolError.self) { try flatten(String(repeating: "[", count: 300) + String(repeating: "]", count: 300)) }
    }

    @Test("a read body is one array of every message")
    func readBody() {
        #expect(String(buffer: JSONMessages.array([ByteBuffer(string: "1"), ByteBuffer(string: "{}")])) == "[1,{}]")
        #expect(String(buffer: JSONMessages.array([])) == "[]")
    }
}

@Suite("Header values")
struct HeaderValueTests {
    @Test("Stream-TTL accepts only plain decimals", arguments: ["+3600", "03600", "3600.0", "3.6e3", "-1", "abc", "", " 1"])
    func badTTL(_ value: String) {
        #expect(throws: ProtocolError.self) { try HeaderValues.ttlSeconds(value) }
    }

    @Test("good TTLs")
    func goodTTL() throws {
        #expect(try HeaderValues.ttlSeconds("0") == 0)
        #expect(try HeaderValues.ttlSeconds("3600") == 3600)
    }

    @Test("producer numbers are 0...2^53-1", arguments: ["1abc", "0xyz", "1e3", "-1", "", "9007199254740992"])
    func badProducerNumbers(_ value: String) {
        #expect(throws: ProtocolError.self) { try HeaderValues.producerNumber(value, header: "Producer-Seq") }
    }

    @Test("producer headers travel together")
    func producerTriple() throws {
        func parse(_ h: [String: String]) throws -> DSRequestHeaders.Append { try DSRequestHeaders.append { h[$0] } }
        #expect(try parse(["Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": "9007199254740991"]).producer
                == ProducerClaim(id: "p", epoch: 0, seq: 9_007_199_254_740_991))
        #expect(throws: ProtocolError.self) { try parse(["Producer-Id": "p", "Producer-Epoch": "0"]) }
        #expect(throws: ProtocolError.self) { try parse(["Producer-Id": "", "Producer-Epoch": "0", "Producer-Seq": "0"]) }
        #expect(try parse(["Stream-Closed": "TRUE"]).closed)
        #expect(try !parse(["Stream-Closed": "yes"]).closed)
    }

    @Test("fork headers need their companions")
    func forkDependencies() throws {
        func parse(_ h: [String: String]) throws -> DSRequestHeaders.Create { try DSRequestHeaders.create { h[$0] } }
        #expect(throws: ProtocolError.self) { try parse(["Stream-Fork-Sub-Offset": "0"]) }
        #expect(throws: ProtocolError.self) { try parse(["Stream-Forked-From": "/v1/stream/a", "Stream-Fork-Sub-Offset": "2"]) }
        #expect(throws: ProtocolError.self) { try parse(["Stream-Forked-From": "/v1/stream/a", "Stream-Fork-Sub-Offset": "-1"]) }
        #expect(throws: ProtocolError.self) { try parse(["Stream-Forked-From": "/v1/stream/a", "Stream-Fork-Offset": "12"]) }
        #expect(throws: ProtocolError.self) { try parse(["Stream-TTL": "5", "Stream-Expires-At": "2030-01-01T00:00:00Z"]) }
        let ok = try parse(["Stream-Forked-From": "/v1/stream/a", "Stream-Fork-Offset": Offset(3).wire, "Stream-Fork-Sub-Offset": "2"])
        #expect(ok.forkOffset == Offset(3) && ok.forkSubOffset == 2 && ok.forkSource == "/v1/stream/a")
    }
}

@Suite("RFC 3339, cursors, ETags")
struct TimeAndCacheTests {
    @Test("Z and +00:00 forms name the same instant; offsets and fractions apply")
    func parse() {
        #expect(RFC3339.parse("2024-10-09T00:00:00Z") == CursorClock.epochMilliseconds)
        #expect(RFC3339.parse("2024-10-09T00:00:00+00:00") == CursorClock.epochMilliseconds)
        #expect(RFC3339.parse("2024-10-09T02:00:00.5+02:00") == CursorClock.epochMilliseconds + 500)
        #expect(RFC3339.parse("1970-01-01T00:00:00z") == 0)
    }

    @Test("garbage timestamps are refused", arguments: ["", "tomorrow", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z", "2024-10-09 00:00:00Z", "2024-10-09T00:00:00"])
    func garbage(_ text: String) { #expect(RFC3339.parse(text) == nil) }

    @Test("format round-trips")
    func format() {
        #expect(RFC3339.format(millisecondsSince1970: CursorClock.epochMilliseconds) == "2024-10-09T00:00:00Z")
        #expect(RFC3339.format(millisecondsSince1970: 1_700_000_000_123) == "2023-11-14T22:13:20.123Z")
    }

    @Test("cursor: current 20 s interval, strictly more when the client already holds it")
    func cursor() {
        let clock = CursorClock()
        let now = CursorClock.epochMilliseconds + 20_000 * 100 + 5
        #expect(clock.cursor(nowMilliseconds: now, client: nil, jitterSeconds: 7) == "100")
        #expect(clock.cursor(nowMilliseconds: now, client: "99", jitterSeconds: 7) == "100")
        #expect(clock.cursor(nowMilliseconds: now, client: "100", jitterSeconds: 7) == "101")
        #expect(clock.cursor(nowMilliseconds: now, client: "100", jitterSeconds: 3600) == "280")
        #expect(clock.cursor(nowMilliseconds: now, client: "150", jitterSeconds: 41) == "153")
        #expect(clock.cursor(nowMilliseconds: now, client: "garbage", jitterSeconds: 7) == "100")
    }

    @Test("ETags change with the range and the close; If-None-Match compares weakly")
    func etag() {
        let open = DSETag.make(stream: 7, start: Offset(0), end: Offset(2), closed: false)
        #expect(open == "\"7:00000000000000000000:00000000000000000002\"")
        #expect(DSETag.make(stream: 7, start: Offset(0), end: Offset(2), closed: true) == "\"7:00000000000000000000:00000000000000000002:c\"")
        #expect(DSETag.matches(ifNoneMatch: "W/\(open)", etag: open))
        #expect(DSETag.matches(ifNoneMatch: "\"x\", \(open)", etag: open))
        #expect(DSETag.matches(ifNoneMatch: "*", etag: open))
        #expect(!DSETag.matches(ifNoneMatch: "\"7:0:1\"", etag: open))
    }

    @Test("problem documents are RFC 9457 JSON with a stable code")
    func problem() {
        let doc = ProblemDocument(status: 404, title: "Not Found", code: "stream-not-found", detail: "No \"x\"", instance: "/v1/stream/x")
        #expect(doc.json == #"{"type":"/docs/api/errors#stream-not-found","title":"Not Found","status":404,"code":"stream-not-found","detail":"No \"x\"","instance":"/v1/stream/x"}"#)
    }
}

@Suite("Names")
struct NameTests {
    @Test("stream path grammar")
    func paths() {
        for good in ["acme", "acme/orders", "a/B.c_d~e-f/9", "0", String(repeating: "a", count: 63)] { #expect(StreamPath(good) != nil, "\(good)") }
        for bad in ["", "Acme", "-a", "a//b", "a/", "a/../b", "a/./b", "a/b c", "__ds", "a/%2F", String(repeating: "a", count: 64)] {
            #expect(StreamPath(bad) == nil, "\(bad)")
        }
        #expect(StreamPath("acme/x")?.slot.rawValue == "acme")
    }

    @Test("content types compare by essence")
    func contentTypes() {
        let a = ContentType(validating: "Application/JSON; charset=utf-8")!
        #expect(a.essence == "application/json" && a.isJSON && a.isText)
        #expect(a.matches(ContentType(validating: "application/json")!))
        #expect(ContentType(validating: "image/png")!.isText == false)
        #expect(ContentType(validating: "text") == nil)
        #expect(ContentType(validating: "text/plain\r\nx: y") == nil)
        #expect(ContentType(validating: " text/Plain ; charset=utf-8 ")?.essence == "text/plain")
        #expect(ContentType(validating: " text/Plain ; charset=utf-8 ")?.raw == "text/Plain ; charset=utf-8")
        for bad in ["text/ plain", "a/b/c", "/plain", "text/", "text/pl@in", ""] { #expect(ContentType(validating: bad) == nil, "\(bad)") }
    }

    /// The one-pass validators against the obvious split-based definitions, on every short string over an
    /// alphabet of the characters that matter.
    @Test("the one-pass path and type validators agree with the split-based grammar")
    func validatorsAgree() {
        func referencePath(_ text: String) -> Bool {
            guard text.utf8.count <= StreamPath.maxLength else { return false }
            let segments = text.split(separator: "/", omittingEmptySubsequences: false)
            let slot = Array(segments[0].utf8)
            let leading: (UInt8) -> Bool = { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) }
            guard (1...63).contains(slot.count), leading(slot[0]),
                  slot.dropFirst().allSatisfy({ leading($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }) else { return false }
            return segments.dropFirst().allSatisfy { segment in
                !segment.isEmpty && segment != "." && segment != ".."
                    && segment.utf8.allSatisfy { (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || [0x2E, 0x5F, 0x7E, 0x2D].contains($0) }
            }
        }
        func referenceEssence(_ raw: String) -> String? {
            let trimmed = raw.trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
            guard trimmed.utf8.count <= 255, !trimmed.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return nil }
            let head = trimmed.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)[0].trimmingCharacters(in: CharacterSet(charactersIn: " \t")).lowercased()
            let parts = head.split(separator: "/", omittingEmptySubsequences: false)
            let token: (UInt8) -> Bool = { b in
                (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || Array("!#$&'*+-.^_`|~".utf8).contains(b)
            }
            guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy(token) }) else { return nil }
            return head
        }
        let alphabet: [Character] = ["a", "Z", "0", "/", ".", "-", "_", " ", ";", "%"]
        var strings = [""]
        for _ in 0..<5 { strings += strings.flatMap { s in alphabet.map { s + String($0) } }.filter { $0.count == (strings.last?.count ?? 0) + 1 } }
        #expect(strings.count > 100_000)
        for text in strings {
            #expect((StreamPath(text) != nil) == referencePath(text), "path '\(text)'")
            #expect(ContentType(validating: text)?.essence == referenceEssence(text), "type '\(text)'")
        }
        for text in ["a/...", "a/..x", "a/.x", "0/~"] { #expect(StreamPath(text) != nil, "\(text)") }
    }
}

/// The WHATWG rule for `data:` lines (strip one optional space), to check what a browser would see.
struct SSEParserForTests {
    mutating func parse(_ text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: true).compactMap { line in
            guard line.hasPrefix("data:") else { return nil }
            let value = line.dropFirst(5)
            return String(value.hasPrefix(" ") ? value.dropFirst() : value)
        }
    }
}
