import CSQLite
import Foundation
import HubCore

extension SQLiteStreamStore: OnlineBackup {
    /// SQLite's online backup API, run from a reader's snapshot: writers keep committing to the WAL meanwhile, and
    /// the copy is the database as of the snapshot. The copy is written under a temporary name and renamed into place,
    /// so a half-written file never carries the final name.
    public func backup(to path: String) async throws(StoreError) -> Int64 {
        guard path.hasPrefix("/") else { throw .backupFailed("the backup path must be absolute") }
        guard !FileManager.default.fileExists(atPath: path) else { throw .backupFailed("\(path) exists; choose a new file") }
        let partial = path + ".partial"
        return try await readers.read { db throws(StoreError) in
            var destination: OpaquePointer?
            unlink(partial)
            // A backup holds every message, like the store: the owner's alone.
            let fd = open(partial, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, PrivateFiles.fileMode)
            if fd >= 0 { Foundation.close(fd) }
            guard sqlite3_open_v2(partial, &destination, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil) == SQLITE_OK, let destination else {
                sqlite3_close(destination)
                throw StoreError.backupFailed("cannot create \(partial)")
            }
            defer { sqlite3_close(destination) }
            guard let backup = sqlite3_backup_init(destination, "main", db.handle, "main") else {
                unlink(partial)
                throw StoreError.backupFailed(String(cString: sqlite3_errmsg(destination)))
            }
            let rc = sqlite3_backup_step(backup, -1)  // everything in one step: one consistent snapshot
            sqlite3_backup_finish(backup)
            guard rc == SQLITE_DONE else {
                unlink(partial)
                throw StoreError.backupFailed(String(cString: sqlite3_errstr(rc)))
            }
            guard rename(partial, path) == 0 else {
                unlink(partial)
                throw StoreError.backupFailed("cannot rename to \(path): \(String(cString: strerror(errno)))")
            }
            var info = stat()
            return stat(path, &info) == 0 ? Int64(info.st_size) : 0
        }
    }
}
