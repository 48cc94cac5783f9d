import Foundation

extension Thread {
    /// Names the calling thread as `ps -L`, `top -H` and `perf` show it (at most 15 bytes). Foundation's `name`, set
    /// before `start()`, does not reach the kernel on Linux: these threads showed as the dispatch worker that made them.
    /// (Through procfs: Swift does not see glibc's `pthread_setname_np`.)
    static func nameCurrent(_ name: String) {
        let fd = open("/proc/thread-self/comm", O_WRONLY)
        guard fd >= 0 else { return }
        _ = name.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }
}
