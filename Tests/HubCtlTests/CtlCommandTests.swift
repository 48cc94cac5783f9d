import HubProtocol
import CSQLite
import Foundation
@testable import HubCtl
import HubCore
import HubServer
import HubTestSupport
import Logging
import Testing
import WSClient

/// Every hubctl command against a real hub (in-process, SQLite in a temporary directory), through the admin
/// socket and, for remote use, over HTTP with tokens. Output and exit codes are checked exactly.
@Suite("hubctl commands")
struct CtlCommandTests {
    @Test("slot: create, list, change one setting, show as JSON, refuse bad input, delete")
    func slots() async throws {
        try await withCtlHub { _, env in
            var r = await hubctl(["slot", "create", "acme", "--max-age", "7d", "--max-records", "1000"], env)
            #expect(r.code == 0, "\(r)")
            #expect(r.lines.contains("retention:       age 7d, records 1000"), "\(r)")
            #expect(r.err == "created slot acme\n")
            #expect(r.transcript.hasPrefix("created slot acme\n"), "the confirmation comes before the details: \(r.transcript)")
            r = await hubctl(["slot", "ls"], env)
            #expect(r.lines.count == 2 && r.lines[0].hasPrefix("NAME  STREAMS") && r.lines[1].hasPrefix("acme  0"), "\(r)")
            // One retention value changes; the others stay (the API replaces groups, hubctl merges).
            r = await hubctl(["slot", "set", "acme", "--max-age", "none", "--max-bytes", "1G", "--anonymous-read", "true"], env)
            #expect(r.code == 0, "\(r)")
            r = await hubctl(["slot", "show", "acme", "--json"], env)
            let slot = try JSONValue.parse(Array(r.out.utf8))
            #expect(slot["retention"] == .object(["max_bytes": .int(1 << 30), "max_records": .int(1000)]))
            #expect(slot["anonymous"]?["read"] == .bool(true))

            r = await hubctl(["slot", "create", "acme"], env)
            #expect(r.code == 1 && r.err.contains("409"), "\(r)")
            r = await hubctl(["slot", "create", "Bad!"], env)
            #expect(r.code == 1 && r.err.contains("400"), "\(r)")
            r = await hubctl(["slot", "create", "x", "--max-age", "5x"], env)
            #expect(r.code == 64 && r.err.contains("--max-age: '5x' is not a duration"), "\(r)")
            r = await hubctl(["slot", "set", "acme"], env)
            #expect(r.code == 64 && r.err.contains("at least one setting"), "\(r)")
            r = await hubctl(["slot", "rm", "acme"], env)
            #expect(r.code == 64 && r.err.contains("add --yes"), "\(r)")
            r = await hubctl(["slot", "rm", "acme", "--yes"], env)
            #expect(r.code == 0 && r.err == "deleted slot acme\n", "\(r)")
            r = await hubctl(["slot", "show", "acme"], env)
            #expect(r.code == 1 && r.err.contains("404 slot-not-found"), "\(r)")
            r = await hubctl(["slot", "ls"], env)
            #expect(r.code == 0 && r.out.isEmpty && r.err == "no slots\n", "\(r)")
        }
    }

