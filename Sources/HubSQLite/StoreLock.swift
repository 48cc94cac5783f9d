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

    /// Takes the lock, or throws `.unavailable` naming what holds it.
    public init(databasePath: String) throws(StoreError) {
        let path = databasePath + ".lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .backend("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let busy = errno == EWOULDBLOCK
            Foundation.close(fd)
            throw busy ? .unavailable("\(databasePath) is in use by another process (a running hubd?)")
                : .backend("cannot lock \(path): \(String(cString: strerror(errno)))")
        }
        descriptor = fd
    }

    /// Whether some process holds the lock now (without taking it).
    public static func isHeld(databasePath: String) -> Bool {
        do {
            try StoreLock(databasePath: databasePath).release()
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
