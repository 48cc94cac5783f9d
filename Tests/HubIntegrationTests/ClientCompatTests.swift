import Foundation
import HubTestSupport
import Testing

@Suite("Off-the-shelf clients")
struct ClientCompatTests {
    /// The official Python client (PyPI `durable-streams`, installed into `.build/pyenv` by scripts/setup).
    static var python: String {
        ProcessInfo.processInfo.environment["HUB_TEST_PYTHON"] ?? packageRoot.appendingPathComponent(".build/pyenv/bin/python").path
    }
    static var script: String {
        packageRoot.appendingPathComponent("Tests/ClientCompat/python_client_check.py").path
    }

    @Test("the Durable Streams Python client works unchanged: create, append, head, catch-up, long-poll, SSE, delete")
    func pythonClient() async throws {
        guard requireExecutable(Self.python, "run scripts/setup (it makes the Python client environment)") else { return }
        try await withRunningHub({ $0.http.longPollTimeout = .seconds(5) }) { hub in
            let process = try ChildProcess(Self.python, [Self.script, "http://127.0.0.1:\(hub.port)"])
            var output: [String] = []
            for await line in process.lines() { output.append(line) }
            let status = await process.wait()
            #expect(status == 0, "\(output.joined(separator: "\n"))")
        }
    }
}
