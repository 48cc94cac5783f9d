import Foundation

/// Runs a program to completion off Swift's cooperative threads (its blocking reads and wait would starve them)
/// and returns its exit status and combined output.
///
/// `posix_spawn`, not Foundation's `Process`: on Linux (Swift 6.3.1) `Process.run()` over-reads a directory entry
/// while it lists `/proc/self/fd` and now and then crashes a process that has many descriptors open
/// (swift-corelibs-foundation#5472) — it took down the test runner once.
enum ChildRun {
    /// - Parameter environment: the child's whole environment.
    static func run(_ path: String, _ arguments: [String], environment: [String: String]) async throws(CtlError) -> (Int32, String) {
        let outcome: Result<(Int32, String), CtlError> = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: Self.runBlocking(path, arguments, environment: environment)) }.start()
        }
        return try outcome.get()
    }

    private static func runBlocking(_ path: String, _ arguments: [String], environment: [String: String]) -> Result<(Int32, String), CtlError> {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return .failure(.config("cannot run \(path): \(String(cString: strerror(errno)))")) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        // Nothing else of ours: not every descriptor is close-on-exec, and the child must not hold our sockets.
        // (FileManager lists the directory safely; glibc's closefrom action is not visible to Swift.)
        for fd in ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap(Int32.init) where fd > 2 {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for entry in envp { free(entry) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, path, &actions, nil, argv, envp)
        close(fds[1])
        defer { close(fds[0]) }
        guard rc == 0 else { return .failure(.config("cannot run \(path): \(String(cString: strerror(rc)))")) }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fds[0], &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            output.append(contentsOf: buffer[0..<n])
        }
        var raw: Int32 = 0
        while waitpid(child, &raw, 0) < 0 && errno == EINTR {}
        // WIFEXITED ? WEXITSTATUS : 128 + signal, like a shell reports it.
        let status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        return .success((status, String(decoding: output, as: UTF8.self)))
    }
}
