import Foundation
import HTTPTypes
@testable import HubHTTP
import HubTestSupport
import NIOCore
import NIOEmbedded
import Testing

/// The hot lane (`HotLane`, `HTTP1Wire`): the bytes it reads and writes, and a real hub's connections that mix
/// requests it answers with requests the decoder and the router answer.
@Suite("Hot lane: the hot path's own HTTP/1.1 reader")
struct HotLaneTests {
    // MARK: HTTP1Wire.scan

    private func scan(_ text: String) -> HTTP1Wire.Scan {
        HTTP1Wire.scan(ByteBuffer(string: text))
    }

    @Test("a GET on a stream: the request as NIO's conversion builds it (the first Host is the authority), and its length")
    func scanGet() throws {
        let text = "GET /v1/stream/a/b?offset=-1&live=long-poll HTTP/1.1\r\nHost: hub:8080\r\nAuthorization:  Bearer x \r\nX-A: 1\r\nhost: second\r\n\r\nNEXT"
        guard case .request(let head) = scan(text) else { Issue.record("not a request: \(scan(text))"); return }
        #expect(head.headLength == text.utf8.count - 4 && head.contentLength == 0)
        let request = try #require(head.request)
        #expect(request.method == .get && request.scheme == "http" && request.authority == "hub:8080")
        #expect(request.path == "/v1/stream/a/b?offset=-1&live=long-poll")
        #expect(request.headerFields.map { "\($0.name.rawName)=\($0.value)" } == ["Authorization=Bearer x", "X-A=1", "host=second"])
    }

    @Test("a POST's body length; other methods, HTTP/1.0 and other paths are delimited but not the lane's")
    func scanPostAndOthers() throws {
        let post = "POST /v1/stream/a HTTP/1.1\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
        guard case .request(let head) = scan(post) else { Issue.record("not a request"); return }
        #expect(head.headLength == post.utf8.count - 5 && head.contentLength == 5 && head.request?.method == .post)
        #expect(scan("GET /v1/stream/a?offset=-1&live=sse HTTP/1.1\r\n\r\n") != .undelimited, "a head with no fields")
        guard case .request(let health) = scan("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") else { Issue.record("health"); return }
        #expect(health.request?.path == "/healthz")
        for text in ["PUT /v1/stream/a HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", "HEAD /v1/stream/a HTTP/1.1\r\n\r\n",
                     "GET /v1/stream/a HTTP/1.0\r\n\r\n", "POST /healthz HTTP/1.1\r\n\r\n", "GET /healthz?x HTTP/1.1\r\n\r\n",
                     "GET /v1/streams HTTP/1.1\r\n\r\n"] {
            guard case .request(let head) = scan(text) else { Issue.record("not delimited: \(text)"); continue }
            #expect(head.request == nil, "\(text)")
        }
    }

