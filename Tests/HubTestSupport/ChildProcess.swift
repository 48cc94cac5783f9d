import Foundation
import HubCore

/// A child process started with `posix_spawn`, its stdout and stderr merged into one pipe.
///
/// Not Foundation's `Process`: on Linux its `waitUntilExit()` spins a run loop over a shared dispatch source,
/// and two tests doing that at once crashed libdispatch in CI. Here waiting is a plain `waitpid` on a thread.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private let output: Int32
    private let status = NSCondition()
    private var exitStatus: Int32?

    /// - Parameter environment: variables added to (or replacing) this process's environment for the child.
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw TestFailure("pipe failed: \(errno)") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        // Nothing else of the runner's: without this the child keeps copies of the in-process hubs' and clients'
        // sockets (not all are close-on-exec), and a connection one test closes stays open while the child lives
        // (seen: a hub's graceful shutdown waiting on a connection a browser test's python still held).
        Self.markEveryDescriptorCloseOnExec()
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        var merged = ProcessInfo.processInfo.environment
        merged.merge(environment) { $1 }
        let envp: [UnsafeMutablePointer<CChar>?] = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for entry in envp { free(entry) } }
        // Its own process group: whatever the child (or a browser it starts) signals with kill(0, …) or killpg
        // must not reach the test runner, whose in-process hubs shut down on SIGTERM and SIGINT.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            throw TestFailure("cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        pid = child
        output = fds[0]
        let spawned = child
        let thread = Thread { [self] in
            var raw: Int32 = 0
            while waitpid(spawned, &raw, 0) < 0 && errno == EINTR {}
            // WIFEXITED ? WEXITSTATUS : 128 + signal, like a shell reports it.
            let code = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            status.lock(); exitStatus = code; status.broadcast(); status.unlock()
        }
        thread.start()
    }

    private static func markEveryDescriptorCloseOnExec() {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for fd in entries.compactMap(Int32.init) where fd > 2 {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    deinit {
        if exitStatus == nil { kill(pid, SIGKILL) }
        close(output)
    }

    /// The merged output, line by line, until the process closes it. Consume it, or the child may block on a full pipe.
    public func lines() -> AsyncStream<String> {
        let fd = output
        return AsyncStream { continuation in
            let reader = Thread {
                var pending: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = read(fd, &buffer, buffer.count)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    pending.append(contentsOf: buffer[0..<n])
                    while let newline = pending.firstIndex(of: 0x0A) {
                        continuation.yield(String(decoding: pending[..<newline], as: UTF8.self))
                        pending.removeFirst(newline + 1)
                    }
                }
                if !pending.isEmpty { continuation.yield(String(decoding: pending, as: UTF8.self)) }
                continuation.finish()
            }
            reader.start()
        }
    }

    public func signal(_ signal: Int32) { kill(pid, signal) }

    /// Waits for the exit status (128 + signal number if a signal ended it).
    public func wait() async -> Int32 {
        await wait(until: nil)!
    }

    /// The exit status, or nil if the process is still running after `limit` (a test must not hang on a child that
    /// never exits; the caller decides what to do with it).
    public func wait(limit: Duration) async -> Int32? {
        await wait(until: Date(timeIntervalSinceNow: limit.timeInterval))
    }

    /// nil: no deadline (`NSCondition.wait(until: .distantFuture)` traps on Linux: the date overflows a timespec).
    private func wait(until deadline: Date?) async -> Int32? {
        await withCheckedContinuation { continuation in
            Thread { [self] in
                status.lock()
                if let deadline {
                    while exitStatus == nil && status.wait(until: deadline) {}
                } else {
                    while exitStatus == nil { status.wait() }
                }
                let code = exitStatus
                status.unlock()
                continuation.resume(returning: code)
            }.start()
        }
    }
}
