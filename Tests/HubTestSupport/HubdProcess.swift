import Foundation
import Synchronization

/// A real `hubd` child process (the binary `swift build` produced), for tests that must kill it.
public final class HubdProcess: Sendable {
    public let port: Int
    private let process: Process

    /// The built binary: `$HUBD_BINARY`, else `.build/debug/hubd` under the package root.
    public static var binary: String {
        if let path = ProcessInfo.processInfo.environment["HUBD_BINARY"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/hubd").path
    }

    /// Starts `hubd --listen 127.0.0.1:0 --data-dir <dir> <extra>` and returns once it logged its port.
    public init(dataDirectory: String, arguments extra: [String] = []) async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw TestFailure("no hubd binary at \(Self.binary); run `swift build` first or set HUBD_BINARY")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["--listen", "127.0.0.1:0", "--data-dir", dataDirectory, "--log-level", "info"] + extra
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        let (lines, sink) = AsyncStream.makeStream(of: String.self)
        let pending = Mutex([UInt8]())
        // Keep draining stderr for the life of the process so a full pipe can never block it.
        stderr.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty { sink.finish(); handle.readabilityHandler = nil; return }
            let complete = pending.withLock { buffer -> [String] in
                buffer.append(contentsOf: data)
                var out: [String] = []
                while let newline = buffer.firstIndex(of: 0x0A) {
                    out.append(String(decoding: buffer[..<newline], as: UTF8.self))
                    buffer.removeFirst(newline + 1)
                }
                return out
            }
            for line in complete { sink.yield(line) }
        }
        try process.run()
        self.process = process
        var found: Int?
        var seen: [String] = []
        for await line in lines {
            seen.append(line)
            if line.contains("listening"), let range = line.range(of: "hub.port=") {
                found = Int(line[range.upperBound...].prefix(while: \.isNumber))
                break
            }
        }
        guard let found else {
            process.terminate()
            throw TestFailure("hubd exited before listening:\n" + seen.joined(separator: "\n"))
        }
        port = found
    }

    public var client: TestHTTPClient { TestHTTPClient(port: port) }

    /// SIGKILL: no chance to flush or clean up, like a power cut for the process (not for the OS).
    public func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM, then the exit status.
    public func terminate() -> Int32 {
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}
