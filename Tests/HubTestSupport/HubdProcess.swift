import Foundation
import NIOHTTP1
import Synchronization

/// A real `hubd` child process (the binary `swift build` produced), for tests that must kill it.
public final class HubdProcess: Sendable {
    public let port: Int
    private let process: ChildProcess
    private let log = Mutex([String]())

    /// Every line hubd logged so far.
    public var logLines: [String] { log.withLock { $0 } }

    /// The built binary: `$HUBD_BINARY`, else `.build/debug/hubd` under the package root.
    public static var binary: String {
        if let path = ProcessInfo.processInfo.environment["HUBD_BINARY"] { return path }
        return packageRoot.appendingPathComponent(".build/debug/hubd").path
    }

    /// Starts `hubd --listen 127.0.0.1:0 --data-dir <dir> <extra>` and returns once it logged its port.
    public init(dataDirectory: String, arguments extra: [String] = [], environment: [String: String] = [:]) async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw TestFailure("no hubd binary at \(Self.binary); run `swift build` first or set HUBD_BINARY")
        }
        let process = try ChildProcess(Self.binary, ["--listen", "127.0.0.1:0", "--data-dir", dataDirectory, "--log-level", "info"] + extra,
                                       environment: environment)
        self.process = process
        var found: Int?
        var seen: [String] = []
        let lines = process.lines()
        var iterator = lines.makeAsyncIterator()
        // A hubd that neither listens nor exits (a start stuck on its store) is killed, which ends its output.
        let startLimit = Duration.seconds(120)
        let watchdog = Task {
            try await Task.sleep(for: startLimit)
            process.signal(SIGKILL)
        }
        while let line = await iterator.next() {
            seen.append(line)
            if line.contains("listening"), let range = line.range(of: "hub.port=") {
                found = Int(line[range.upperBound...].prefix(while: \.isNumber))
                break
            }
        }
        watchdog.cancel()
        guard let found else {
            process.signal(SIGKILL)
            throw TestFailure("hubd exited, or was killed after \(startLimit), before listening:\n" + seen.joined(separator: "\n"))
        }
        port = found
        log.withLock { $0 = seen }
        // Keep draining the log (a full pipe would block hubd), keeping the lines for tests that read them.
        Task { [iterator, self] in
            var rest = iterator
            while let line = await rest.next() { log.withLock { $0.append(line) } }
        }
    }

    public var client: TestHTTPClient { TestHTTPClient(port: port) }

    /// The names of its threads, as `ps -L` shows them.
    public var threadNames: [String] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.pid)/task")) ?? []
        return tasks.compactMap { try? String(contentsOfFile: "/proc/\(process.pid)/task/\($0)/comm", encoding: .utf8) }
            .map { $0.trimmingCharacters(in: .newlines) }
    }

    /// Returns once `/readyz` answers 200 (on PostgreSQL: the change listener is up, right after the HTTP listener).
    public func untilReady() async throws {
        let client = self.client
        try await eventually(every: .milliseconds(20)) { try await client.request(.GET, "/readyz").status == 200 }
    }

    private let killed = Atomic(false)
    /// True once `kill9` ended it.
    public var wasKilled: Bool { killed.load(ordering: .relaxed) }

    /// SIGKILL: no chance to flush or clean up, like a power cut for the process (not for the OS).
    public func kill9() async {
        killed.store(true, ordering: .relaxed)
        process.signal(SIGKILL)
        _ = await process.wait()
    }

    public func signal(_ signal: Int32) { process.signal(signal) }

    /// SIGTERM, then the exit status. A hubd still running `limit` after SIGTERM (its graceful shutdown is bounded
    /// well below that) is reported on stderr with the tail of its log, killed, and answered 137, so the test fails
    /// with the reason instead of hanging the run.
    public func terminate(limit: Duration = .seconds(60)) async -> Int32 {
        process.signal(SIGTERM)
        if let code = await process.wait(limit: limit) { return code }
        let tail = logLines.suffix(40).joined(separator: "\n")
        FileHandle.standardError.write(Data("hubd (pid \(process.pid), port \(port)) did not exit within \(limit) of SIGTERM; killed. Its last log lines:\n\(tail)\n".utf8))
        process.signal(SIGKILL)
        return await process.wait()
    }
}
