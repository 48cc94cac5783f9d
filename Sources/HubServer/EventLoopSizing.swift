import Foundation
import NIOCore

/// How many event loops serve connections. NIO sizes its shared group by the machine's cores (and cgroup
/// quotas), not by the CPUs this process may run on: pinned with `taskset -c 0` or systemd's `CPUAffinity=`,
/// hubd would otherwise time-slice two or more loops on one CPU — every hand-off between them a context switch
/// (measured: 6.4 k appends/s with two loops on one CPU, 9.9 k with one). Call before anything uses NIO.
public enum EventLoopSizing {
    /// Sizes the loops to the CPUs in this process's affinity mask, unless `NIO_SINGLETON_GROUP_LOOP_COUNT` says.
    public static func matchCPUAffinity() {
        guard ProcessInfo.processInfo.environment["NIO_SINGLETON_GROUP_LOOP_COUNT"] == nil, let allowed = affinityCPUCount(),
              allowed < System.coreCount
        else { return }
        NIOSingletons.groupLoopCountSuggestion = max(1, allowed)
    }

    /// CPUs this process may run on (the affinity mask, `Cpus_allowed` in /proc/self/status); nil if it cannot tell.
    static func affinityCPUCount() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        return cpuCount(statusText: status)
    }

    /// The bits set in the `Cpus_allowed:` line (hex words separated by commas, e.g. `ff,00000001`).
    public static func cpuCount(statusText: String) -> Int? {
        guard let line = statusText.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") }) else { return nil }
        var count = 0
        for character in line.dropFirst("Cpus_allowed:".count) where character != "," && !character.isWhitespace {
            guard let nibble = character.hexDigitValue else { return nil }
            count += nibble.nonzeroBitCount
        }
        return count
    }
}
