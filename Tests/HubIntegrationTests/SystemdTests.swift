import HubProtocol
import Foundation
import HubTestSupport
import Testing

@Suite("systemd: notifications, reload, watchdog, shutdown")
struct SystemdTests {
    /// Starts hubd on a config file (re-read on SIGHUP) in `directory`, with its notifications going to a socket there.
    private func startHubd(config: String, in directory: TemporaryDirectory, environment: [String: String] = [:])
        async throws -> (HubdProcess, NotifySocket, configFile: String) {
        let notify = try NotifySocket(directory: directory.path)
        let configFile = directory.path + "/hub.yaml"
        try config.write(toFile: configFile, atomically: true, encoding: .utf8)
        let hubd = try await HubdProcess(dataDirectory: directory.path + "/data", arguments: ["--config", configFile],
                                         environment: environment.merging(["NOTIFY_SOCKET": notify.path]) { $1 })
        return (hubd, notify, configFile)
    }

    @Test("EXTEND_TIMEOUT_USEC while the store migrates, READY=1 once listening, RELOADING=1 then READY=1 on SIGHUP, watchdog pings, STOPPING=1 and exit 0 on SIGTERM with SSE ended")
    func lifecycle() async throws {
        let directory = try TemporaryDirectory()
        let (hubd, notify, configFile) = try await startHubd(config: "log-level: info\nauth: open\n", in: directory,
                                                             environment: ["WATCHDOG_USEC": "400000"])
        let ready = try await notify.next(containing: "READY=1")
        #expect(ready.joined().contains("STATUS=serving on"))
        // A new store is migrated first: start-up announces it may take longer (a migration can rewrite a big table).
        #expect(ready.dropLast().contains { $0.contains("EXTEND_TIMEOUT_USEC=30000000") && $0.contains("STATUS=migrating the store") },
                "\(ready)")
        _ = try await notify.next(containing: "WATCHDOG=1")

        try "log-level: debug\nauth: open\n".write(toFile: configFile, atomically: true, encoding: .utf8)
        hubd.signal(SIGHUP)
        let reloading = try await notify.next(containing: "RELOADING=1")
        #expect(reloading.last?.contains("MONOTONIC_USEC=") == true)
        let reloaded = try await notify.next(containing: "READY=1")
        #expect(reloaded.joined().contains("STATUS=configuration reloaded"))

        // An open SSE response must end cleanly when the service stops.
        let client = hubd.client
        #expect(try await client.request(.PUT, "/v1/stream/sd/feed", headers: [("Content-Type", "text/plain")], body: "x").status == 201)
        let sse = Task {
            var parser = SSEParser()
            var events = 0
            try await client.stream("/v1/stream/sd/feed?offset=-1&live=sse", onHead: { _ in }) { chunk in
                events += parser.feed(chunk).count
                return true
            }
            return events
        }
        try await eventually { try await !client.request(.GET, "/v1/admin/stats").text.contains(#""live_readers_waiting":0"#) }
        let exit = Task { await hubd.terminate() }
        let stopping = try await notify.next(containing: "STOPPING=1")
        #expect(!stopping.isEmpty)
        #expect(await exit.value == 0)
        #expect(try await sse.value >= 2, "the SSE client saw its events, then a clean end of the response")
    }

    @Test("a bad configuration on SIGHUP is refused and the running one kept")
    func badReload() async throws {
        let directory = try TemporaryDirectory()
        let (hubd, notify, configFile) = try await startHubd(config: "auth: open\n", in: directory)
        _ = try await notify.next(containing: "READY=1")
        try "long-poll-timeout: soon\n".write(toFile: configFile, atomically: true, encoding: .utf8)
        hubd.signal(SIGHUP)
        let after = try await notify.next(containing: "READY=1")
        #expect(after.joined().contains("STATUS=reload failed"))
        #expect(try await hubd.client.request(.GET, "/healthz").status == 200, "still serving")
        #expect(await hubd.terminate() == 0)
    }

    @Test("socket activation: hubd adopts the socket systemd-socket-activate passes and serves the connection that started it")
    func socketActivation() async throws {
        let activate = "/usr/bin/systemd-socket-activate"
        guard requireExecutable(activate, "install Debian's systemd package (scripts/setup does)") else { return }
        let directory = try TemporaryDirectory()
        let notify = try NotifySocket(directory: directory.path)
        let port = try freePort()
        let process = try ChildProcess(activate, [
            "-l", "127.0.0.1:\(port)", "--fdname=http", "-E", "NOTIFY_SOCKET=\(notify.path)",
            HubdProcess.binary, "--data-dir", directory.path + "/data", "--auth", "open", "--admin-socket", "", "--listen", "127.0.0.1:1",
        ])
        let log = Task { var lines: [String] = []; for await line in process.lines() { lines.append(line) }; return lines }
        // The first connection is what makes systemd-socket-activate start hubd; it waits in the socket's backlog meanwhile.
        let client = TestHTTPClient(port: port)
        var health: TestResponse?
        try await eventually {
            health = try? await client.request(.GET, "/healthz")
            return health != nil
        }
        #expect(health?.status == 200)
        let ready = try await notify.next(containing: "READY=1")
        #expect(ready.joined().contains("systemd socket http"), "it served on the inherited socket, not --listen: \(ready)")
        #expect(try await client.request(.PUT, "/v1/stream/act/x", headers: [("Content-Type", "text/plain")], body: "ok").status == 201)
        process.signal(SIGTERM)
        _ = try await notify.next(containing: "STOPPING=1")
        #expect(await process.wait() == 0)
        let lines = await log.value
        #expect(lines.contains { $0.contains("hub.listener=systemd socket http") }, "\(lines.suffix(5))")
    }

    @Test("SIGTERM stops at once even with a long watchdog period (no service waits out its interval)")
    func promptStop() async throws {
        let directory = try TemporaryDirectory()
        let notify = try NotifySocket(directory: directory.path)
        let hubd = try await HubdProcess(dataDirectory: directory.path + "/data", arguments: ["--auth", "open"],
                                         environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "60000000"])
        _ = try await notify.next(containing: "WATCHDOG=1")
        let start = ContinuousClock.now
        #expect(await hubd.terminate() == 0)
        #expect(ContinuousClock.now - start < .seconds(10), "a 30 s watchdog sleep must not hold up the stop")
    }

    @Test("the store's own threads carry their names, for ps -L, top -H and perf")
    func threadNames() async throws {
        let directory = try TemporaryDirectory()
        let hubd = try await HubdProcess(dataDirectory: directory.path, arguments: ["--auth", "open"])
        let names = hubd.threadNames
        #expect(names.contains("hub-writer") && names.contains("hub-checkpoint"), "\(names)")
        #expect(await hubd.terminate() == 0)
    }
}