    @Test("unfinished heads wait; anything the lane does not read is left to the decoder")
    func scanRefusals() {
        #expect(scan("") == .incomplete)
        #expect(scan("GET /v1/stream/a HTTP/1.1\r\nHost: x\r\n") == .incomplete)
        #expect(scan("GET /v1/stream/a HTTP/1.1\r\nHost: x\r\n\r") == .incomplete)
        let undelimited = [
            "POST /v1/stream/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST /v1/stream/a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
            "POST /v1/stream/a HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
            "POST /v1/stream/a HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST /v1/stream/a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            "GET /v1/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "GET /v1/stream/a HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n",
            "GET /v1/stream/a HTTP/1.1\r\nX-A: 1\nX-B: 2\r\n\r\n",
            "GET /v1/stream/a HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
            "GET /v1/stream/a HTTP/1.1\r\nBad Name: 1\r\n\r\n",
            "GET /v1/stream/a HTTP/1.1\r\n: 1\r\n\r\n",
            "GET  /v1/stream/a HTTP/1.1\r\n\r\n",
            "GET /v1/stream/a HTTP/2.0\r\n\r\n",
            "\r\nGET /v1/stream/a HTTP/1.1\r\n\r\n",
            "GET /v1/stream/a HTTP/1.1\r\nX: " + String(repeating: "a", count: HTTP1Wire.maxHeadBytes) + "\r\n\r\n",
        ]
        for text in undelimited { #expect(scan(text) == .undelimited, "\(text.prefix(80))") }
        // A head that has not ended within the limit is not waited for.
        #expect(scan("GET /v1/stream/a HTTP/1.1\r\nX: " + String(repeating: "a", count: HTTP1Wire.maxHeadBytes)) == .undelimited)
    }

    @Test("a response head in bytes: status line, own fields, the common lines, blank line")
    func responseHead() {
        var fields = HTTPFields()
        fields[.contentType] = "text/plain"
        fields[HTTPField.Name("Stream-Next-Offset")!] = "00000000000000000001"
        var buffer = ByteBuffer()
        HTTP1Wire.writeResponseHead(.noContent, fields, common: ByteBuffer(string: "Server: hubd\r\n"), into: &buffer)
        #expect(String(buffer: buffer) == "HTTP/1.1 204 No Content\r\nContent-Type: text/plain\r\nStream-Next-Offset: 00000000000000000001\r\nServer: hubd\r\n\r\n")
    }

    // MARK: The lane on its own

    @Test("without a hot path, every byte goes up unchanged, whole requests at a time, however the reads split them; nothing is kept between reads")
    func forwardsExactBytes() throws {
        let lane = HotLane()
        let channel = EmbeddedChannel(handler: lane)
        var wire = ""
        for i in 0..<300 {
            let body = String(repeating: "x", count: i * 7 % 2000)
            wire += i % 3 == 0 ? "GET /v1/stream/a?offset=-1 HTTP/1.1\r\nHost: h\r\n\r\n"
                : "POST /v1/stream/a HTTP/1.1\r\nHost: h\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        }
        wire += "POST /v1/stream/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\nGET /after HTTP/1.1\r\n\r\n"
        let bytes = Array(wire.utf8)
        var generator = SystemRandomNumberGenerator()
        var sent = 0, received: [UInt8] = [], largest = 0
        while sent < bytes.count {
            let n = min(bytes.count - sent, Int.random(in: 1...3000, using: &generator))
            try channel.writeInbound(ByteBuffer(bytes: bytes[sent..<(sent + n)]))
            sent += n
            while let part = try channel.readInbound(as: ByteBuffer.self) { received += part.readableBytesView }
            largest = max(largest, lane.bufferCapacity)
        }
        #expect(received == bytes)
        #expect(largest <= 64 * 1024, "the lane keeps at most what one read or one pending request needs: \(largest)")
        _ = try channel.finish()
    }

    // MARK: On a hub

    @Test("requests after the first on a keep-alive connection are the lane's; HEAD, PUT and a chunked body after them get the decoder's framing")
    func mixedConnection() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            #expect(try await hub.put(p, [textType]).status == 201)
            func post(_ body: String) -> String {
                "POST /v1/stream/\(p) HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            }
            let head = "HEAD /v1/stream/\(p) HTTP/1.1\r\nHost: x\r\n\r\n"
            let chunked = "POST /v1/stream/\(p) HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nd\r\n0\r\n\r\n"
            let get = "GET /v1/stream/\(p)?offset=-1 HTTP/1.1\r\nHost: x\r\n\r\n"
            let before = try await laneRequests(hub)
            let (responses, extra) = try await RawHTTP.sequential(port: hub.port, [
                (post("a"), .length), (post("b"), .length), (head, .head), (post("c"), .length), (chunked, .length), (post("e"), .length), (get, .length),
            ])
            #expect(responses.map(\.status) == [204, 204, 200, 204, 204, 204, 200])
            #expect(responses[2].header("stream-next-offset") == "00000000000000000002" && responses[2].header("content-length") != nil)
            #expect(responses[6].body == "abcde")
            #expect(extra == 0, "no bytes after the last answer (a HEAD answered with a body would leave some)")
            // b and c through the lane; a came first (the HTTP pipeline is set up by it), e after a chunked body that
            // handed the rest of the connection to the decoder.
            #expect(try await laneRequests(hub) - before == 2)
        }
    }

    @Test("the lane's answers are the router's: appends, long-polls (handed back when they cannot join) and SSE at the tail")
    func sameAsRouter() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            #expect(try await hub.put(p, [textType]).status == 201)
            func post(_ body: String, _ extra: String = "") -> String {
                "POST /v1/stream/\(p) HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n\(extra)Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
            }
            let poll = "GET /v1/stream/\(p)?offset=00000000000000000001&live=long-poll HTTP/1.1\r\nHost: x\r\n\r\n"
            let before = try await laneRequests(hub)
            let lane = try await RawHTTP.sequential(port: hub.port, [
                (post("a"), .length), (post("b"), .length), (post("", ""), .length), (post("c", "Stream-Seq: 1\r\n"), .length),
                (post("d", "Stream-Seq: 0\r\n"), .length), (poll, .length),
            ]).responses
            let router = try await RawHTTP.sequential(port: hub.port, [
                (post("x").replacingOccurrences(of: "/v1/stream/\(p)", with: "/v1/stream/\(p)?via=router"), .length),
            ]).responses
            #expect(lane.map(\.status) == [204, 204, 400, 204, 409, 200])
            #expect(lane[5].body == "bc", "the poll after offset 1 is handed to the router, which reads what is there")
            #expect(lane[2].header("content-type") == "application/problem+json")
            #expect(try await laneRequests(hub) - before >= 4)
            // The same fields on both paths, but for the date and the offset.
            let names = { (r: RawHTTP.Response) in r.headers.map { $0.0.lowercased() }.filter { $0 != "date" }.sorted() }
            #expect(names(lane[1]) == names(router[0]))
        }
    }

    @Test("an SSE reader at the tail on a lane connection gets the hot stream in chunks; the connection serves the next request after it")
    func laneSSE() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            let tail = try #require(try await hub.put(p, [jsonType], body: "[1]").header("stream-next-offset"))
            // A reader parked by the router: the stream's push group is at the tail, where the lane's reader joins it.
            async let routed = hub.sse(hub.streamURL(p, "offset=\(tail)&live=sse")) { _ in true }
            try await hub.untilWaiting(1)
            let before = try await laneRequests(hub)
            let get = "GET /v1/stream/\(p)?offset=-1 HTTP/1.1\r\nHost: x\r\n\r\n"
            let sse = "GET /v1/stream/\(p)?offset=\(tail)&live=sse HTTP/1.1\r\nHost: x\r\n\r\n"
            async let lane = RawHTTP.sequential(port: hub.port, [(get, .length), (sse, .chunked), (get, .length)])
            try await hub.untilWaiting(2)
            #expect(try await hub.post(p, [jsonType, ("Stream-Closed", "true")], body: "[2]").status == 204)
            let (responses, extra) = try await lane
            #expect(try await routed)
            #expect(responses.map(\.status) == [200, 200, 200] && extra == 0)
            #expect(responses[1].header("content-type") == "text/event-stream" && responses[1].header("transfer-encoding") == "chunked")
            let events = responses[1].body
            #expect(events.hasPrefix("event: control\ndata:{\"streamNextOffset\":\"\(tail)\""), "\(events)")
            #expect(events.contains("event: data\ndata:[2]\n") && events.contains(#""streamClosed":true"#), "\(events)")
            #expect(responses[2].body == "[1,2]")
            #expect(try await laneRequests(hub) - before == 1, "the SSE read (the catch-up reads are the router's)")
        }
    }

    @Test("GET /healthz on the hot path: the router's answer; anonymous callers count against the address's rate with tokens")
    func health() async throws {
        let health = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", routed = "GET /healthz?via=router HTTP/1.1\r\nHost: x\r\n\r\n"
        try await withRunningHub { hub in
            let before = try await laneRequests(hub)
            let (responses, _) = try await RawHTTP.sequential(port: hub.port, [(health, .length), (health, .length), (routed, .length)])
            #expect(responses.map(\.status) == [200, 200, 200] && Set(responses.map(\.body)) == [#"{"status":"ok"}"#])
            let names = { (r: RawHTTP.Response) in r.headers.map { "\($0.0.lowercased())" }.filter { $0 != "date" }.sorted() }
            #expect(names(responses[1]) == names(responses[2]), "the same fields as the router's")
            #expect(try await laneRequests(hub) - before == 1, "the second, on a quiet connection")
        }
        // With tokens, an anonymous health check is limited per address as on the router: the burst, then 429.
        try await withRunningHub({ $0.auth = .tokens; $0.rateLimitAddress = 1 }) { hub in  // a burst of 2, then one a second
            let (responses, _) = try await RawHTTP.sequential(port: hub.port, [(health, .length), (health, .length), (health, .length)])
            #expect(responses.map(\.status) == [200, 200, 429])
        }
    }

    @Test("a long-poll from the lane whose client ends its input after sending it still gets its answer")
    func halfClosedPoll() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            let tail = try #require(try await hub.put(p, [textType], body: "a").header("stream-next-offset"))
            let connection = try RawConnection(port: hub.port)
            try await connection.exchange("GET /v1/stream/\(p)?offset=-1 HTTP/1.1\r\nHost: x\r\n\r\n")  // sets the connection up
            let before = try await laneRequests(hub)
            try await connection.send("GET /v1/stream/\(p)?offset=\(tail)&live=long-poll HTTP/1.1\r\nHost: x\r\n\r\n", thenHalfClose: true)
            try await hub.untilWaiting(1)
            #expect(try await hub.post(p, [textType], body: "b").status == 204)
            let answer = try await connection.response()
            #expect(answer.status == 200 && answer.body == "b")
            #expect(try await laneRequests(hub) - before == 1)
        }
    }

    @Test("a connection only the hot path served (no router loop started on it) closes when its client ends its input; a router request after hot ones is answered")
    func hotOnlyConnection() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            #expect(try await hub.put(p, [textType]).status == 201)
            let post = "POST /v1/stream/\(p) HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\na"
            #expect(try await RawHTTP.serverClosesAfterHalfClose(port: hub.port, request: post + post, marker: "Stream-Next-Offset: 00000000000000000002",
                                                                 within: 10))
            let (responses, _) = try await RawHTTP.sequential(port: hub.port, [
                (post, .length), (post, .length), ("GET /v1/stream/\(p)?offset=-1 HTTP/1.1\r\nHost: x\r\n\r\n", .length),
            ])
            #expect(responses.map(\.status) == [204, 204, 200] && responses[2].body == "aaaa")
        }
    }

    @Test("one batch answers the lane's long-pollers: the same bytes where they asked the same, each its own cursor where not")
    func laneLongPollsShareAnswers() async throws {
        try await withRunningHub(patientPolls) { hub in
            let p = uniqueStream()
            let tail = try #require(try await hub.put(p, [jsonType], body: "[1]").header("stream-next-offset"))
            // A poll the router parks opens the stream's push group at the tail, where the lane's polls join it.
            async let routed = hub.get(p, "offset=\(tail)&live=long-poll")
            try await hub.untilWaiting(1)
            let before = try await laneRequests(hub)
            let connections = try (0..<3).map { _ in try RawConnection(port: hub.port) }
            for connection in connections {
                // The first request on a connection sets up its HTTP pipeline; the lane reads from the second on.
                #expect(try await connection.exchange("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").status == 200)
            }
            let ahead = "99999999999"
            for (connection, cursor) in zip(connections, ["", "&cursor=7", "&cursor=\(ahead)"]) {
                try await connection.send("GET /v1/stream/\(p)?offset=\(tail)&live=long-poll\(cursor) HTTP/1.1\r\nHost: x\r\n\r\n")
            }
            try await hub.untilWaiting(4)
            #expect(try await hub.post(p, [jsonType], body: "[2]").status == 204)
            var answers: [RawHTTP.Response] = []
            for connection in connections { answers.append(try await connection.response()) }
            let router = try await routed
            #expect(try await laneRequests(hub) - before == 3, "the polls were the lane's")
            #expect(answers.allSatisfy { $0.status == 200 && $0.body == "[2]" } && router.text == "[2]")
            #expect(answers.allSatisfy { $0.header("etag") == router.header("etag") && $0.header("stream-next-offset") == router.header("stream-next-offset") })
            let cursors = answers.map { $0.header("stream-cursor") ?? "" }
            #expect(cursors[0] == cursors[1] && cursors[0] == router.header("stream-cursor"), "behind the current interval: the current one")
            #expect((Int(cursors[2]) ?? 0) > Int(ahead)!, "a cursor ahead of the server's: strictly more than the client's, its own")
        }
    }

    @Test("graceful shutdown closes an idle connection only the hot path served at once, not after the grace period")
    func shutdownClosesIdleHotConnections() async throws {
        // A grace far longer than the wait below: a connection left open until the grace ends fails the test.
        try await withRunningHub({ $0.shutdownGrace = .seconds(600) }) { hub in
            let p = uniqueStream()
            #expect(try await hub.put(p, [textType]).status == 201)
            let post = "POST /v1/stream/\(p) HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\na"
            let connection = try RawConnection(port: hub.port)
            #expect(try await connection.exchange(post).status == 204)
            #expect(try await connection.exchange(post).status == 204)  // the lane's
            #expect(!connection.closedByServer)
            await hub.shutdown()
            try await eventually { connection.closedByServer }
        }
    }

    private func laneRequests(_ hub: RunningHub) async throws -> Int {
        let text = try await hub.client.request(.GET, "/metrics").text
        let line = text.split(separator: "\n").first { $0.hasPrefix("hub_hot_lane_requests_total ") }
        return Int(line?.split(separator: " ").last ?? "0") ?? 0
    }
}

/// One blocking client connection, driven step by step (off the cooperative pool).
final class RawConnection: @unchecked Sendable {
    private let fd: Int32
    private var reader: RawHTTP.Reader

    init(port: Int) throws {
        fd = try connectLoopback(port: port)
        reader = RawHTTP.Reader(fd: fd)
    }

    deinit { close(fd) }

    /// The server closed the connection (a read would see its end now), without blocking.
    var closedByServer: Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) == 0
    }

    func send(_ text: String, thenHalfClose: Bool = false) async throws {
        try await blocking {
            try RawHTTP.send(text, to: self.fd)
            if thenHalfClose { shutdown(self.fd, Int32(SHUT_WR)) }
        }
    }

    func response(_ framing: RawHTTP.Framing = .length) async throws -> RawHTTP.Response {
        try await blocking { try self.reader.response(framing) }
    }

    @discardableResult
    func exchange(_ text: String, _ framing: RawHTTP.Framing = .length) async throws -> RawHTTP.Response {
        try await send(text)
        return try await response(framing)
    }

    private func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }
}
