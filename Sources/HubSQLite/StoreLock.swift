import Foundation
import HubCore
import Synchronization

/// An exclusive lock on a store file, held by whoever has the store open for writing (`hubd`, `hubctl restore`).
/// It is a `flock` on `<database>.lock`: the kernel drops it when the holder exits, even after `kill -9`, so a
/// crashed hub never leaves a stale lock behind. Two hubs on one data directory would each trust their own
/// in-memory view of the store; the lock makes the second refuse to start instead.
public final class StoreLock: Sendable {
    private let descriptor: Int32
    private let released = Mutex(false)

    /// Takes the lock, or throws `.unavailable` naming what holds it. A holder that is letting go gets up to
    /// `patience` to do so: a restarting hub's predecessor may still be exiting, and a process being spawned
    /// anywhere in this one holds a copy of every descriptor (and so the lock) until it execs.
    public init(databasePath: String, patience: Duration = .seconds(2)) throws(StoreError) {
        let path = databasePath + ".lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .backend("cannot open \(path): \(String(cString: strerror(errno)))") }
        let deadline = ContinuousClock.now + patience
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let busy = errno == EWOULDBLOCK
            guard busy, ContinuousClock.now < deadline else {
                let reason = String(cString: strerror(errno))
                Foundation.close(fd)
                throw busy ? .unavailable("\(databasePath) is in use by another process (a running hubd?)")
                    : .backend("cannot lock \(path): \(reason)")
            }
            usleep(20_000)
        }
        descriptor = fd
    }

    /// Whether some process holds the lock (without keeping it): now, or still after `patience` for one letting go.
    public static func isHeld(databasePath: String, patience: Duration = .zero) -> Bool {
        do {
            try StoreLock(databasePath: databasePath, patience: patience).release()
            return false
        } catch {
            if case .unavailable = error { return true }
            return false
        }
    }

    public func release() {
        let first = released.withLock { released in
            defer { released = true }
            return !released
        }
        if first { Foundation.close(descriptor) }
    }

    deinit { release() }
}
