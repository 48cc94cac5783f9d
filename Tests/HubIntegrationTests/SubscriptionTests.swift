import Foundation
import HubAuth
import HubCore
@testable import HubHTTP
import HubServer
import HubTestSupport
import NIOHTTP1
import Synchronization
import Testing

/// The reserved subscription APIs (§11, issue 15): webhook and pull-wake subscriptions against a real hub, on both
/// stores, with a webhook receiver on loopback.
@Suite("Durable Streams: subscriptions (__ds)")
struct SubscriptionTests {
    // MARK: Both stores

    @Test("webhooks on SQLite: create/confirm/conflict, signed wake, done auto-acks, fencing, explicit streams, retries")
    func webhooksSQLite() async throws {
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.close() } }
        try await withRunningHub({ $0.webhookAllowLoopback = true }) { hub in try await Self.webhookChecks(hub.client, receiver) }
    }

    @Test("webhooks on PostgreSQL")
    func webhooksPostgres() async throws {
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.close() } }
        try await Self.withPostgresHub { client in try await Self.webhookChecks(client, receiver) }
    }

    @Test("pull-wake on SQLite: wake events, claim, ack, release, lease expiry")
    func pullWakeSQLite() async throws {
        try await withRunningHub { hub in try await Self.pullWakeChecks(hub.client) }
    }

    @Test("pull-wake on PostgreSQL")
    func pullWakePostgres() async throws {
        try await Self.withPostgresHub { client in try await Self.pullWakeChecks(client) }
    }

    static func withPostgresHub(_ body: (TestHTTPClient) async throws -> Void) async throws {
        let url = try await PostgresServer.shared.freshDatabase()
        let directory = try TemporaryDirectory()
        let node = try await HubdProcess(dataDirectory: directory.path,
                                         arguments: ["--auth", "open", "--store", "postgres", "--webhook-allow-loopback", "true"],
                                         environment: ["HUB_POSTGRES_URL": url])
        do {
            try await node.untilReady()
            try await body(node.client)
        } catch {
            _ = await node.terminate()
            throw error
        }
        #expect(await node.terminate() == 0)
    }

    // MARK: Webhooks

    static func webhookChecks(_ client: TestHTTPClient, _ receiver: WebhookReceiver) async throws {
        let api = SubscriptionAPI(client: client)
        let root = "w" + uniqueStream("s").dropFirst(2).replacingOccurrences(of: "-", with: "")
        _ = try await client.request(.PUT, "/v1/stream/\(root)/a", headers: [jsonType], body: #"[{"n":0}]"#)
        let id = "hook-" + root
        // The lease outlasts the test on a loaded machine: an expired lease would end the wake whose fencing is checked.
        let config = #"{"type":"webhook","pattern":"\#(root)/*","webhook":{"url":"\#(receiver.url())"},"lease_ttl_ms":60000,"description":"d"}"#

        // Create, confirm, conflict, read back.
        let created = try await api.put(id, config)
        #expect(created.status == 201, "\(created.text)")
        #expect(created.json["subscription_id"] as? String == id && created.json["type"] as? String == "webhook")
        let linked = created.json["streams"] as? [[String: Any]] ?? []
        #expect(linked.count == 1 && linked.first?["path"] as? String == "\(root)/a" && linked.first?["link_type"] as? String == "glob")
        #expect(linked.first?["acked_offset"] as? String == "00000000000000000001", "existing streams start acknowledged at their tail")
        #expect(try await api.put(id, config).status == 200)
        let conflict = try await api.put(id, config.replacingOccurrences(of: #""description":"d""#, with: #""description":"e""#))
        #expect(conflict.status == 409 && conflict.errorCode == "SUBSCRIPTION_ALREADY_EXISTS")
        #expect(conflict.header("Content-Type") == "application/problem+json")
        #expect(try await api.get(id).json["description"] as? String == "d")
        #expect(try await api.get("nope-\(root)").errorCode == "SUBSCRIPTION_NOT_FOUND")

        // An append wakes the consumer: a signed delivery with the protocol's fields. Its {"done":true} reply
        // acknowledges the wake's snapshot.
        receiver.setReply { _ in (200, #"{"done":true}"#) }
        _ = try await client.request(.POST, "/v1/stream/\(root)/a", headers: [jsonType], body: #"{"n":1}"#)
        let first = try await receiver.next()
        let wake = first.json
        #expect(wake["subscription_id"] as? String == id && wake["generation"] as? Int == 1)
        #expect((wake["wake_id"] as? String)?.isEmpty == false && (wake["callback_token"] as? String)?.isEmpty == false)
        #expect((wake["callback_url"] as? String)?.hasSuffix("/v1/stream/__ds/subscriptions/\(id)/callback") == true)
        let streams = wake["streams"] as? [[String: Any]] ?? []
        #expect(streams.first?["path"] as? String == "\(root)/a" && streams.first?["has_pending"] as? Bool == true)
        #expect(streams.first?["acked_offset"] as? String == "00000000000000000001" && streams.first?["tail_offset"] as? String == "00000000000000000002")
        let jwks = try await client.request(.GET, "/v1/stream/__ds/jwks.json")
        #expect(jwks.status == 200 && jwks.header("Content-Type") == "application/jwk-set+json")
        let key = ((jwks.json["keys"] as? [[String: Any]])?.first) ?? [:]
        let kid = key["kid"] as? String ?? ""
        #expect(kid.hasPrefix("ds_") && key["kty"] as? String == "OKP" && key["crv"] as? String == "Ed25519")
        let signature = first.header("Webhook-Signature") ?? ""
        #expect(SubscriptionCredentials.verify(signatureHeader: signature, body: Array(first.body.utf8), keyID: kid, publicKey: key["x"] as? String ?? ""))
        #expect(!SubscriptionCredentials.verify(signatureHeader: signature, body: Array((first.body + " ").utf8), keyID: kid, publicKey: key["x"] as? String ?? ""))
        try await eventually { try await api.link(id, "\(root)/a")?["acked_offset"] as? String == "00000000000000000002" }

        // A consumer that takes the wake and calls back: stale generations and wake ids are fenced.
        receiver.setReply { _ in (200, "{}") }
        _ = try await client.request(.POST, "/v1/stream/\(root)/a", headers: [jsonType], body: #"{"n":2}"#)
        let second = try await receiver.next().json
        let token = second["callback_token"] as? String ?? ""
        let wakeID = second["wake_id"] as? String ?? ""
        #expect(second["generation"] as? Int == 2)
        let stale = try await api.action(id, "callback", token: token, #"{"wake_id":"\#(wakeID)","generation":1}"#)
        #expect(stale.status == 409 && stale.errorCode == "FENCED")
        #expect(try await api.action(id, "callback", token: token, #"{"wake_id":"w_other","generation":2}"#).errorCode == "FENCED")
        let oldToken = wake["callback_token"] as? String ?? ""
        #expect(try await api.action(id, "callback", token: oldToken, #"{"wake_id":"\#(wakeID)","generation":2}"#).errorCode == "FENCED",
                "a token of an older generation is fenced even with a current body")
        let forged = try await api.action(id, "callback", token: "dscb.2.99999999999999.00.00", #"{"wake_id":"\#(wakeID)","generation":2}"#)
        #expect(forged.status == 401 && forged.errorCode == "TOKEN_INVALID")
        #expect(try await api.action(id, "callback", token: nil, "{}").status == 401)
        let past = try await api.action(id, "callback", token: token,
                                        #"{"wake_id":"\#(wakeID)","generation":2,"acks":[{"stream":"\#(root)/a","offset":"00000000000000000009"}]}"#)
        #expect(past.status == 409 && past.errorCode == "INVALID_OFFSET")
        let back = try await api.action(id, "callback", token: token,
                                        #"{"wake_id":"\#(wakeID)","generation":2,"acks":[{"stream":"\#(root)/a","offset":"00000000000000000001"}]}"#)
        #expect(back.errorCode == "INVALID_OFFSET", "an ack never moves a cursor back")
        let progress = try await api.action(id, "callback", token: token,
                                            #"{"wake_id":"\#(wakeID)","generation":2,"acks":[{"stream":"\#(root)/a","offset":"00000000000000000003"}]}"#)
        #expect(progress.status == 200 && progress.json["ok"] as? Bool == true && progress.json["next_wake"] as? Bool == false)
        #expect(try await api.link(id, "\(root)/a")?["acked_offset"] as? String == "00000000000000000003")
        let done = try await api.action(id, "callback", token: token, #"{"wake_id":"\#(wakeID)","generation":2,"done":true}"#)
        #expect(done.status == 200 && done.json["next_wake"] as? Bool == false)
        #expect(try await api.action(id, "callback", token: token, #"{"wake_id":"\#(wakeID)","generation":2,"done":true}"#).errorCode == "FENCED",
                "a finished wake is over")

        // Explicit streams outside the pattern: added at their tail, waking like matches; removed idempotently.
        let other = "x" + root.dropFirst()
        _ = try await client.request(.PUT, "/v1/stream/\(other)/b", headers: [jsonType], body: #"[{"n":0}]"#)
        #expect(try await api.request(.POST, id, "streams", #"{"streams":["\#(other)/b"]}"#).status == 204)
        #expect(try await api.request(.POST, id, "streams", #"{"streams":["\#(other)/b"]}"#).status == 204)
        #expect(try await api.link(id, "\(other)/b")?["link_type"] as? String == "explicit")
        #expect(try await api.link(id, "\(other)/b")?["acked_offset"] as? String == "00000000000000000001")
        receiver.setReply { _ in (200, #"{"done":true}"#) }
        _ = try await client.request(.POST, "/v1/stream/\(other)/b", headers: [jsonType], body: #"{"n":1}"#)
        let third = try await receiver.next().json
        #expect((third["streams"] as? [[String: Any]])?.contains { $0["path"] as? String == "\(other)/b" && $0["has_pending"] as? Bool == true } == true)
        try await eventually { try await api.link(id, "\(other)/b")?["acked_offset"] as? String == "00000000000000000002" }
        #expect(try await api.request(.DELETE, id, "streams/\(other)/b").status == 204)
        #expect(try await api.link(id, "\(other)/b") == nil)
        #expect(try await api.request(.DELETE, id, "streams/\(other)/b").status == 204)
        #expect(try await api.request(.POST, "nope-\(root)", "streams", #"{"streams":["\#(other)/b"]}"#).errorCode == "SUBSCRIPTION_NOT_FOUND")

        // A failing consumer: retried with backoff (1 s, then 2 s, ±20 %) while appends go on; the subscription reads
        // as failed meanwhile. Nothing is lost: the delivery that finally succeeds carries every pending stream.
        let failures = Mutex(0)
        receiver.setReply { _ in failures.withLock { n in n += 1; return n <= 2 } ? (500, "{}") : (200, #"{"done":true}"#) }
        let before = receiver.deliveries.count
        let appended = ContinuousClock.now
        _ = try await client.request(.POST, "/v1/stream/\(root)/a", headers: [jsonType], body: #"{"n":3}"#)
        _ = try await receiver.next()
        let append = try await client.request(.POST, "/v1/stream/\(root)/a", headers: [jsonType], body: #"{"n":4}"#)
        #expect(append.status == 204, "appends are not held up by a failing webhook")
        try await eventually { try await api.get(id).json["status"] as? String == "failed" }
        _ = try await receiver.next(within: .seconds(10))
        _ = try await receiver.next(within: .seconds(10))
        // Two failures, then success. (A fourth delivery may follow: `done` acknowledges the wake's snapshot, taken
        // before {"n":4} arrived, so that record begins the next wake.)
        let attempts = Array(receiver.deliveries.dropFirst(before).prefix(3))
        #expect(attempts.count == 3)
        if attempts.count == 3 {
            #expect(attempts[1].receivedAt - attempts[0].receivedAt >= .milliseconds(750))
            #expect(attempts[2].receivedAt - attempts[1].receivedAt >= .milliseconds(1500))
            #expect(attempts[0].receivedAt - appended < .seconds(5))
            #expect((attempts[2].json["streams"] as? [[String: Any]])?.first { $0["path"] as? String == "\(root)/a" }?["tail_offset"] as? String
                    == "00000000000000000005")
        }
        try await eventually { try await api.link(id, "\(root)/a")?["acked_offset"] as? String == "00000000000000000005" }
        #expect(try await api.get(id).json["status"] as? String == "active")

        // Delete: gone, and deleting again is fine.
        #expect(try await api.request(.DELETE, id, nil).status == 204)
        #expect(try await api.get(id).status == 404)
        #expect(try await api.request(.DELETE, id, nil).status == 204)
    }

    // MARK: Pull-wake

    static func pullWakeChecks(_ client: TestHTTPClient) async throws {
        let api = SubscriptionAPI(client: client)
        let root = "p" + uniqueStream("s").dropFirst(2).replacingOccurrences(of: "-", with: "")
        _ = try await client.request(.PUT, "/v1/stream/\(root)/wake", headers: [jsonType])
        _ = try await client.request(.PUT, "/v1/stream/\(root)/ev/a", headers: [jsonType])
        let id = "pull-" + root
        let created = try await api.put(id, #"{"type":"pull-wake","pattern":"\#(root)/ev/*","wake_stream":"\#(root)/wake","lease_ttl_ms":60000}"#)
        #expect(created.status == 201, "\(created.text)")
        #expect(try await api.action(id, "claim", token: nil, #"{"worker":"w1"}"#).errorCode == "NO_PENDING_WORK")
        #expect(try await api.action(id, "claim", token: nil, "{}").errorCode == "INVALID_REQUEST")

        // An append writes a wake event to the wake stream. A stream created after the subscription is linked from its
        // first record (-1).
        _ = try await client.request(.POST, "/v1/stream/\(root)/ev/a", headers: [jsonType], body: #"{"n":1}"#)
        var events = try await wakeEvents(client, "\(root)/wake", atLeast: 1)
        #expect(events.first?["type"] as? String == "wake" && events.first?["subscription_id"] as? String == id)
        #expect(events.first?["stream"] as? String == "\(root)/ev/a" && events.first?["generation"] as? Int == 1)
        _ = try await client.request(.PUT, "/v1/stream/\(root)/ev/b", headers: [jsonType], body: #"[{"n":1}]"#)
        try await eventually { try await api.link(id, "\(root)/ev/b")?["acked_offset"] as? String == "-1" }

        // Claims: one holder at a time; its token fences acks and releases.
        let claim = try await api.action(id, "claim", token: nil, #"{"worker":"w1"}"#)
        #expect(claim.status == 200 && claim.json["generation"] as? Int == 1 && claim.json["lease_ttl_ms"] as? Int == 60000)
        let token = claim.json["token"] as? String ?? "", wakeID = claim.json["wake_id"] as? String ?? ""
        #expect((claim.json["streams"] as? [[String: Any]])?.count == 2)
        let busy = try await api.action(id, "claim", token: nil, #"{"worker":"w2"}"#)
        #expect(busy.status == 409 && busy.errorCode == "ALREADY_CLAIMED")
        #expect((busy.json["error"] as? [String: Any])?["current_holder"] as? String == "w1")
        #expect(try await api.action(id, "ack", token: token, #"{"wake_id":"\#(wakeID)","generation":7}"#).errorCode == "FENCED")
        #expect(try await api.action(id, "ack", token: "hub_notacallbacktoken", #"{"wake_id":"\#(wakeID)","generation":1}"#).errorCode == "TOKEN_INVALID")
        #expect(try await api.action(id, "ack", token: token, #"{"wake_id":"\#(wakeID)","generation":1,"acks":[{"stream":"\#(root)/ev/a","offset":"nope"}]}"#)
            .errorCode == "INVALID_OFFSET")
        let acked = try await api.action(id, "ack", token: token,
                                         #"{"wake_id":"\#(wakeID)","generation":1,"acks":[{"stream":"\#(root)/ev/a","offset":"00000000000000000001"}]}"#)
        #expect(acked.status == 200 && acked.json["ok"] as? Bool == true)

        // Release: the claim ends unacknowledged, and the pending work wakes again (a new generation, a new event).
        #expect(try await api.action(id, "release", token: token, #"{"wake_id":"\#(wakeID)","generation":1}"#).status == 204)
        events = try await wakeEvents(client, "\(root)/wake", atLeast: 2)
        #expect(events.last?["generation"] as? Int == 2)
        let second = try await api.action(id, "claim", token: nil, #"{"worker":"w2"}"#)
        #expect(second.status == 200 && second.json["generation"] as? Int == 2)
        let t2 = second.json["token"] as? String ?? "", w2 = second.json["wake_id"] as? String ?? ""
        #expect(try await api.action(id, "ack", token: token, #"{"wake_id":"\#(w2)","generation":2}"#).errorCode == "FENCED",
                "the released claim's token no longer works")
        let finish = try await api.action(id, "ack", token: t2, #"""
            {"wake_id":"\#(w2)","generation":2,"done":true,"acks":[{"stream":"\#(root)/ev/a","offset":"00000000000000000001"},{"path":"\#(root)/ev/b","offset":"00000000000000000001"}]}
            """#)
        #expect(finish.status == 200 && finish.json["next_wake"] as? Bool == false)
        #expect(try await api.action(id, "claim", token: nil, #"{"worker":"w4"}"#).errorCode == "NO_PENDING_WORK")
        let state = try await api.get(id).json
        #expect(state["generation"] as? Int == 2)
        #expect((state["streams"] as? [[String: Any]])?.allSatisfy { $0["acked_offset"] as? String == "00000000000000000001" } == true)
        #expect(try await api.action(id, "callback", token: t2, #"{"wake_id":"\#(w2)","generation":2}"#).errorCode == "FENCED")

        // A lease that runs out (1 s, nobody acks) gives the wake up and begins the next one.
        let short = "short-" + root
        _ = try await client.request(.PUT, "/v1/stream/\(root)/wake2", headers: [jsonType])
        _ = try await client.request(.PUT, "/v1/stream/\(root)/solo", headers: [jsonType])
        #expect(try await api.put(short, #"{"type":"pull-wake","streams":["\#(root)/solo"],"wake_stream":"\#(root)/wake2","lease_ttl_ms":1000}"#).status == 201)
        _ = try await client.request(.POST, "/v1/stream/\(root)/solo", headers: [jsonType], body: #"{"n":1}"#)
        _ = try await wakeEvents(client, "\(root)/wake2", atLeast: 1)
        let expiring = try await api.action(short, "claim", token: nil, #"{"worker":"slow"}"#)
        #expect(expiring.status == 200 && expiring.json["generation"] as? Int == 1)
        events = try await wakeEvents(client, "\(root)/wake2", atLeast: 2, within: .seconds(30))
        #expect(events.last?["subscription_id"] as? String == short && events.last?["generation"] as? Int == 2)
        let retaken = try await api.action(short, "claim", token: nil, #"{"worker":"fast"}"#)
        #expect(retaken.status == 200 && retaken.json["generation"] as? Int == 2)
    }

    /// The wake stream's events, once it holds at least `count`.
    static func wakeEvents(_ client: TestHTTPClient, _ stream: String, atLeast count: Int, within limit: Duration = .seconds(20)) async throws -> [[String: Any]] {
        let deadline = ContinuousClock.now + limit
        while true {
            let read = try await client.request(.GET, "/v1/stream/\(stream)?offset=-1")
            let events = (try? JSONSerialization.jsonObject(with: Data(read.text.utf8))) as? [[String: Any]] ?? []
            if events.count >= count { return events }
            guard ContinuousClock.now < deadline else { throw TestFailure("the wake stream holds \(events.count) events, not \(count)") }
            let next = read.header("Stream-Next-Offset") ?? "-1"
            _ = try await client.request(.GET, "/v1/stream/\(stream)?offset=\(next)&live=long-poll")
        }
    }

    // MARK: Durability, bad input, auth, roots

    @Test("subscriptions, cursors, generations and callback tokens survive a restart (SQLite)")
    func durable() async throws {
        let directory = try TemporaryDirectory()
        let (token, wakeID) = try await withRunningHub({ $0.dataDirectory = directory.path }) { hub in
            let api = SubscriptionAPI(client: hub.client)
            _ = try await hub.put("dur/wake", [jsonType])
            _ = try await hub.put("dur/ev", [jsonType], body: #"[{"n":0}]"#)
            #expect(try await api.put("d1", #"{"type":"pull-wake","streams":["dur/ev"],"wake_stream":"dur/wake","lease_ttl_ms":600000}"#).status == 201)
            _ = try await hub.post("dur/ev", [jsonType], body: #"{"n":1}"#)
            let claim = try await api.action("d1", "claim", token: nil, #"{"worker":"w"}"#)
            #expect(claim.status == 200)
            return (claim.json["token"] as? String ?? "", claim.json["wake_id"] as? String ?? "")
        }
        try await withRunningHub({ $0.dataDirectory = directory.path }) { hub in
            let api = SubscriptionAPI(client: hub.client)
            let state = try await api.get("d1").json
            #expect(state["generation"] as? Int == 1)
            #expect(try await api.action("d1", "claim", token: nil, #"{"worker":"x"}"#).errorCode == "ALREADY_CLAIMED")
            let ack = try await api.action("d1", "ack", token: token,
                                           #"{"wake_id":"\#(wakeID)","generation":1,"done":true,"acks":[{"stream":"dur/ev","offset":"00000000000000000002"}]}"#)
            #expect(ack.status == 200, "\(ack.text)")
            #expect(try await api.link("d1", "dur/ev")?["acked_offset"] as? String == "00000000000000000002")
        }
    }

    @Test("two nodes on one PostgreSQL database share subscriptions, wakes, claims and callback tokens")
    func twoNodes() async throws {
        let url = try await PostgresServer.shared.freshDatabase()
        let directories = [try TemporaryDirectory(), try TemporaryDirectory()]
        var nodes: [HubdProcess] = []
        do {
            for directory in directories {
                nodes.append(try await HubdProcess(dataDirectory: directory.path, arguments: ["--auth", "open", "--store", "postgres"],
                                                   environment: ["HUB_POSTGRES_URL": url]))
            }
            for node in nodes { try await node.untilReady() }
            let one = SubscriptionAPI(client: nodes[0].client), two = SubscriptionAPI(client: nodes[1].client)
            _ = try await nodes[0].client.request(.PUT, "/v1/stream/duo/wake", headers: [jsonType])
            _ = try await nodes[0].client.request(.PUT, "/v1/stream/duo/ev", headers: [jsonType])
            #expect(try await one.put("duo", #"{"type":"pull-wake","streams":["duo/ev"],"wake_stream":"duo/wake","lease_ttl_ms":60000}"#).status == 201)
            #expect(try await two.put("duo", #"{"type":"pull-wake","streams":["duo/ev"],"wake_stream":"duo/wake","lease_ttl_ms":60000}"#).status == 200)
            _ = try await nodes[1].client.request(.POST, "/v1/stream/duo/ev", headers: [jsonType], body: #"{"n":1}"#)
            let events = try await Self.wakeEvents(nodes[0].client, "duo/wake", atLeast: 1)
            #expect(events.count == 1 && events[0]["generation"] as? Int == 1, "one wake, whichever node saw the append first")
            let claim = try await two.action("duo", "claim", token: nil, #"{"worker":"w"}"#)
            #expect(claim.status == 200)
            #expect(try await one.action("duo", "claim", token: nil, #"{"worker":"x"}"#).errorCode == "ALREADY_CLAIMED")
            let ack = try await one.action("duo", "ack", token: claim.json["token"] as? String, #"""
                {"wake_id":"\#(claim.json["wake_id"] as? String ?? "")","generation":1,"done":true,"acks":[{"stream":"duo/ev","offset":"00000000000000000001"}]}
                """#)
            #expect(ack.status == 200, "a token issued by one node is good on the other: \(ack.text)")
            #expect(try await two.link("duo", "duo/ev")?["acked_offset"] as? String == "00000000000000000001")
            let keys = try await [nodes[0].client.request(.GET, "/v1/stream/__ds/jwks.json").text, nodes[1].client.request(.GET, "/v1/stream/__ds/jwks.json").text]
            #expect(keys[0] == keys[1], "one signing key for the cluster")
        } catch {
            for node in nodes { _ = await node.terminate() }
            throw error
        }
        for node in nodes { #expect(await node.terminate() == 0) }
    }

    @Test("bad input gets the protocol's status and a problem document; nothing stored changes")
    func badInput() async throws {
        try await withRunningHub { hub in
            let api = SubscriptionAPI(client: hub.client)
            _ = try await hub.put("bad/a", [jsonType], body: #"[{"n":0}]"#)
            let good = #"{"type":"webhook","streams":["bad/a"],"webhook":{"url":"https://hooks.example.com/x"}}"#
            #expect(try await api.put("keep", good).status == 201)
            let before = try await api.get("keep").text
            let invalid: [(String, String)] = [
                ("not json", "INVALID_REQUEST"), ("[]", "INVALID_REQUEST"), (#"{"streams":["bad/a"]}"#, "INVALID_REQUEST"),
                (#"{"type":"webhook","webhook":{"url":"https://h.example.com"}}"#, "INVALID_REQUEST"),
                (#"{"type":"webhook","streams":["bad/a"]}"#, "INVALID_REQUEST"),
                (#"{"type":"pull-wake","streams":["bad/a"]}"#, "INVALID_REQUEST"),
                (#"{"type":"webhook","streams":["bad/a"],"webhook":{"url":"https://h.example.com"},"lease_ttl_ms":999}"#, "INVALID_REQUEST"),
                (#"{"type":"webhook","streams":["bad/a"],"webhook":{"url":"https://h.example.com"},"lease_ttl_ms":600001}"#, "INVALID_REQUEST"),
                (#"{"type":"webhook","pattern":"bad/**x/y","webhook":{"url":"https://h.example.com"}}"#, "INVALID_REQUEST"),
                (#"{"type":"webhook","streams":["bad/../a"],"webhook":{"url":"https://h.example.com"}}"#, "INVALID_REQUEST"),
                (#"{"type":"webhook","streams":["bad/a"],"webhook":{"url":"http://10.0.0.1/hook"}}"#, "WEBHOOK_URL_REJECTED"),
                (#"{"type":"webhook","streams":["bad/a"],"webhook":{"url":"https://169.254.169.254/latest"}}"#, "WEBHOOK_URL_REJECTED"),
                (#"{"type":"webhook","streams":["bad/a"],"webhook":{"url":"https://192.168.1.5/"}}"#, "WEBHOOK_URL_REJECTED"),
                (#"{"type":"webhook","streams":["bad/a"],"webhook":{"url":"https://[fd00::1]/"}}"#, "WEBHOOK_URL_REJECTED"),
                (#"{"type":"webhook","streams":["bad/a"],"webhook":{"url":"http://localhost:9/hook"}}"#, "WEBHOOK_URL_REJECTED"),
                (#"{"type":"webhook","streams":["bad/a"],"webhook":{"url":"http://hooks.example.com/x"}}"#, "WEBHOOK_URL_REJECTED"),
                (#"{"type":"webhook","streams":["bad/a"],"webhook":{"url":"ftp://hooks.example.com/x"}}"#, "WEBHOOK_URL_REJECTED"),
                (#"{"type":"webhook","streams":["bad/a"],"webhook":{"url":"https://user:pw@hooks.example.com/x"}}"#, "WEBHOOK_URL_REJECTED"),
            ]
            for (body, code) in invalid {
                let r = try await api.put("new-one", body)
                #expect(r.status == 400 && r.errorCode == code, "\(body): \(r.status) \(r.text)")
                #expect(r.header("Content-Type") == "application/problem+json" && r.json["status"] as? Int == 400)
            }
            #expect(try await api.get("new-one").status == 404, "no refused PUT created anything")
            #expect(try await hub.client.request(.PATCH, "/v1/stream/__ds/subscriptions/keep").status == 405)
            #expect(try await hub.client.request(.GET, "/v1/stream/__ds/subscriptions/keep/claim").status == 405)
            #expect(try await hub.client.request(.POST, "/v1/stream/__ds/subscriptions/keep/unknown").status == 404)
            #expect(try await hub.client.request(.GET, "/v1/stream/__ds/nothing").status == 404)
            #expect(try await hub.client.request(.GET, "/v1/stream/__ds/subscriptions/bad%2Fid").status == 404)
            #expect(try await hub.post("bad/__ds/x", [jsonType], body: "{}").status == 404, "no stream path holds a __ds segment")
            #expect(try await api.action("keep", "claim", token: nil, #"{"worker":"w"}"#).errorCode == "INVALID_REQUEST", "a webhook is not claimed")
            #expect(try await api.action("missing", "claim", token: nil, #"{"worker":"w"}"#).status == 404)
            #expect(try await api.get("keep").text == before)
            #expect(try await hub.get("bad/a", "offset=-1").text == #"[{"n":0}]"#)
        }
    }

    @Test("auth: consume over what a subscription covers; callback routes take only callback tokens")
    func auth() async throws {
        try await withTokenHub { hub, admin in
            #expect(try await hub.admin(.POST, "slots", token: admin, json: #"{"name":"acme"}"#).status == 201)
            #expect(try await hub.admin(.POST, "slots", token: admin, json: #"{"name":"other"}"#).status == 201)
            let consumer = try await hub.mint(admin, slot: "acme", scopes: ["read", "append", "create", "consume"])
            let reader = try await hub.mint(admin, slot: "acme", scopes: ["read"])
            let api = SubscriptionAPI(client: hub.client, token: consumer.secret)
            let body = #"{"type":"pull-wake","pattern":"acme/ev/*","wake_stream":"acme/wake"}"#
            #expect(try await SubscriptionAPI(client: hub.client).put("a1", body).status == 401)
            #expect(try await SubscriptionAPI(client: hub.client, token: reader.secret).put("a1", body).status == 403)
            #expect(try await api.put("a1", #"{"type":"pull-wake","pattern":"other/*","wake_stream":"acme/wake"}"#).status == 403)
            #expect(try await api.put("a1", #"{"type":"pull-wake","pattern":"**","wake_stream":"acme/wake"}"#).status == 403)
            #expect(try await api.put("a1", #"{"type":"pull-wake","pattern":"acme/*","wake_stream":"other/wake"}"#).status == 403)
            #expect(try await api.put("a1", body).status == 201)
            #expect(try await SubscriptionAPI(client: hub.client, token: reader.secret).get("a1").status == 403)
            #expect(try await SubscriptionAPI(client: hub.client, token: reader.secret).action("a1", "claim", token: nil, #"{"worker":"w"}"#).status == 403)
            let admin = SubscriptionAPI(client: hub.client, token: admin)
            #expect(try await admin.get("a1").status == 200)
            // A hub token is not a callback token: the callback routes do not take it.
            #expect(try await api.action("a1", "ack", token: consumer.secret, #"{"wake_id":"x","generation":1}"#).errorCode == "TOKEN_INVALID")
        }
    }

    @Test("a subscription under a stream root: paths relative to it")
    func streamRoot() async throws {
        try await withRunningHub { hub in
            _ = try await hub.put("rooted/ev/a", [jsonType], body: #"[{"n":0}]"#)
            let r = try await hub.client.request(.PUT, "/v1/stream/rooted/__ds/subscriptions/r1", headers: [jsonType],
                                                 body: #"{"type":"pull-wake","pattern":"ev/*","wake_stream":"wake"}"#)
            #expect(r.status == 201, "\(r.text)")
            #expect((r.json["streams"] as? [[String: Any]])?.first?["path"] as? String == "ev/a")
            #expect(try await hub.client.request(.GET, "/v1/stream/__ds/subscriptions/r1").status == 404, "another root, another namespace")
            _ = try await hub.put("rooted/wake", [jsonType])
            _ = try await hub.post("rooted/ev/a", [jsonType], body: #"{"n":1}"#)
            let events = try await Self.wakeEvents(hub.client, "rooted/wake", atLeast: 1)
            #expect(events.first?["stream"] as? String == "ev/a")
        }
    }
}

/// The subscription routes of one root, with or without a hub token.
struct SubscriptionAPI {
    let client: TestHTTPClient
    var token: String?
    var root = "/v1/stream/__ds/subscriptions/"

    init(client: TestHTTPClient, token: String? = nil) { self.client = client; self.token = token }

    private var auth: [(String, String)] { token.map { [("Authorization", "Bearer \($0)")] } ?? [] }

    func put(_ id: String, _ body: String) async throws -> TestResponse {
        try await client.request(.PUT, root + id, headers: [jsonType] + auth, body: body)
    }
    func get(_ id: String) async throws -> TestResponse { try await client.request(.GET, root + id, headers: auth) }
    func request(_ method: HTTPMethod, _ id: String, _ tail: String?, _ body: String? = nil) async throws -> TestResponse {
        try await client.request(method, root + id + (tail.map { "/" + $0 } ?? ""), headers: [jsonType] + auth, body: body)
    }
    /// `claim` takes the hub token; `callback`, `ack` and `release` the callback token given here.
    func action(_ id: String, _ action: String, token callback: String?, _ body: String) async throws -> TestResponse {
        let headers = action == "claim" ? auth : (callback.map { [("Authorization", "Bearer \($0)")] } ?? [])
        return try await client.request(.POST, root + id + "/" + action, headers: [jsonType] + headers, body: body)
    }
    /// One linked stream as GET reports it.
    func link(_ id: String, _ path: String) async throws -> [String: Any]? {
        (try await get(id).json["streams"] as? [[String: Any]])?.first { $0["path"] as? String == path }
    }
}

extension TestResponse {
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:] }
    /// The protocol's `error.code` (§11).
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
}

@Suite("Webhook URL policy")
struct WebhookURLPolicyTests {
    @Test("addresses by class: loopback, private, link-local and reserved ranges; v4-mapped v6")
    func classes() {
        let cases: [(String, WebhookURLPolicy.AddressClass?)] = [
            ("localhost", .loopback), ("api.localhost", .loopback), ("127.0.0.1", .loopback), ("127.9.9.9", .loopback), ("::1", .loopback),
            ("10.0.0.1", .privateRange), ("172.16.0.1", .privateRange), ("172.31.255.255", .privateRange), ("192.168.0.1", .privateRange),
            ("100.64.0.1", .privateRange), ("fd12::1", .privateRange), ("169.254.169.254", .linkLocal), ("fe80::1", .linkLocal),
            ("0.0.0.0", .reserved), ("224.0.0.1", .reserved), ("255.255.255.255", .reserved), ("::", .reserved), ("ff02::1", .reserved),
            ("::ffff:10.0.0.1", .privateRange), ("::ffff:8.8.8.8", .publicAddress), ("172.32.0.1", .publicAddress), ("8.8.8.8", .publicAddress),
            ("2001:db8::1", .publicAddress), ("hooks.example.com", nil),
        ]
        for (host, expected) in cases { #expect(WebhookURLPolicy.classify(host: host) == expected, "\(host)") }
    }

    @Test("https to public hosts by default; loopback and private ranges only when allowed, link-local never")
    func policy() throws {
        let strict = WebhookURLPolicy(), dev = WebhookURLPolicy(allowLoopback: true), inside = WebhookURLPolicy(allowPrivate: true)
        try strict.check("https://hooks.example.com/x")
        #expect(throws: SubscriptionError.self) { try strict.check("http://hooks.example.com/x") }
        #expect(throws: SubscriptionError.self) { try strict.check("http://127.0.0.1:8080/hook") }
        try dev.check("http://127.0.0.1:8080/hook")
        try dev.check("http://localhost/hook")
        #expect(throws: SubscriptionError.self) { try dev.check("http://10.0.0.1/hook") }
        try inside.check("http://10.0.0.1/hook")
        #expect(throws: SubscriptionError.self) { try inside.check("https://169.254.169.254/") }
        #expect(throws: SubscriptionError.self) { try dev.check("https://[fe80::1]/") }
        #expect(throws: SubscriptionError.self) { try strict.check("not a url") }
    }
}

@Suite("Control paths")
struct ControlPathTests {
    @Test("a __ds segment anywhere is reserved; a segment that only contains __ds is not")
    func reservedSegments() {
        for (path, reserved) in [("__ds", true), ("a/__ds", true), ("a/__ds/b", true), ("__ds/x", true), ("a/__dsx", false), ("a/x__ds", false),
                                 ("a/__d", false), ("a", false), ("a/b/c", false), ("__dsa/b", false)] {
            #expect(StreamsController.holdsReservedSegment(path) == reserved, "\(path)")
        }
    }

    @Test("routes: root, id, action and stream path are parsed; unknown control paths are 404")
    func routes() throws {
        #expect(try SubscriptionRoute.parse(rawPath: "/v1/stream/acme/x") == nil)
        let base = try SubscriptionRoute.parse(rawPath: "/v1/stream/__ds/subscriptions/s1")
        #expect(base?.namespace == "" && base?.key?.id == "s1" && base?.action == .subscription)
        let rooted = try SubscriptionRoute.parse(rawPath: "/v1/stream/acme/app/__ds/subscriptions/s%3A1/streams/ev/a")
        #expect(rooted?.namespace == "acme/app" && rooted?.key?.id == "s:1" && rooted?.action == .stream("ev/a"))
        #expect(try SubscriptionRoute.parse(rawPath: "/v1/stream/__ds/jwks.json")?.action == .jwks)
        for bad in ["/v1/stream/__ds", "/v1/stream/__ds/subscriptions", "/v1/stream/__ds/subscriptions/a%2Fb", "/v1/stream/__ds/subscriptions/s/x",
                    "/v1/stream/Bad/__ds/subscriptions/s", "/v1/stream/__ds/subscriptions/s/streams/"] {
            #expect(throws: HubProblem.self, "\(bad)") { try SubscriptionRoute.parse(rawPath: bad) }
        }
        #expect(SubscriptionRoute.authenticatesItself(rawPath: "/v1/stream/__ds/subscriptions/s/ack"))
        #expect(!SubscriptionRoute.authenticatesItself(rawPath: "/v1/stream/__ds/subscriptions/s/claim"))
    }
}
