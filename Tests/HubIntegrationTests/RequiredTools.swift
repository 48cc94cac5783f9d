import Foundation
import Testing

/// Whether the tool at `path` can run. When it cannot, the test records an issue naming the install step:
/// a machine missing a tool fails the suite loudly instead of skipping the check.
func requireExecutable(_ path: String, _ remedy: String) -> Bool {
    if FileManager.default.isExecutableFile(atPath: path) { return true }
    Issue.record("\(path) is missing: \(remedy)")
    return false
}
