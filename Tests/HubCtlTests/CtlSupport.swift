import Foundation
import HubCtl
import HubServer
import HubTestSupport
import Synchronization

/// What one hubctl invocation did.
struct CtlRun: Sendable, CustomStringConvertible {
    let code: Int32
    let out: String
    let err: String
    /// stdout and stderr in the order they were written.
    let transcript: String
    var lines: [String] { out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty } }
    var description: String { "exit \(code)\nstdout:\n\(out)\nstderr:\n\(err)" }
}

/// Runs hubctl in-process with `environment` as its whole environment and `input` as stdin.
func hubctl(_ arguments: [String], _ environment: [String: String], input: String = "") async -> CtlRun {
    let terminal = CapturedTerminal(environment: environment, input: Array(input.utf8))
    let code = await HubCtl.main(arguments, terminal: terminal.terminal)
    return CtlRun(code: code, out: terminal.stdout, err: terminal.stderr, transcript: terminal.transcript)
}

/// A real hub in tokens mode; hubctl reaches it through its admin socket (HUB_SOCKET).
func withCtlHub(_ body: @Sendable (RunningHub, [String: String]) async throws -> Void) async throws {
    try await withRunningHub({ $0.auth = .tokens }) { hub in
        try await body(hub, ["HUB_SOCKET": hub.dataDirectory + "/admin.sock", "PATH": "/usr/bin:/bin"])
    }
}

/// A terminal whose stdout lines arrive on a stream, for following commands (tail -f) that never end by themselves.
final class LineTerminal: Sendable {
    private final class Buffers: Sendable {
        let partial = Mutex([UInt8]())
        let errors = Mutex("")
    }

    let terminal: Terminal
    let lines: AsyncStream<String>
    private let buffers = Buffers()

    var stderr: String { buffers.errors.withLock { $0 } }

    init(environment: [String: String]) {
        let (lines, sink) = AsyncStream<String>.makeStream()
        self.lines = lines
        let buffers = self.buffers
        terminal = Terminal(interactive: false, environment: environment, out: { bytes in
            let complete: [String] = buffers.partial.withLock { buffer in
                buffer += bytes
                guard let last = buffer.lastIndex(of: 0x0A) else { return [] }
                let text = String(decoding: buffer[...last], as: UTF8.self)
                buffer.removeSubrange(...last)
                return text.split(separator: "\n").map(String.init)
            }
            for line in complete { sink.yield(line) }
        }, err: { bytes in buffers.errors.withLock { $0 += String(decoding: bytes, as: UTF8.self) } }, input: { _ in [] })
    }
}
