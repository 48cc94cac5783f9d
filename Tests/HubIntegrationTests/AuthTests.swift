import Foundation
import HubServer
import HubTestSupport
import NIOHTTP1
import Testing

/// Runs a hub in tokens mode and hands the test the bootstrap admin token.
func withTokenHub(_ configure: @escaping (inout HubConfiguration) -> Void = { _ in },
                  _ body: @Sendable (RunningHub, String) async throws -> Void) async throws {
    try await withRunningHub({ $0.auth = .tokens; configure(&$0) }) { hub in
        let admin = try String(contentsOfFile: hub.dataDirectory + "/admin.token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        try await body(hub, admin)
    }
}

extension RunningHub {
    func admin(_ method: HTTPMethod, _ path: String, token: String?, json: String? = nil) async throws -> TestResponse {
        var headers: [(String, String)] = [("Content-Type", "application/json")]
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        return try await client.request(method, "/v1/admin/" + path, headers: headers, body: json)
    }

    /// Slots `acme` and `other`, and the tokens of the auth matrices: `scopes` on acme, the same on other, read-only
    /// on acme, one revoked, one expired (rotated with no overlap).
    func matrixTokens(_ admin: String, scopes: [String]) async throws
        -> (right: (id: String, secret: String), otherSlot: (id: String, secret: String), readOnly: (id: String, secret: String),
            revoked: (id: String, secret: String), expiring: (id: String, secret: String)) {
        #expect(try await self.admin(.POST, "slots", token: admin, json: #"{"name":"acme"}"#).status == 201)
        #expect(try await self.admin(.POST, "slots", token: admin, json: #"{"name":"other"}"#).status == 201)
        let right = try await mint(admin, slot: "acme", scopes: scopes)
        let otherSlot = try await mint(admin, slot: "other", scopes: scopes)
        let readOnly = try await mint(admin, slot: "acme", scopes: ["read"])
        let revoked = try await mint(admin, slot: "acme", scopes: scopes)
        #expect(try await self.admin(.DELETE, "tokens/\(revoked.id)", token: admin).status == 204)
        let expiring = try await mint(admin, slot: "acme", scopes: scopes)
        #expect(try await self.admin(.POST, "tokens/\(expiring.id)/rotate", token: admin, json: #"{"overlap_s":0}"#).status == 201)
        return (right, otherSlot, readOnly, revoked, expiring)
    }

    /// Mints a token and returns (id, secret).
    func mint(_ admin: String, slot: String, scopes: [String], prefix: String? = nil) async throws -> (id: String, secret: String) {
        let prefixJSON = prefix.map { #","prefix":"\#($0)""# } ?? ""
        let scopesJSON = scopes.map { "\"\($0)\"" }.joined(separator: ",")
        let r = try await self.admin(.POST, "tokens", token: admin, json: #"{"slot":"\#(slot)","scopes":[\#(scopesJSON)],"label":"test"\#(prefixJSON)}"#)
        guard r.status == 201, let doc = try JSONSerialization.jsonObject(with: Data(r.text.utf8)) as? [String: Any],
              let id = doc["id"] as? String, let secret = doc["token"] as? String else { throw TestFailure("mint failed: \(r.status) \(r.text)") }
        return (id, secret)
    }
}

@Suite("Auth: tokens on every surface")
struct AuthTests {
    @Test("first start writes an admin token (0600); its secret appears nowhere in the data directory's files")
    func bootstrap() async throws {
        try await withTokenHub { hub, admin in
            let attributes = try FileManager.default.attributesOfItem(atPath: hub.dataDirectory + "/admin.token")
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            #expect(admin.hasPrefix("hub_") && admin.count == 47)
            _ = try await hub.admin(.POST, "slots", token: admin, json: #"{"name":"grep"}"#)
            let minted = try await hub.mint(admin, slot: "grep", scopes: ["read"])
            for file in try FileManager.default.contentsOfDirectory(atPath: hub.dataDirectory) where file.hasPrefix("hub.db") {
                let data = try Data(contentsOf: URL(fileURLWithPath: hub.dataDirectory + "/" + file))
                #expect(data.range(of: Data(minted.secret.utf8)) == nil, "secret found in \(file)")
                #expect(data.range(of: Data(admin.utf8)) == nil, "admin secret found in \(file)")
            }
        }
    }

    @Test("the matrix: every stream operation × no token, malformed, unknown, expired, revoked, wrong slot, wrong scope, right token")
    func matrix() async throws {
        try await withTokenHub { hub, admin in
            let (right, otherSlot, readOnly, revoked, expiring) = try await hub.matrixTokens(admin, scopes: ["read", "append", "create", "delete"])
            let unknown = "hub_" + String(repeating: "A", count: 43)

            // Each operation on a fresh stream, so the answer is about auth alone.
            func attempt(_ op: String, _ authorization: String?) async throws -> TestResponse {
                let path = "acme/\(uniqueStream())"
                let setup = [("Authorization", "Bearer \(right.secret)"), textType]
                if op != "PUT" { _ = try await hub.put(path, setup, body: "x") }
                var headers = [textType]
                if let authorization { headers.append(("Authorization", authorization)) }
                switch op {
                case "PUT": return try await hub.put(path, headers)
                case "POST": return try await hub.post(path, headers, body: "y")
                case "GET": return try await hub.get(path, headers: headers)
                case "HEAD": return try await hub.client.request(.HEAD, hub.streamURL(path), headers: headers)
                default: return try await hub.client.request(.DELETE, hub.streamURL(path), headers: headers)
                }
            }
            let expectations: [(String, String?, Int, String?)] = [
                ("none", nil, 401, nil),
                ("malformed", "Bearer not-a-token", 401, "invalid_token"),
                ("basic", "Basic dXNlcjpwYXNz", 401, "invalid_token"),
                ("unknown", "Bearer \(unknown)", 401, "invalid_token"),
                ("expired", "Bearer \(expiring.secret)", 401, "invalid_token"),
                ("revoked", "Bearer \(revoked.secret)", 401, "invalid_token"),
                ("wrong slot", "Bearer \(otherSlot.secret)", 403, "insufficient_scope"),
            ]
            for op in ["PUT", "POST", "GET", "HEAD", "DELETE"] {
                for (name, authorization, status, error) in expectations {
                    let r = try await attempt(op, authorization)
                    #expect(r.status == status, "\(op) with \(name) token: \(r.status)")
                    if let error { #expect(r.header("WWW-Authenticate")?.contains("error=\"\(error)\"") == true, "\(op) \(name)") }
                    else { #expect(r.header("WWW-Authenticate")?.hasPrefix("Bearer") == true) }
                    if op != "HEAD" { #expect(r.header("Content-Type") == "application/problem+json", "\(op) \(name)") }
                }
                let scoped = try await attempt(op, "Bearer \(readOnly.secret)")
                #expect(scoped.status == (op == "GET" || op == "HEAD" ? 200 : 403), "\(op) with a read-only token: \(scoped.status)")
                let ok = try await attempt(op, "Bearer \(right.secret)")
                #expect((200...204).contains(ok.status), "\(op) with the right token: \(ok.status)")
            }
        }
    }

    @Test("the matrix on the live surfaces: events append/list/follow, slot state, WebSocket and consumers, checked before any upgrade")
    func liveMatrix() async throws {
        try await withTokenHub { hub, admin in
            let (right, otherSlot, readOnly, revoked, expiring) = try await hub.matrixTokens(admin, scopes: ["read", "append", "create", "delete", "consume"])
            #expect(try await hub.postEvents("acme", #"{"n":0}"#, token: right.secret).status == 200)
            let upgrade = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]

            /// Status of one operation; `.ok` answers are taken as far as needed to know they succeeded.
            func attempt(_ op: String, _ authorization: String?) async throws -> (status: Int, wwwAuthenticate: String?, problem: Bool) {
                var headers: [(String, String)] = authorization.map { [("Authorization", $0)] } ?? []
                let r: TestResponse
                switch op {
                case "events POST": r = try await hub.client.request(.POST, "/v1/events/acme", headers: headers + [jsonType], body: "{}")
                case "events GET": r = try await hub.client.request(.GET, "/v1/events/acme?since=0", headers: headers)
                case "state": r = try await hub.client.request(.GET, "/v1/slot/acme/state", headers: headers)
                case "follow":
                    let status = LockedBox<Int>()
                    try await hub.sse("/v1/events/acme/stream?since=0", headers: headers, onHead: { status.set(Int($0.status.code)) }) { _ in false }
                    if status.value == 200 { return (200, nil, false) }
                    r = try await hub.client.request(.GET, "/v1/events/acme/stream?since=0", headers: headers)
                case "ws", "consumer":
                    let query = op == "ws" ? "slot=acme" : "slot=acme&consumer=c1"
                    headers += upgrade
                    if let socket = try? await RawWebSocket.upgrade(port: hub.port, path: "/v1/ws?\(query)", headers: headers.filter { $0.0 == "Authorization" }) {
                        _ = socket
                        return (101, nil, false)
                    }
                    r = try await hub.client.request(.GET, "/v1/ws?\(query)", headers: headers)
                default: fatalError(op)
                }
                return (r.status, r.header("WWW-Authenticate"), r.header("Content-Type") == "application/problem+json")
            }
            let failures: [(String, String?, Int, String?)] = [
                ("none", nil, 401, nil),
                ("malformed", "Bearer not-a-token", 401, "invalid_token"),
                ("unknown", "Bearer hub_" + String(repeating: "A", count: 43), 401, "invalid_token"),
                ("expired", "Bearer \(expiring.secret)", 401, "invalid_token"),
                ("revoked", "Bearer \(revoked.secret)", 401, "invalid_token"),
                ("wrong slot", "Bearer \(otherSlot.secret)", 403, "insufficient_scope"),
            ]
            let success = ["events POST": 200, "events GET": 200, "state": 200, "follow": 200, "ws": 101, "consumer": 101]
            for op in ["events POST", "events GET", "state", "follow", "ws", "consumer"] {
                for (name, authorization, status, error) in failures {
                    let r = try await attempt(op, authorization)
                    #expect(r.status == status && r.problem, "\(op) with \(name) token: \(r.status)")
                    if let error { #expect(r.wwwAuthenticate?.contains("error=\"\(error)\"") == true, "\(op) \(name)") }
                }
                let scoped = try await attempt(op, "Bearer \(readOnly.secret)")
                let readable = ["events GET", "state", "follow", "ws"].contains(op)
                #expect(scoped.status == (readable ? success[op]! : 403), "\(op) with a read-only token: \(scoped.status)")
                #expect(try await attempt(op, "Bearer \(right.secret)").status == success[op]!, "\(op) with the right token")
            }
        }
    }

    @Test("admin API: needs an admin token; slot admins reach only their slot; bad bodies are 400 and change nothing")
    func adminAPI() async throws {
        try await withTokenHub { hub, admin in
            #expect(try await hub.admin(.GET, "slots", token: nil).status == 401)
            #expect(try await hub.admin(.POST, "slots", token: admin, json: #"{"name":"Bad Name"}"#).status == 400)
            #expect(try await hub.admin(.POST, "slots", token: admin, json: #"{"name":"s1","retention":{"max_age_s":-5}}"#).status == 400)
            #expect(try await hub.admin(.POST, "slots", token: admin, json: "{not json").status == 400)
            #expect(try await hub.admin(.GET, "slots", token: admin).text == #"{"items":[]}"#)
            let created = try await hub.admin(.POST, "slots", token: admin,
                                              json: #"{"name":"s1","retention":{"max_records":100},"anonymous":{"read":true}}"#)
            #expect(created.status == 201 && created.text.contains(#""max_records":100"#) && created.text.contains(#""read":true"#))
            #expect(try await hub.admin(.POST, "slots", token: admin, json: #"{"name":"s1"}"#).status == 409)
            #expect(try await hub.admin(.POST, "tokens", token: admin, json: #"{"slot":"s1","scopes":["fly"],"label":"x"}"#).status == 400)
            #expect(try await hub.admin(.POST, "tokens", token: admin, json: #"{"slot":"nope","scopes":["read"],"label":"x"}"#).status == 404)
            #expect(try await hub.admin(.POST, "tokens", token: admin, json: #"{"slot":"s1","scopes":["read"],"label":"x","prefix":"other/x"}"#).status == 400)

            let slotAdmin = try await hub.mint(admin, slot: "s1", scopes: ["admin"])
            #expect(try await hub.admin(.GET, "slots", token: slotAdmin.secret).text.contains(#""name":"s1""#))
            #expect(try await hub.admin(.POST, "slots", token: slotAdmin.secret, json: #"{"name":"s2"}"#).status == 403)
            #expect(try await hub.admin(.POST, "tokens", token: slotAdmin.secret, json: #"{"slot":"*","scopes":["admin"],"label":"escalate"}"#).status == 403)
            let reader = try await hub.mint(slotAdmin.secret, slot: "s1", scopes: ["read"])
            #expect(try await hub.admin(.GET, "slots", token: reader.secret).status == 403)

            // Anonymous read on s1 is allowed by the slot flag; anonymous append is not.
            #expect(try await hub.put("s1/feed", [textType, ("Authorization", "Bearer \(slotAdmin.secret)")], body: "hi").status == 201)
            #expect(try await hub.get("s1/feed").text == "hi")
            #expect(try await hub.post("s1/feed", body: "x").status == 401)
            #expect(try await hub.admin(.PATCH, "slots/s1", token: admin, json: #"{"anonymous":{"read":false}}"#).status == 200)
            #expect(try await hub.get("s1/feed").status == 401, "the flag change applies at once")

            // Creating a stream in a slot that does not exist is refused in tokens mode.
            let global = try await hub.mint(admin, slot: "*", scopes: ["create"])
            #expect(try await hub.put("ghost/x", [textType, ("Authorization", "Bearer \(global.secret)")]).status == 404)

            let streams = try await hub.admin(.GET, "streams?slot=s1", token: admin)
            #expect(streams.status == 200 && streams.text.contains(#""path":"s1\/feed""#))
            let audit = try await hub.admin(.GET, "audit", token: admin)
            #expect(audit.text.contains("slot.create") && audit.text.contains("token.mint") && audit.text.contains("slot.update"))
            #expect(!audit.text.contains(reader.secret))
            let tokens = try await hub.admin(.GET, "tokens", token: admin)
            #expect(tokens.text.contains(#""last_used_address":"127.0.0.1""#), "use is recorded with the client address")
            #expect(tokens.text.contains(reader.id) && !tokens.text.contains(reader.secret), "listings never show secrets")
            #expect(try await hub.admin(.DELETE, "slots/s1", token: admin).status == 204)
            #expect(try await hub.get("s1/feed", headers: [("Authorization", "Bearer \(admin)")]).status == 404)
            #expect(try await hub.get("s1/feed", headers: [("Authorization", "Bearer \(reader.secret)")]).status == 401,
                    "deleting a slot deletes its tokens")
        }
    }

    @Test("rotation keeps the old secret valid only for its overlap window; revocation applies on the next request")
    func rotation() async throws {
        try await withTokenHub { hub, admin in
            _ = try await hub.admin(.POST, "slots", token: admin, json: #"{"name":"rot"}"#)
            let old = try await hub.mint(admin, slot: "rot", scopes: ["create", "read"])
            #expect(try await hub.put("rot/a", [textType, ("Authorization", "Bearer \(old.secret)")]).status == 201)
            let rotated = try await hub.admin(.POST, "tokens/\(old.id)/rotate", token: admin, json: #"{"overlap_s":3600}"#)
            let doc = try JSONSerialization.jsonObject(with: Data(rotated.text.utf8)) as? [String: Any]
            let new = try #require(doc?["token"] as? String)
            #expect(doc?["rotated_from"] as? String == old.id)
            #expect(try await hub.get("rot/a", headers: [("Authorization", "Bearer \(old.secret)")]).status == 200, "inside the overlap")
            #expect(try await hub.get("rot/a", headers: [("Authorization", "Bearer \(new)")]).status == 200)
            let newID = try #require(doc?["id"] as? String)
            #expect(try await hub.admin(.POST, "tokens/\(newID)/rotate", token: admin, json: #"{"overlap_s":0}"#).status == 201)
            #expect(try await hub.get("rot/a", headers: [("Authorization", "Bearer \(new)")]).status == 401, "no overlap: gone at once")
            #expect(try await hub.admin(.DELETE, "tokens/\(old.id)", token: admin).status == 204)
            #expect(try await hub.get("rot/a", headers: [("Authorization", "Bearer \(old.secret)")]).status == 401)
            #expect(try await hub.admin(.DELETE, "tokens/\(old.id)", token: admin).status == 404)
        }
    }

    @Test("tokens in query strings are refused")
    func queryTokens() async throws {
        try await withTokenHub { hub, admin in
            let r = try await hub.client.request(.GET, "/v1/admin/slots?access_token=\(admin)")
            #expect(r.status == 401 && r.text.contains("token-in-query"))
        }
    }

    @Test("tickets: a token buys a single-use ticket for one path and scope; it works once, only there")
    func tickets() async throws {
        try await withTokenHub { hub, admin in
            _ = try await hub.admin(.POST, "slots", token: admin, json: #"{"name":"tk"}"#)
            let writer = try await hub.mint(admin, slot: "tk", scopes: ["create", "read"])
            #expect(try await hub.put("tk/feed", [textType, ("Authorization", "Bearer \(writer.secret)")], body: "hello").status == 201)
            #expect(try await hub.put("tk/other", [textType, ("Authorization", "Bearer \(writer.secret)")], body: "x").status == 201)
            let issued = try await hub.client.request(.POST, "/v1/tickets", headers: [("Authorization", "Bearer \(writer.secret)")],
                                                      body: #"{"path":"/v1/stream/tk/feed","scope":"read"}"#)
            #expect(issued.status == 201)
            let ticket = try #require((try JSONSerialization.jsonObject(with: Data(issued.text.utf8)) as? [String: Any])?["ticket"] as? String)
            #expect(try await hub.get("tk/other", "ticket=\(ticket)").status == 403, "bound to one path (and used up by trying)")
            let again = try await hub.client.request(.POST, "/v1/tickets", headers: [("Authorization", "Bearer \(writer.secret)")],
                                                     body: #"{"path":"tk/feed"}"#)
            let second = try #require((try JSONSerialization.jsonObject(with: Data(again.text.utf8)) as? [String: Any])?["ticket"] as? String)
            #expect(try await hub.get("tk/feed", "ticket=\(second)").text == "hello")
            #expect(try await hub.get("tk/feed", "ticket=\(second)").status == 401, "single use")
            #expect(try await hub.post("tk/feed", [textType], body: "x").status == 401)
            let noAppend = try await hub.client.request(.POST, "/v1/tickets", headers: [("Authorization", "Bearer \(writer.secret)")],
                                                        body: #"{"path":"tk/feed","scope":"append"}"#)
            #expect(noAppend.status == 403, "a ticket never grants more than its token")
            #expect(try await hub.client.request(.POST, "/v1/tickets", body: #"{"path":"tk/feed"}"#).status == 401)
        }
    }

    @Test("rate limits: anonymous requests per address, authenticated ones per token, 429 with Retry-After")
    func rateLimits() async throws {
        // Rates so low that no bucket refills during the test, however slowly a loaded machine runs it.
        try await withTokenHub({ $0.rateLimitAddress = 0.01; $0.rateLimitToken = 0.01 }) { hub, admin in
            var statuses: [Int] = []
            for _ in 0..<4 { statuses.append(try await hub.get("nobody/x").status) }
            #expect(statuses.contains(401) && statuses.last == 429)
            let limited = try await hub.get("nobody/x")
            #expect(limited.status == 429 && Int(limited.header("Retry-After") ?? "") ?? 0 >= 1)
            var adminStatuses: [Int] = []
            for _ in 0..<6 { adminStatuses.append(try await hub.admin(.GET, "slots", token: admin).status) }
            #expect(adminStatuses.first == 200 && adminStatuses.last == 429, "\(adminStatuses)")
        }
    }

    @Test("the local admin socket: admin without a token, for the socket's owner only")
    func adminSocket() async throws {
        try await withTokenHub { hub, _ in
            let socket = hub.dataDirectory + "/admin.sock"
            let attributes = try FileManager.default.attributesOfItem(atPath: socket)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            let local = TestHTTPClient(unixSocket: socket)
            let created = try await local.request(.POST, "/v1/admin/slots", headers: [("Content-Type", "application/json")], body: #"{"name":"viasocket"}"#)
            #expect(created.status == 201)
            let audit = try await local.request(.GET, "/v1/admin/audit")
            #expect(audit.text.contains(#""actor":"local""#))
        }
    }

    @Test("stats, config and an online backup taken while appends continue")
    func operations() async throws {
        try await withTokenHub { hub, admin in
            _ = try await hub.admin(.POST, "slots", token: admin, json: #"{"name":"ops"}"#)
            let auth = ("Authorization", "Bearer \(admin)")
            #expect(try await hub.put("ops/log", [textType, auth], body: "a").status == 201)
            let stats = try await hub.admin(.GET, "stats", token: admin)
            #expect(stats.status == 200 && stats.text.contains(#""slots":1"#) && stats.text.contains(#""streams":1"#))
            let config = try await hub.admin(.GET, "config", token: admin)
            #expect(config.text.contains(#""auth":"tokens""#) && !config.text.contains("hub_"))
            #expect(try await hub.admin(.POST, "backup", token: admin, json: #"{"path":"relative.db"}"#).status == 422)
            let target = hub.dataDirectory + "/backup-\(uniqueStream()).db"
            let appender = Task {
                for i in 0..<200 { _ = try await hub.post("ops/log", [textType, auth], body: "\(i);") }
            }
            let backup = try await hub.admin(.POST, "backup", token: admin, json: #"{"path":"\#(target)"}"#)
            try await appender.value
            #expect(backup.status == 201, "\(backup.text)")
            #expect(fileMode(target) == 0o600, "a backup holds every message: the owner's alone")
            #expect(try await hub.admin(.POST, "backup", token: admin, json: #"{"path":"\#(target)"}"#).status == 422, "never overwrites")
            #expect(try await hub.admin(.GET, "audit", token: admin).text.contains(#""action":"backup""#))
            // The copy is a complete, consistent database that a hub can open.
            let copyDir = hub.dataDirectory + "/restore-\(uniqueStream())"
            try FileManager.default.createDirectory(atPath: copyDir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: target, toPath: copyDir + "/hub.db")
            try await withRunningHub({ $0.auth = .open; $0.dataDirectory = copyDir }) { restored in
                let text = try await restored.get("ops/log").text
                #expect(text.hasPrefix("a"), "the stream as of the snapshot: \(text.prefix(20))")
            }
        }
    }

    @Test("request logs carry a request id and the token id, never a secret")
    func logs() async throws {
        let directory = try TemporaryDirectory()
        let hubd = try await HubdProcess(dataDirectory: directory.path, arguments: ["--log-level", "debug"])
        let admin = try String(contentsOfFile: directory.path + "/admin.token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let slots = try await hubd.client.request(.GET, "/v1/admin/slots", headers: [("Authorization", "Bearer \(admin)")])
        #expect(slots.status == 200)
        _ = try await hubd.client.request(.GET, "/v1/admin/slots?ticket=tkt_" + String(repeating: "x", count: 43))
        #expect(await hubd.terminate() == 0)
        let lines = hubd.logLines
        let request = lines.first { $0.contains("request") && $0.contains("http.path=/v1/admin/slots") && $0.contains("hub.token=tok_") }
        #expect(request?.contains("hb.request.id=") == true, "\(lines.suffix(5))")
        #expect(!lines.contains { $0.contains(admin) || $0.range(of: "hub_[A-Za-z0-9_-]{43}", options: .regularExpression) != nil },
                "no secret in any log line")
        #expect(!lines.contains { $0.contains("tkt_") }, "query strings are never logged")
    }
}
