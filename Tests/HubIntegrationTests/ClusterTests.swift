import Foundation
import HubProtocol
import HubTestSupport
import Synchronization
import Testing

/// Several `hubd` processes on one PostgreSQL database (DESIGN §5, docs/operations/postgres.md), against a real server
/// the test setup starts. Every node has its own data directory (admin socket, admin.token); the data is in the database.
@Suite("Cluster: several hubd nodes on PostgreSQL")
struct ClusterTests {
    static let jsonType = ("Content-Type", "application/json")

    /// Starts `count` nodes (one after the other, so the first alone writes admin.token) on a fresh database.
    private func withCluster(_ count: Int = 2, auth: String = "open", server: PostgresServer = .shared,
                             _ body: ([HubdProcess], [TemporaryDirectory]) async throws -> Void) async throws {
        let url = try await server.freshDatabase()
        var nodes: [HubdProcess] = []
        var directories: [TemporaryDirectory] = []
        for _ in 0..<count {
            let directory = try TemporaryDirectory()
            directories.append(directory)
            nodes.append(try await HubdProcess(dataDirectory: directory.path, arguments: ["--auth", auth, "--store", "postgres"],
                                               environment: ["HUB_POSTGRES_URL": url]))
        }
        for node in nodes { try await node.untilReady() }
        do {
            try await body(nodes, directories)
        } catch {
            for node in nodes { _ = await node.terminate() }
            throw error
        }
        for node in nodes where !node.wasKilled { #expect(await node.terminate() == 0, "SIGTERM exits 0") }
    }

    /// Waits until `node` has `count` live readers parked (they took their change ticket; nothing can be missed after).
    private func untilWaiting(_ node: HubdProcess, _ count: Int) async throws {
        try await eventually(every: .milliseconds(10)) {
            (json(try await node.client.request(.GET, "/v1/admin/stats").text)["live_readers_waiting"] as? Int ?? 0) >= count
        }
    }

    @Test("an append on one node reaches SSE, long-poll and WebSocket readers on the other")
    func crossNodeLive() async throws {
        try await withCluster { nodes, _ in
            let (a, b) = (nodes[0], nodes[1])
            #expect(try await a.client.request(.PUT, "/v1/stream/live/s", headers: [("Content-Type", "text/plain")]).status == 201)
            let tail = try #require(try await b.client.request(.HEAD, "/v1/stream/live/s").header("Stream-Next-Offset"))
            let sse = Shared<[String]>([])
            let frames = Frames()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await b.client.sse("/v1/stream/live/s?offset=\(tail)&live=sse") { event in
                        guard event.type == "data" else { return true }
                        // A byte stream's data events may carry both appends at once (B may read after both
                        // commits, NOTIFY lags): the bytes count, not how they are split.
                        return sse.value.withLock { $0.append(event.data); return $0.joined().count < 6 }
                    }
                }
                group.addTask {
                    let r = try await b.client.request(.GET, "/v1/stream/live/s?offset=\(tail)&live=long-poll")
                    #expect(r.status == 200 && r.text.hasPrefix("one"), "long-poll on B wakes for the append on A: \(r.status) \(r.text)")
                }
                group.addTask {
                    try await webSocket(port: b.port, "slot=live") { text, _ in frames.add(text) < 2 }
                }
                try await untilWaiting(b, 3)
                #expect(try await a.client.request(.POST, "/v1/stream/live/s", headers: [("Content-Type", "text/plain")], body: "one").status == 204)
                #expect(try await a.client.request(.POST, "/v1/stream/live/s", headers: [("Content-Type", "text/plain")], body: "two").status == 204)
                try await group.waitForAll()
            }
            #expect(sse.value.withLock { $0.joined() } == "onetwo")
            #expect(frames.seqs == [1, 2])
        }
    }

    @Test("concurrent writers on both nodes to one slot get one dense seq, in commit order, nothing lost or doubled")
    func concurrentWriters() async throws {
        try await withCluster { nodes, _ in
            let acknowledged = Shared<[String: Int]>([:])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<8 {
                    let node = nodes[writer % 2]
                    group.addTask {
                        for i in 0..<40 {
                            let body = #"{"w":\#(writer),"i":\#(i)}"#
                            let r = try await node.client.request(.POST, "/v1/events/shared", headers: [Self.jsonType], body: body)
                            #expect(r.status == 200)
                            if let seq = json(r.text)["seq"] as? Int { acknowledged.value.withLock { $0[body] = seq } }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let acked = acknowledged.value.withLock { $0 }
            #expect(acked.count == 320)
            #expect(acked.values.sorted() == Array(1...320), "dense and unique across nodes")
            // The log in seq order holds exactly those events, each at the seq its writer was told.
            let listed = json(try await nodes[1].client.request(.GET, "/v1/events/shared?since=0&limit=1000").text)["events"] as? [[String: Any]] ?? []
            #expect(listed.compactMap { $0["seq"] as? Int } == Array(1...320))
            for event in listed {
                let data = try #require(event["data"] as? [String: Int])
                #expect(acked[#"{"w":\#(data["w"]!),"i":\#(data["i"]!)}"#] == event["seq"] as? Int)
            }
            // Stream positions follow seq order: commit order is one order for both.
            let r = try await nodes[0].client.request(.GET, "/v1/stream/shared?offset=-1")
            let bodies = (try JSONSerialization.jsonObject(with: Data(r.text.utf8)) as? [[String: Int]]) ?? []
            let seqsByPosition = bodies.map { acked[#"{"w":\#($0["w"]!),"i":\#($0["i"]!)}"#] ?? 0 }
            #expect(seqsByPosition == Array(1...320))

            // Durable Streams appends to one stream from both nodes: every one accepted, each at its own position.
            #expect(try await nodes[0].client.request(.PUT, "/v1/stream/race/s", headers: [Self.jsonType]).status == 201)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<8 {
                    let node = nodes[writer % 2]
                    group.addTask {
                        for i in 0..<40 {
                            let r = try await node.client.request(.POST, "/v1/stream/race/s", headers: [Self.jsonType], body: #"{"w":\#(writer),"i":\#(i)}"#)
                            #expect(r.status == 204, "append \(writer).\(i): \(r.status) \(r.text)")
                        }
                    }
                }
                try await group.waitForAll()
            }
            let race = try await nodes[1].client.request(.GET, "/v1/stream/race/s?offset=-1")
            #expect(race.header("Stream-Next-Offset") == "00000000000000000320")
            let raced = (try JSONSerialization.jsonObject(with: Data(race.text.utf8)) as? [[String: Int]]) ?? []
            #expect(Set(raced.map { "\($0["w"]!).\($0["i"]!)" }).count == 320)
            // Those appends took the hot path (answered from the event loop when their group committed).
            for node in nodes {
                let metrics = try await node.client.request(.GET, "/metrics").text
                let line = metrics.split(separator: "\n").first { $0.hasPrefix("hub_hot_path_responses_total ") }
                #expect((line?.split(separator: " ").last.flatMap { Int($0) } ?? 0) >= 160, "\(line ?? "no hot-path metric")")
            }
        }
    }

    @Test("kill -9 of one node loses no acknowledged append; the other node serves everything")
    func killOneNode() async throws {
        try await withCluster { nodes, _ in
            let (a, b) = (nodes[0], nodes[1])
            #expect(try await a.client.request(.PUT, "/v1/stream/crash/s", headers: [Self.jsonType]).status == 201)
            let acknowledged = Acknowledged()
            let writers = 6
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<writers {
                    let node = w % 2 == 0 ? a : b
                    group.addTask {
                        for i in 0..<1000 {
                            let body = #"{"w":\#(w),"i":\#(i)}"#
                            guard let r = try? await node.client.request(.POST, "/v1/stream/crash/s", headers: [Self.jsonType], body: body) else {
                                return  // node A died under this writer
                            }
                            if r.status == 204 { acknowledged.insert(body) } else { return }
                            if w % 2 == 1 && i >= 150 { return }  // B's writers stop on their own
                        }
                    }
                }
                try await eventually { acknowledged.count >= 300 }
                await a.kill9()
                try await group.waitForAll()
            }
            var stored: [String] = []
            var offset = "-1"
            while true {
                let r = try await b.client.request(.GET, "/v1/stream/crash/s?offset=\(offset)")
                let array = (try JSONSerialization.jsonObject(with: Data(r.text.utf8)) as? [[String: Int]]) ?? []
                stored += array.map { #"{"w":\#($0["w"]!),"i":\#($0["i"]!)}"# }
                offset = try #require(r.header("Stream-Next-Offset"))
                if r.header("Stream-Up-To-Date") == "true" { break }
            }
            let acked = acknowledged.all
            #expect(Set(stored).count == stored.count, "no record is stored twice")
            #expect(acked.isSubset(of: Set(stored)), "every acknowledged append survived: missing \(acked.subtracting(Set(stored)).sorted().prefix(5))")
            #expect(try await b.client.request(.POST, "/v1/stream/crash/s", headers: [Self.jsonType], body: "{}").status == 204)
        }
    }

    @Test("the database restarted under load: 503 problem+json with Retry-After while it is down, then service resumes without a restart")
    func databaseRestart() async throws {
        let server = PostgresServer()
        defer { Task { await server.stop() } }
        try await withCluster(server: server) { nodes, _ in
            let (a, b) = (nodes[0], nodes[1])
            #expect(try await a.client.request(.PUT, "/v1/stream/db/s", headers: [Self.jsonType]).status == 201)
            let acknowledged = Acknowledged()
            let refused = Shared(0)
            let stop = Shared(false)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<4 {
                    let node = nodes[w % 2]
                    group.addTask {
                        var i = 0
                        while !stop.value.withLock({ $0 }) {
                            let body = #"{"w":\#(w),"i":\#(i)}"#
                            i += 1
                            let r = try await node.client.request(.POST, "/v1/stream/db/s", headers: [Self.jsonType], body: body)
                            if r.status == 204 { acknowledged.insert(body) } else {
                                #expect(r.status == 503 && r.header("Retry-After") != nil && r.header("Content-Type") == "application/problem+json",
                                        "while the database restarts: \(r.status) \(r.text)")
                                refused.value.withLock { $0 += 1 }
                                try await Task.sleep(for: .milliseconds(50))
                            }
                        }
                    }
                }
                try await eventually { acknowledged.count >= 100 }
                try await server.restart {
                    let r = try await a.client.request(.POST, "/v1/stream/db/s", headers: [Self.jsonType], body: #"{"down":true}"#)
                    #expect(r.status == 503 && r.header("Retry-After") == "1", "an append while the database is down: \(r.status)")
                    #expect(json(r.text)["code"] as? String == "store-unavailable")
                    #expect(try await b.client.request(.GET, "/readyz").status == 503)
                }
                let before = acknowledged.count
                try await eventually { acknowledged.count >= before + 100 }
                stop.value.withLock { $0 = true }
                try await group.waitForAll()
            }
                        // Both nodes recovered: ready again, and B's listener is back (an append on A wakes a reader on B).
            try await a.untilReady()
            try await b.untilReady()
            let tail = try #require(try await b.client.request(.HEAD, "/v1/stream/db/s").header("Stream-Next-Offset"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    let r = try await b.client.request(.GET, "/v1/stream/db/s?offset=\(tail)&live=long-poll")
                    #expect(r.status == 200 && r.text.contains("after"))
                }
                try await untilWaiting(b, 1)
                #expect(try await a.client.request(.POST, "/v1/stream/db/s", headers: [Self.jsonType], body: #"{"after":1}"#).status == 204)
                try await group.waitForAll()
            }
            let r = try await b.client.request(.GET, "/v1/stream/db/s?offset=-1")
            let stored = Set(((try JSONSerialization.jsonObject(with: Data(r.text.utf8)) as? [[String: Int]]) ?? []).compactMap { item in
                item["w"].map { #"{"w":\#($0),"i":\#(item["i"]!)}"# }
            })
            #expect(acknowledged.all.isSubset(of: stored), "nothing acknowledged was lost across the restart")
        }
    }

    @Test("idempotent producers and Stream-Seq hold across nodes: a retry on the other node is a duplicate, a zombie is fenced")
    func producersAcrossNodes() async throws {
        try await withCluster { nodes, _ in
            let (a, b) = (nodes[0], nodes[1])
            let text = ("Content-Type", "text/plain")
            func producer(_ epoch: Int, _ seq: Int) -> [(String, String)] {
                [text, ("Producer-Id", "w"), ("Producer-Epoch", String(epoch)), ("Producer-Seq", String(seq))]
            }
            #expect(try await a.client.request(.PUT, "/v1/stream/prod/s", headers: [text]).status == 201)
            #expect(try await a.client.request(.POST, "/v1/stream/prod/s", headers: producer(0, 0), body: "a").status == 200)
            let retry = try await b.client.request(.POST, "/v1/stream/prod/s", headers: producer(0, 0), body: "a")
            #expect(retry.status == 204 && retry.header("Producer-Seq") == "0", "the retry through B is recognised: nothing stored")
            #expect(try await b.client.request(.POST, "/v1/stream/prod/s", headers: producer(0, 1), body: "b").status == 200)
            let gap = try await a.client.request(.POST, "/v1/stream/prod/s", headers: producer(0, 3), body: "x")
            #expect(gap.status == 409 && gap.header("Producer-Expected-Seq") == "2")
            #expect(try await b.client.request(.POST, "/v1/stream/prod/s", headers: producer(1, 0), body: "c").status == 200)
            let zombie = try await a.client.request(.POST, "/v1/stream/prod/s", headers: producer(0, 2), body: "x")
            #expect(zombie.status == 403 && zombie.header("Producer-Epoch") == "1", "the old epoch is fenced on the other node too")
            // Stream-Seq: one node's write orders the other's.
            #expect(try await a.client.request(.POST, "/v1/stream/prod/s", headers: [text, ("Stream-Seq", "0002")], body: "d").status == 204)
            #expect(try await b.client.request(.POST, "/v1/stream/prod/s", headers: [text, ("Stream-Seq", "0001")], body: "x").status == 409)
            #expect(try await b.client.request(.GET, "/v1/stream/prod/s?offset=-1").text == "abcd")
        }
    }

    @Test("a consumer's ack on one node is honoured by a reconnect to the other; a ticket from one node is redeemed on the other, once")
    func consumersAndTickets() async throws {
        try await withCluster { nodes, _ in
            let (a, b) = (nodes[0], nodes[1])
            for n in 1...5 { #expect(try await a.client.request(.POST, "/v1/events/jobs", headers: [Self.jsonType], body: #"{"job":\#(n)}"#).status == 200) }
            let first = Frames()
            try await webSocket(port: a.port, "slot=jobs&consumer=worker") { text, outbound in
                let count = first.add(text)
                if count == 3 { try await outbound.write(.text(#"{"type":"ack","seq":3}"#)) }
                return count < 3
            }
            try await eventually(every: .milliseconds(10)) {
                (json(try await b.client.request(.GET, "/v1/admin/consumers?slot=jobs").text)["items"] as? [[String: Any]])?.first?["acked_seq"] as? Int == 3
            }
            let resumed = Frames()
            try await webSocket(port: b.port, "slot=jobs&consumer=worker") { text, _ in resumed.add(text) < 2 }
            #expect(resumed.seqs == [4, 5], "B resumes right after the acknowledgement made through A")
        }
        try await withCluster(auth: "tokens") { nodes, directories in
            let (a, b) = (nodes[0], nodes[1])
            let admin = try String(contentsOfFile: directories[0].path + "/admin.token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(!FileManager.default.fileExists(atPath: directories[1].path + "/admin.token"), "the second node found the first's admin token")
            let auth = ("Authorization", "Bearer \(admin)")
            #expect(try await a.client.request(.POST, "/v1/admin/slots", headers: [auth, Self.jsonType], body: #"{"name":"t"}"#).status == 201)
            #expect(try await a.client.request(.PUT, "/v1/stream/t/s", headers: [auth, ("Content-Type", "text/plain")], body: "hi").status == 201)
            let issued = try await a.client.request(.POST, "/v1/tickets", headers: [auth, Self.jsonType], body: #"{"path":"t/s","scope":"read"}"#)
            #expect(issued.status == 201)
            let ticket = try #require(json(issued.text)["ticket"] as? String)
            let redeemed = try await b.client.request(.GET, "/v1/stream/t/s?offset=-1&ticket=\(ticket)")
            #expect(redeemed.status == 200 && redeemed.text == "hi", "a ticket issued by A opens the stream on B")
            #expect(try await a.client.request(.GET, "/v1/stream/t/s?offset=-1&ticket=\(ticket)").status == 401, "and only once, on any node")
        }
    }

    @Test("hubctl works unchanged against a PostgreSQL-backed hub; hubctl backup points to PostgreSQL's own tools")
    func hubctlOnPostgres() async throws {
        try await withCluster(1) { nodes, directories in
            #expect(try await nodes[0].client.request(.POST, "/v1/events/ctl", headers: [Self.jsonType], body: #"{"n":1}"#).status == 200)
            let hubctl = HubdProcess.binary.replacingOccurrences(of: "/hubd", with: "/hubctl")
            let socket = ["--socket", directories[0].path + "/admin.sock"]
            let (status, output) = try await run(hubctl, ["status"] + socket)
            #expect(status == 0 && output.contains("ctl") == false && output.contains("slots"), "status: \(output)")
            let (lsStatus, ls) = try await run(hubctl, ["slot", "ls", "--json"] + socket)
            #expect(lsStatus == 0 && ls.contains(#""name":"ctl""#), "slot ls: \(ls)")
            let (tailStatus, tail) = try await run(hubctl, ["tail", "ctl", "-n", "5"] + socket)
            #expect(tailStatus == 0 && tail.contains(#"{"n":1}"#), "tail: \(tail)")
            let (backupStatus, backup) = try await run(hubctl, ["backup", directories[0].path + "/copy.db"] + socket)
            #expect(backupStatus == 1 && backup.contains("pg_dump"), "backup: \(backup)")
        }
    }
}

/// A value several tasks of a test share.
final class Shared<Value: Sendable>: Sendable {
    let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
}
