import Foundation

/// The store holds every message, so its files are the owner's alone: the database, its `-wal` and `-shm` are 0600.
/// SQLite gives `-wal` and `-shm` the mode of the database file, so creating that one 0600 before SQLite opens it is
/// enough for a new store; a store created by an older hubd (0644) is tightened at open.
enum PrivateFiles {
    static let fileMode: mode_t = 0o600

    /// Creates `path` empty with mode 0600 if it does not exist; tightens it (and its `-wal`/`-shm`) if it does.
    static func prepareDatabase(at path: String) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, fileMode)
        if fd >= 0 { Foundation.close(fd) }
        for file in [path, path + "-wal", path + "-shm"] { tighten(file) }
    }

    /// Removes group and other permissions from an existing file (never widens; a missing file is left missing).
    static func tighten(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & 0o077 != 0 else { return }
        chmod(path, info.st_mode & 0o700)
    }
}
