import Foundation
import Logging
import Synchronization

/// The process-wide log level, changed on SIGHUP without rebuilding loggers.
public final class LogLevelBox: Sendable {
    private let level: Mutex<Logger.Level>
    public init(_ level: Logger.Level) { self.level = Mutex(level) }
    public var value: Logger.Level {
        get { level.withLock { $0 } }
        set { level.withLock { $0 = newValue } }
    }
}

/// Writes log lines to stderr. Under journald (`JOURNAL_STREAM` set) lines carry a `<N>` syslog priority prefix and
/// no timestamp (journald adds its own); elsewhere a UTC timestamp and the level name.
public struct HubLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let levelBox: LogLevelBox
    let journald: Bool

    public init(label: String, level: LogLevelBox, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.label = label
        self.levelBox = level
        self.journald = environment["JOURNAL_STREAM"] != nil
    }

    public var logLevel: Logger.Level {
        get { levelBox.value }
        set { levelBox.value = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let extra = event.metadata { all.merge(extra) { $1 } }
        let fields = all.isEmpty ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let text = "\(event.message)\(fields)".replacingOccurrences(of: "\n", with: " ")
        let line = journald
            ? "<\(Self.priority(event.level))>\(label): \(text)\n"
            : "\(Self.timestamp()) \(event.level) \(label): \(text)\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// syslog priorities (sd-daemon(3)).
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    static func timestamp() -> String {
        Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))  // UTC, e.g. 2026-11-22T23:25:23.546Z
    }
}
