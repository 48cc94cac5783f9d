import Foundation

/// Runs a program to completion off Swift's cooperative threads (its blocking reads and wait would starve them)
/// and returns its exit status and combined output.
enum ChildRun {
    static func run(_ path: String, _ arguments: [String], environment: [String: String]) async throws(CtlError) -> (Int32, String) {
        do {
            return try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global().async {
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: path)
                    process.arguments = arguments
                    process.environment = environment
                    let pipe = Pipe()
                    process.standardOutput = pipe
                    process.standardError = pipe
                    do {
                        try process.run()
                    } catch {
                        return continuation.resume(throwing: error)
                    }
                    let output = pipe.fileHandleForReading.readDataToEndOfFile()
                    process.waitUntilExit()
                    continuation.resume(returning: (process.terminationStatus, String(decoding: output, as: UTF8.self)))
                }
            }
        } catch {
            throw .config("cannot run \(path): \(error.localizedDescription)")
        }
    }
}
