import Foundation
import HubHTTP
import HubPostgres
import HubServer
import HubTestSupport
import Testing

@Suite("Web console")
struct ConsoleTests {
    static let webDirectory = packageRoot.appendingPathComponent("web").path

    @Test("served at /console/: redirects, CSP, ETag revalidation, gzip, 404s; the whole console stays under 250 KB")
    func serving() async throws {
        let assets = try ConsoleAssets.load(directory: Self.webDirectory)
        #expect(assets.totalBytes < 250 * 1024, "\(assets.totalBytes) bytes")
        try await withRunningHub({ $0.auth = .tokens; $0.webDirectory = Self.webDirectory }) { hub in
            for path in ["/", "/console"] {
                let r = try await hub.client.request(.GET, path)
                #expect(r.status == 302 && r.header("Location") == "/console/", "\(path)")
            }
            let index = try await hub.client.request(.GET, "/console/")
            #expect(index.status == 200 && index.header("Content-Type") == "text/html; charset=utf-8" && index.text.contains("js/app.js"))
            #expect(index.header("Content-Security-Policy")?.contains("script-src 'self'") == true && index.header("X-Frame-Options") == "DENY")
            #expect(index.header("Cache-Control") == "no-cache")
            let etag = try #require(index.header("ETag"))
            let again = try await hub.client.request(.GET, "/console/", headers: [("If-None-Match", etag)])
            #expect(again.status == 304 && again.body.readableBytes == 0)
            let script = try await hub.client.request(.GET, "/console/js/app.js", headers: [("Accept-Encoding", "gzip, br")])
            #expect(script.status == 200 && script.header("Content-Encoding") == "gzip" && script.header("Content-Type") == "text/javascript; charset=utf-8")
            #expect(script.body.readableBytes < (try Data(contentsOf: URL(fileURLWithPath: Self.webDirectory + "/js/app.js")).count))
            let missing = try await hub.client.request(.GET, "/console/js/nope.js")
            #expect(missing.status == 404 && missing.text.contains("\"code\":\"not-found\""))
            let escape = try await hub.client.request(.GET, "/console/../hub.db")
            #expect(escape.status == 404 || escape.status == 302, "\(escape.status)")
        }
        try await withRunningHub({ $0.webDirectory = "" }) { hub in
            let r = try await hub.client.request(.GET, "/console/")
            #expect(r.status == 404 && r.text.contains("console-unavailable"))
        }
        #expect(throws: ConfigurationError.self) {
            _ = try HubConfiguration.resolve(flags: ["web-dir": "/nonexistent"], environment: [:])
        }
    }

    @Test("in headless Chromium: sign in, slots, tokens, records, live tail, revoke, phone width, sign out",
          arguments: [HubConfiguration.StoreKind.sqlite, .postgres])
    func browser(_ store: HubConfiguration.StoreKind) async throws {
        let python = ClientCompatTests.python
        guard requireExecutable(python, "run scripts/setup (it makes the Python environment with Selenium)"),
              requireExecutable("/usr/bin/chromium", "run scripts/setup (it installs chromium and chromium-driver)") else { return }
        // CONSOLE_SCREENSHOTS=docs/images refreshes the documentation's screenshots.
        let scratch = try TemporaryDirectory()
        let screenshots = store == .sqlite ? ProcessInfo.processInfo.environment["CONSOLE_SCREENSHOTS"] ?? scratch.path : scratch.path
        // The same console against a PostgreSQL-backed hub: it only speaks the admin API, which is the same.
        let postgres = store == .postgres ? try PostgresSettings(url: try await PostgresServer.shared.freshDatabase()) : nil
        try await withRunningHub({ $0.auth = .tokens; $0.webDirectory = Self.webDirectory; $0.store = store; $0.postgres = postgres }) { hub in
            let token = try String(contentsOfFile: hub.dataDirectory + "/admin.token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let script = packageRoot.appendingPathComponent("Tests/Console/console_test.py").path
            let process = try ChildProcess(python, [script, "--url", "http://127.0.0.1:\(hub.port)", "--token", token, "--screenshots", screenshots])
            var output: [String] = []
            for await line in process.lines() { output.append(line) }
            let status = await process.wait()
            #expect(status == 0, "\(output.joined(separator: "\n"))")
            #expect(output.last == "console test: OK")
        }
    }

    @Test("in headless Chromium: the live tail and the connection banner across kill -9 and a restart of hubd")
    func browserReconnect() async throws {
        let python = ClientCompatTests.python
        guard requireExecutable(python, "run scripts/setup (it makes the Python environment with Selenium)"),
              requireExecutable("/usr/bin/chromium", "run scripts/setup (it installs chromium and chromium-driver)") else { return }
        let directory = try TemporaryDirectory()
        let script = packageRoot.appendingPathComponent("Tests/Console/console_reconnect_test.py").path
        let (status, output) = try await run(python, [script, "--hubd", HubdProcess.binary, "--data-dir", directory.path,
                                                      "--port", String(try freePort()), "--web-dir", Self.webDirectory], limit: .seconds(120))
        #expect(status == 0 && output.contains("console reconnect test: OK"), "\(output)")
    }
}
