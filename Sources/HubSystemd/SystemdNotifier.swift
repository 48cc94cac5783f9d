import CSystemd
import Foundation

/// Talks to the service manager through libsystemd's `sd_notify` (sd_notify(3)): readiness, status lines,
/// watchdog pings, reload and stop announcements. When `NOTIFY_SOCKET` is unset (not run by systemd) every call
/// is a cheap no-op, so callers never need to check.
public struct SystemdNotifier: Sendable {
    public enum Message: Sendable, Equatable {
        case ready
        case status(String)
        case watchdog
        /// Sent before re-reading the configuration, with the monotonic clock systemd uses to match the READY=1 after.
        case reloading
        case stopping
        /// More time for the current phase (start-up, here a long migration): the service manager waits this long for
        /// the next message before it gives up (systemd ≥ 236).
        case extendTimeout(Duration)

        var line: String {
            switch self {
            case .ready: "READY=1"
            case .status(let text): "STATUS=" + text.replacingOccurrences(of: "\n", with: " ")
            case .watchdog: "WATCHDOG=1"
            case .reloading: "RELOADING=1\nMONOTONIC_USEC=\(Self.monotonicMicroseconds())"
            case .stopping: "STOPPING=1"
            case .extendTimeout(let time):
                "EXTEND_TIMEOUT_USEC=\(time.components.seconds * 1_000_000 + time.components.attoseconds / 1_000_000_000_000)"
            }
        }

        static func monotonicMicroseconds() -> UInt64 {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
        }
    }

    /// True when a service manager listens (`NOTIFY_SOCKET` is set).
    public let isActive: Bool

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        isActive = !(environment["NOTIFY_SOCKET"] ?? "").isEmpty
    }

    /// Sends the messages as one datagram. Failures are ignored: a notification must never take the service down.
    public func send(_ messages: Message...) {
        guard isActive, !messages.isEmpty else { return }
        _ = sd_notify(0, messages.map(\.line).joined(separator: "\n"))
    }

    /// The watchdog interval systemd asked for (`WatchdogSec=`), or nil when the watchdog is off.
    public func watchdogInterval() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(usec))
    }
}