    @Test("token: mint prints only the secret, which works remotely; rotate and revoke stop the old one")
    func tokens() async throws {
        try await withCtlHub { hub, env in
            #expect(await hubctl(["slot", "create", "acme"], env).code == 0)
            var r = await hubctl(["token", "mint", "--slot", "acme", "--scope", "read,append", "--label", "svc"], env)
            #expect(r.code == 0 && r.lines.count == 1 && r.lines[0].hasPrefix("hub_"), "\(r)")
            #expect(r.err.contains("for slot acme (append,read); the secret is shown only this once"), "\(r)")
            let secret = r.lines[0]
            let remote = ["HUB_URL": "http://127.0.0.1:\(hub.port)", "HUB_TOKEN": secret]
            r = await hubctl(["publish", "acme", #"{"n":1}"#], remote)
            #expect(r.code == 0 && r.out == "1\n", "\(r)")
            r = await hubctl(["slot", "ls"], remote)
            #expect(r.code == 1 && r.err.contains("403"), "\(r)")

            r = await hubctl(["token", "ls", "--slot", "acme"], env)
            let row = try #require(r.lines.first { $0.contains("svc") }, "\(r)")
            #expect(row.contains("append,read") && row.hasSuffix("active"))
            let id = String(row.prefix(while: { $0 != " " }))

            r = await hubctl(["token", "rotate", id], env)
            #expect(r.code == 0 && r.lines.count == 1 && r.lines[0].hasPrefix("hub_") && r.lines[0] != secret, "\(r)")
            let rotated = r.lines[0]
            r = await hubctl(["publish", "acme", #"{"n":2}"#], remote)
            #expect(r.code == 1 && r.err.contains("401"), "the old secret stopped at once: \(r)")
            let newRemote = ["HUB_URL": "http://127.0.0.1:\(hub.port)", "HUB_TOKEN": rotated]
            #expect(await hubctl(["publish", "acme", #"{"n":2}"#], newRemote).code == 0)

            r = await hubctl(["token", "ls", "--json"], env)
            let items = try JSONValue.parse(Array(r.out.utf8))["items"]?.array ?? []
            let newID = try #require(items.first { $0["rotated_from"]?.string == id }?["id"]?.string)
            r = await hubctl(["token", "revoke", newID], env)
            #expect(r.code == 0 && r.err == "revoked \(newID)\n", "\(r)")
            #expect(await hubctl(["publish", "acme", #"{"n":3}"#], newRemote).code == 1)
            r = await hubctl(["token", "revoke", newID], env)
            #expect(r.code == 1 && r.err.contains("token-not-found"), "\(r)")

            r = await hubctl(["token", "mint", "--slot", "acme", "--scope", "read,bogus", "--label", "x"], env)
            #expect(r.code == 64 && r.err.contains("unknown scope 'bogus'"), "\(r)")
            r = await hubctl(["token", "mint", "--scope", "read", "--label", "x"], env)
            #expect(r.code == 64 && r.err.contains("--slot"), "\(r)")
            r = await hubctl(["token", "mint", "--slot", "acme", "--scope", "read"], env)
            #expect(r.code == 64 && r.err.contains("--label"), "\(r)")
        }
    }

    @Test("publish and tail: events and stream messages print exactly as stored")
    func publishAndTail() async throws {
        try await withCtlHub { _, env in
            #expect(await hubctl(["slot", "create", "acme"], env).code == 0)
            var r = await hubctl(["publish", "acme", #"{"type":"order.created","total":42}"#], env)
            #expect(r.code == 0 && r.out == "1\n", "\(r)")
            r = await hubctl(["publish", "acme", "--type", "note", "--id", "k1"], env, input: #"[{"n":1},{"n":2}]"#)
            #expect(r.code == 0 && r.out == "2\n3\n", "\(r)")
            r = await hubctl(["publish", "acme", "--type", "note", "--id", "k1", #"[{"n":1},{"n":2}]"#], env)
            #expect(r.code == 0 && r.out == "2\n3\n", "a retried key is stored once: \(r)")

            r = await hubctl(["tail", "acme"], env)
            #expect(r.code == 0, "\(r)")
            #expect(r.lines == [#"1 order.created {"type":"order.created","total":42}"#, #"2 note {"n":1}"#, #"3 note {"n":2}"#])
            r = await hubctl(["tail", "acme", "--since", "2", "--json"], env)
            #expect(r.lines == [#"{"seq":3,"event":"note","data":{"n":2}}"#], "\(r)")
            r = await hubctl(["tail", "acme", "-n", "1"], env)
            #expect(r.lines == [#"3 note {"n":2}"#], "\(r)")

            r = await hubctl(["stream", "create", "acme/orders", "--content-type", "application/json"], env)
            #expect(r.code == 0 && r.err == "created stream acme/orders\n", "\(r)")
            r = await hubctl(["publish", "acme/orders", #"[{"a":1},{"b":2}]"#], env)
            #expect(r.code == 0 && r.out == "00000000000000000002\n", "\(r)")
            r = await hubctl(["tail", "acme/orders", "--from", "-1"], env)
            #expect(r.lines == [#"{"a":1}"#, #"{"b":2}"#], "\(r)")
            r = await hubctl(["tail", "acme/orders", "--from", "1", "--json"], env)
            #expect(r.lines == [#"{"offset":"00000000000000000001","data":{"b":2}}"#], "\(r)")

            #expect(await hubctl(["stream", "create", "acme/log", "--content-type", "text/plain"], env).code == 0)
            #expect(await hubctl(["publish", "acme/log", "hello\n"], env).code == 0)
            #expect(await hubctl(["publish", "acme/log"], env, input: "world\n").code == 0)
            r = await hubctl(["tail", "acme/log", "--from", "-1"], env)
            #expect(r.code == 0 && r.out == "hello\nworld\n", "\(r)")

            r = await hubctl(["stream", "info", "acme/orders"], env)
            #expect(r.lines.contains("records:      2") && r.lines.contains("state:        open"), "\(r)")
            r = await hubctl(["stream", "close", "acme/orders"], env)
            #expect(r.code == 0 && r.err == "closed stream acme/orders at offset 00000000000000000002\n", "\(r)")
            r = await hubctl(["publish", "acme/orders", #"{"c":3}"#], env)
            #expect(r.code == 1 && r.err.contains("409 stream-closed"), "\(r)")
            r = await hubctl(["stream", "ls", "--slot", "acme"], env)
            #expect(r.lines.contains { $0.hasPrefix("acme/orders ") && $0.contains(" closed ") }, "\(r)")
            let positional = await hubctl(["stream", "ls", "acme"], env)
            #expect(positional.code == 0 && positional.out == r.out, "the slot as a positional argument: \(positional)")
            r = await hubctl(["stream", "ls", "acme", "--slot", "other"], env)
            #expect(r.code == 64 && r.err.contains("the slot is given twice"), "\(r)")
            r = await hubctl(["stream", "rm", "acme/log", "--yes"], env)
            #expect(r.code == 0, "\(r)")
            r = await hubctl(["tail", "acme/log"], env)
            #expect(r.code == 1 && r.err.contains("404"), "\(r)")

            r = await hubctl(["publish", "acme", ""], env)
            #expect(r.code == 64 && r.err.contains("no data"), "\(r)")
            r = await hubctl(["publish", "acme", "not json"], env)
            #expect(r.code == 1 && r.err.contains("400"), "\(r)")
            r = await hubctl(["publish", "nope", "{}"], env)
            #expect(r.code == 1 && r.err.contains("404"), "\(r)")
            r = await hubctl(["publish", "acme/orders", "--type", "x", "{}"], env)
            #expect(r.code == 64, "\(r)")
        }
    }

    @Test("tail -f survives kill -9 and a restart of hubd, and prints every event exactly once")
    func tailFollowReconnects() async throws {
        let directory = try TemporaryDirectory()
        var hubd = try await HubdProcess(dataDirectory: directory.path, arguments: ["--auth", "open"])
        let env = ["HUB_SOCKET": directory.path + "/admin.sock"]
        #expect(await hubctl(["slot", "create", "live"], env).code == 0)
        #expect(await hubctl(["publish", "live", #"{"n":1}"#], env).code == 0)
        #expect(await hubctl(["stream", "create", "live/s", "--content-type", "application/json"], env).code == 0)
        #expect(await hubctl(["publish", "live/s", #"{"m":1}"#], env).code == 0)
        // One follower of the slot's events (SSE), one of a stream (long-poll). Seqs count every stream of the slot.
        let events = LineTerminal(environment: env)
        let messages = LineTerminal(environment: env)
        let tails = [
            Task { await HubCtl.main(["tail", "live", "-f", "--since", "0", "--max-backoff", "1"], terminal: events.terminal) },
            Task { await HubCtl.main(["tail", "live/s", "-f", "--from", "-1", "--max-backoff", "1"], terminal: messages.terminal) },
        ]
        var eventLines = events.lines.makeAsyncIterator()
        var messageLines = messages.lines.makeAsyncIterator()
        #expect(await eventLines.next() == #"1 message {"n":1}"#)
        #expect(await messageLines.next() == #"{"m":1}"#)
        #expect(await hubctl(["publish", "live", #"{"n":2}"#], env).code == 0)
        #expect(await eventLines.next() == #"3 message {"n":2}"#)

        await hubd.kill9()
        hubd = try await HubdProcess(dataDirectory: directory.path, arguments: ["--auth", "open"])
        #expect(await hubctl(["publish", "live", #"{"n":3}"#], env).code == 0)
        #expect(await hubctl(["publish", "live/s", #"{"m":2}"#], env).code == 0)
        #expect(await eventLines.next() == #"4 message {"n":3}"#)
        #expect(await messageLines.next() == #"{"m":2}"#)
        #expect(await hubctl(["publish", "live", #"{"n":4}"#], env).code == 0)
        #expect(await hubctl(["publish", "live/s", #"{"m":3}"#], env).code == 0)
        #expect(await eventLines.next() == #"6 message {"n":4}"#, "nothing was printed twice in between")
        #expect(await messageLines.next() == #"{"m":3}"#, "nothing was printed twice in between")
        #expect(events.stderr.contains("reconnecting in") && messages.stderr.contains("reconnecting in"), "\(events.stderr)\n\(messages.stderr)")

        let r = await hubctl(["tail", "live", "--since", "0"], env)
        #expect(r.code == 0 && r.lines == [#"1 message {"n":1}"#, #"3 message {"n":2}"#, #"4 message {"n":3}"#, #"6 message {"n":4}"#],
                "ends at the head even when the slot's last seq is another stream's: \(r)")

        for tail in tails { tail.cancel() }
        _ = await hubd.terminate()
        for tail in tails { _ = await tail.value }
    }

    @Test("exit codes: 2 unreachable, 64 usage, 78 configuration, 0 for help, version and completions")
    func exitCodes() async throws {
        var r = await hubctl(["status"], ["HUB_SOCKET": "/nonexistent/admin.sock"])
        #expect(r.code == 2 && r.err.contains("no admin socket at /nonexistent/admin.sock"), "\(r)")
        r = await hubctl(["status", "--url", "http://127.0.0.1:1", "--timeout", "1"], [:])
        #expect(r.code == 2 && r.err.contains("cannot reach the hub"), "\(r)")
        r = await hubctl(["status", "--url", "ftp://example.com"], [:])
        #expect(r.code == 64 && r.err.contains("--url must be an http"), "\(r)")
        r = await hubctl(["status"], ["HUB_CONFIG": "/nonexistent/hub.yaml"])
        #expect(r.code == 78 && r.err.contains("cannot read /nonexistent/hub.yaml"), "\(r)")
        for arguments in [["frobnicate"], ["slot", "create"], ["status", "--timeout", "0"], ["tail", "acme", "--from", "x"],
                          ["tail", "acme/x", "--since", "3"], ["bench", "--size", "10"], ["status", "--url", "http://a", "--socket", "/b"]] {
            r = await hubctl(arguments, [:])
            #expect(r.code == 64 && !r.err.isEmpty, "\(arguments): \(r)")
        }
        r = await hubctl(["--version"], [:])
        #expect(r.code == 0 && r.out == HubVersion.current + "\n", "\(r)")
        r = await hubctl(["--help"], [:])
        #expect(r.code == 0 && r.out.contains("Exit codes: 0 done; 1 the hub refused"), "\(r)")
        r = await hubctl(["tail", "--help"], [:])
        #expect(r.code == 0 && r.out.contains("hubctl tail acme -f"), "\(r)")
        r = await hubctl(["--generate-completion-script", "bash"], [:])
        #expect(r.code == 0 && r.out.contains("_hubctl"), "\(r)")

        // The binary's thin main passes the same codes to the shell.
        let binary = URL(fileURLWithPath: HubdProcess.binary).deletingLastPathComponent().appendingPathComponent("hubctl").path
        let (unreachable, message) = try await ChildRun.run(binary, ["status"], environment: ["HUB_SOCKET": "/nonexistent/admin.sock"])
        #expect(unreachable == 2 && message.contains("no admin socket"), "\(message)")
        let (usage, _) = try await ChildRun.run(binary, ["slot", "create"], environment: [:])
        #expect(usage == 64)
    }

    @Test("backup while serving, verify finds tampering, restore refuses a running hub and keeps the old store")
    func backupVerifyRestore() async throws {
        let scratch = try TemporaryDirectory()
        let backup = scratch.path + "/b.db"
        try await withCtlHub { hub, env in
            #expect(await hubctl(["slot", "create", "acme"], env).code == 0)
            #expect(await hubctl(["publish", "acme", #"[{"n":1},{"n":2},{"n":3}]"#], env).code == 0)
            var r = await hubctl(["backup", backup], env)
            #expect(r.code == 0 && r.out == backup + "\n" && r.err.hasPrefix("backed up "), "\(r)")
            r = await hubctl(["backup", backup], env)
            #expect(r.code == 1 && r.err.contains("exists"), "never overwrites: \(r)")

            r = await hubctl(["verify", "--file", backup, "--json"], env)
            let report = try JSONValue.parse(Array(r.out.utf8))
            #expect(r.code == 0 && report["sound"] == .bool(true) && report["records"] == .int(3) && report["slots"] == .int(1), "\(r)")
            r = await hubctl(["verify", "--data-dir", hub.dataDirectory], env)
            #expect(r.code == 0 && r.lines.contains("result:  sound"), "the live store, read-only: \(r)")
            r = await hubctl(["restore", backup, "--data-dir", hub.dataDirectory], env)
            #expect(r.code == 1 && r.err.contains("stop it first"), "\(r)")
        }

        // A tampered copy: counters that disagree with the records, and a record at its slot's retention floor.
        let tampered = scratch.path + "/t.db"
        try FileManager.default.copyItem(atPath: backup, toPath: tampered)
        var db: OpaquePointer?
        #expect(sqlite3_open(tampered, &db) == SQLITE_OK)
        #expect(sqlite3_exec(db, "UPDATE streams SET record_count = 99; UPDATE slots SET floor_seq = 1", nil, nil, nil) == SQLITE_OK)
        sqlite3_close(db)
        var r = await hubctl(["verify", "--file", tampered], [:])
        #expect(r.code == 1, "\(r)")
        #expect(r.lines.contains("problem: stream acme: counts 99 records but holds 3"), "\(r)")
        #expect(r.lines.contains("problem: slot acme: a record has seq 1, at or below the retention floor 1"), "\(r)")
        let target = try TemporaryDirectory()
        r = await hubctl(["restore", tampered, "--data-dir", target.path], [:])
        #expect(r.code == 1 && r.err.contains("refusing to restore"), "\(r)")
        try "not a database".write(toFile: scratch.path + "/junk.db", atomically: true, encoding: .utf8)
        r = await hubctl(["verify", "--file", scratch.path + "/junk.db"], [:])
        #expect(r.code == 1, "\(r)")

        // Restore into a stopped hub's directory twice: the second keeps the first aside; then a hub serves it.
        r = await hubctl(["restore", backup, "--data-dir", target.path], [:])
        #expect(r.code == 0 && r.out == target.path + "/hub.db\n", "\(r)")
        r = await hubctl(["restore", backup, "--data-dir", target.path], [:])
        #expect(r.code == 0 && r.err.contains("the previous store is kept as \(target.path)/hub.db.before-restore-"), "\(r)")
        try await withRunningHub({ $0.auth = .tokens; $0.dataDirectory = target.path }) { hub in
            let r = await hubctl(["tail", "acme", "--since", "0"], ["HUB_SOCKET": target.path + "/admin.sock"])
            #expect(r.lines == [#"1 message {"n":1}"#, #"2 message {"n":2}"#, #"3 message {"n":3}"#], "\(r)")
        }
    }

    @Test("config check answers with hubd's own verdict")
    func configCheck() async throws {
        let directory = try TemporaryDirectory()
        try "data-dir: \(directory.path)\nlisten: 127.0.0.1:4437\n".write(toFile: directory.path + "/good.yaml", atomically: true, encoding: .utf8)
        try "listen: nowhere\n".write(toFile: directory.path + "/bad.yaml", atomically: true, encoding: .utf8)
        var r = await hubctl(["config", "check", directory.path + "/good.yaml", "--hubd", HubdProcess.binary], [:])
        #expect(r.code == 0 && r.err == "\(directory.path)/good.yaml: valid\n", "\(r)")
        r = await hubctl(["config", "check", directory.path + "/bad.yaml", "--hubd", HubdProcess.binary], [:])
        #expect(r.code == 78 && r.err.contains("listen"), "\(r)")
        r = await hubctl(["config", "check", directory.path + "/missing.yaml"], [:])
        #expect(r.code == 78 && r.err.contains("no config file"), "\(r)")
    }

    @Test("bench over SSE and WebSocket delivers every event once, reports, and removes its scratch slot")
    func bench() async throws {
        try await withCtlHub { _, env in
            for arguments in [["--messages", "300", "--subscribers", "3"],
                              ["--messages", "300", "--subscribers", "2", "--publishers", "2", "--batch", "10", "--transport", "ws"]] {
                let r = await hubctl(["bench", "--json"] + arguments, env)
                #expect(r.code == 0, "\(r)")
                let report = try JSONValue.parse(Array(r.out.utf8))
                let subscribers = report["subscribers"]?.int ?? 0
                #expect(report["lost"] == .int(0) && report["duplicates"] == .int(0), "\(r)")
                #expect(report["publish"]?["count"] == .int(300) && report["delivery"]?["count"] == .int(300 * subscribers), "\(r)")
                #expect((report["delivery"]?["latency_us"]?["max"]?.int ?? 0) > 0, "\(r)")
            }
            let publishOnly = await hubctl(["bench", "--json", "--messages", "100", "--subscribers", "0", "--publishers", "3"], env)
            #expect(try JSONValue.parse(Array(publishOnly.out.utf8))["publish"]?["count"] == .int(100), "\(publishOnly)")
            let r = await hubctl(["bench", "--messages", "50", "--subscribers", "1"], env)
            #expect(r.code == 0 && r.lines.first?.hasPrefix("          COUNT  RATE") == true && r.out.contains("lost 0, duplicates 0, failed publishes 0"), "\(r)")
            let slots = await hubctl(["slot", "ls"], env)
            #expect(slots.err == "no slots\n", "the scratch slots are gone: \(slots)")
        }
    }

    @Test("status, and consumers: list with lag, reset, reset again")
    func statusAndConsumers() async throws {
        try await withCtlHub { hub, env in
            var r = await hubctl(["status"], env)
            #expect(r.code == 0 && r.lines.contains("state:        ready") && r.lines.contains("http:         127.0.0.1:\(hub.port)"), "\(r)")
            r = await hubctl(["status", "--json"], env)
            #expect(try JSONValue.parse(Array(r.out.utf8))["ready"] == .bool(true), "\(r)")

            #expect(await hubctl(["slot", "create", "acme"], env).code == 0)
            #expect(await hubctl(["publish", "acme", #"[{"n":1},{"n":2}]"#], env).code == 0)
            let token = await hubctl(["token", "mint", "--slot", "acme", "--scope", "read,consume", "--label", "billing"], env).lines.first ?? ""
            var settings = WebSocketClientConfiguration()
            settings.additionalHeaders = [.authorization: "Bearer \(token)"]
            let logger = Logger(label: "ctl-test", factory: { _ in SwiftLogNoOpLogHandler() })
            _ = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(hub.port)/v1/ws?slot=acme&consumer=billing&since=0",
                                                  configuration: settings, logger: logger) { inbound, _, _ in
                for try await _ in inbound.messages(maxSize: 1 << 16) { return }
            }
            r = await hubctl(["consumer", "ls", "--slot", "acme"], env)
            let row = try #require(r.lines.first { $0.hasPrefix("acme  billing") }, "\(r)")
            #expect(row.split(separator: " ", omittingEmptySubsequences: true).prefix(6) == ["acme", "billing", "(slot)", "0", "2", "2"], "\(row)")
            r = await hubctl(["consumer", "reset", "acme", "billing"], env)
            #expect(r.code == 0 && r.err == "reset consumer billing of slot acme\n", "\(r)")
            r = await hubctl(["consumer", "ls"], env)
            #expect(r.err == "no consumers\n", "\(r)")
            r = await hubctl(["consumer", "reset", "acme", "billing"], env)
            #expect(r.code == 1 && r.err.contains("consumer-not-found"), "\(r)")
        }
    }
}
