import Foundation
import Synchronization

/// Where a command's output goes: data on stdout, messages on stderr. Commands reach it through
/// `Terminal.current`, so tests run them in-process with buffers (as ntfy's CLI tests do) and the binary with
/// the real file descriptors.
public final class Terminal: Sendable {
    private let writeOut: @Sendable ([UInt8]) -> Void
    private let writeErr: @Sendable ([UInt8]) -> Void
    private let readIn: @Sendable (Int) -> [UInt8]?
    /// Whether stderr is an interactive terminal (progress lines redraw in place only there).
    public let interactive: Bool
    /// The environment commands read (`HUB_URL`, `HUB_TOKEN`, …): the process's, or a test's.
    public let environment: [String: String]

    public init(interactive: Bool, environment: [String: String],
                out: @escaping @Sendable ([UInt8]) -> Void, err: @escaping @Sendable ([UInt8]) -> Void,
                input: @escaping @Sendable (Int) -> [UInt8]?) {
        self.interactive = interactive
        self.environment = environment
        self.writeOut = out
        self.writeErr = err
        self.readIn = input
    }

    public static let standard = Terminal(interactive: isatty(2) == 1, environment: ProcessInfo.processInfo.environment,
                                          out: { bytes in Terminal.writeAll(1, bytes) }, err: { bytes in Terminal.writeAll(2, bytes) },
                                          input: { limit in Terminal.readAll(0, limit: limit) })

    @TaskLocal public static var current: Terminal = .standard

    /// One line of data on stdout.
    public func line(_ text: String) { writeOut(Array((text + "\n").utf8)) }
    /// Raw bytes on stdout (record bodies as stored).
    public func bytes(_ bytes: [UInt8]) { writeOut(bytes) }
    /// A message for the person at the terminal, on stderr.
    public func note(_ text: String) { writeErr(Array((text + "\n").utf8)) }
    /// Text on stderr without a newline (progress lines that redraw with `\r`).
    public func noteInline(_ text: String) { writeErr(Array(text.utf8)) }

    /// All of stdin, or nil when it holds more than `limit` bytes.
    public func input(limit: Int) -> [UInt8]? { readIn(limit) }

    private static func readAll(_ fd: Int32, limit: Int) -> [UInt8]? {
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return data }
            data += chunk[0..<n]
            if data.count > limit { return nil }
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
    }
}

/// A terminal that keeps what commands write, for tests.
public final class CapturedTerminal: Sendable {
    private final class Buffers: Sendable {
        let bytes = Mutex<(out: [UInt8], err: [UInt8], both: [UInt8])>(([], [], []))
    }

    private let buffers = Buffers()
    public let terminal: Terminal

    public init(environment: [String: String] = [:], input: [UInt8] = []) {
        let buffers = self.buffers
        terminal = Terminal(interactive: false, environment: environment,
                            out: { bytes in buffers.bytes.withLock { $0.out += bytes; $0.both += bytes } },
                            err: { bytes in buffers.bytes.withLock { $0.err += bytes; $0.both += bytes } },
                            input: { limit in input.count > limit ? nil : input })
    }

    public var stdout: String { String(decoding: buffers.bytes.withLock { $0.out }, as: UTF8.self) }
    public var stderr: String { String(decoding: buffers.bytes.withLock { $0.err }, as: UTF8.self) }
    /// Both, in the order they were written (what a terminal shows).
    public var transcript: String { String(decoding: buffers.bytes.withLock { $0.both }, as: UTF8.self) }
}
