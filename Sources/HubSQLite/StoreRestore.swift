import Foundation
import HubCore

/// Puts a backup in place as a stopped hub's store. The current store is never deleted: it is renamed aside
/// (with its WAL) first, and the copy gets the final name only once complete and on disk.
public enum StoreRestore {
    public struct Outcome: Sendable {
        /// Where the replaced store went, if there was one.
        public var keptAside: String?
        public var bytes: Int64
    }

    /// Holds the store lock for the whole operation, so a hub cannot start halfway; throws `.unavailable` when a
    /// hub has the store open. The restored file gets the data directory's owner, so the hub's user can open it.
    public static func restore(backup: String, databasePath: String, now: Date = Date()) throws(StoreError) -> Outcome {
        let lock = try StoreLock(databasePath: databasePath)
        defer { lock.release() }
        let files = FileManager.default
        var keptAside: String?
        if files.fileExists(atPath: databasePath) {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
            let aside = "\(databasePath).before-restore-\(formatter.string(from: now))"
            guard rename(databasePath, aside) == 0 else { throw .backend("cannot move \(databasePath) aside: \(String(cString: strerror(errno)))") }
            if files.fileExists(atPath: databasePath + "-wal") { _ = rename(databasePath + "-wal", aside + "-wal") }
            unlink(databasePath + "-shm")
            keptAside = aside
        }
        let partial = databasePath + ".restoring"
        unlink(partial)
        let bytes = try copy(backup, to: partial)
        var directory = stat()
        let parent = (databasePath as NSString).deletingLastPathComponent
        if stat(parent.isEmpty ? "." : parent, &directory) == 0 { _ = chown(partial, directory.st_uid, directory.st_gid) }
        guard rename(partial, databasePath) == 0 else {
            unlink(partial)
            throw .backend("cannot rename \(partial) to \(databasePath): \(String(cString: strerror(errno)))")
        }
        syncDirectory(parent.isEmpty ? "." : parent)
        return Outcome(keptAside: keptAside, bytes: bytes)
    }

    private static func copy(_ source: String, to destination: String) throws(StoreError) -> Int64 {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw .backend("cannot read \(source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard output >= 0 else { throw .backend("cannot create \(destination): \(String(cString: strerror(errno)))") }
        var total: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { close(output); unlink(destination); throw .backend("reading \(source): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            var written = 0
            while written < n {
                let w = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, n - written) }
                if w < 0 && errno == EINTR { continue }
                if w <= 0 { close(output); unlink(destination); throw .backend("writing \(destination): \(String(cString: strerror(errno)))") }
                written += w
            }
            total += Int64(n)
        }
        guard fsync(output) == 0 else { close(output); unlink(destination); throw .backend("cannot sync \(destination)") }
        close(output)
        return total
    }

    private static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}
