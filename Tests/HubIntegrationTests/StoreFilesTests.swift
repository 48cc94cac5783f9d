import Foundation
import HubTestSupport
import Testing

/// The permission bits of `path`, or nil when it does not exist.
func fileMode(_ path: String) -> mode_t? {
    var info = stat()
    return stat(path, &info) == 0 ? info.st_mode & 0o777 : nil
}

@Suite("The store's files are the owner's alone")
struct StoreFilesTests {
    @Test("a new data directory is 0700 and hub.db, -wal and -shm are 0600")
    func newStore() async throws {
        let parent = try TemporaryDirectory()
        let dataDirectory = parent.path + "/data"
        try await withRunningHub({ $0.dataDirectory = dataDirectory }) { hub in
            let created = try await hub.put(uniqueStream(), body: "secret")
            #expect(created.status == 201)
            #expect(fileMode(dataDirectory) == 0o700)
            for file in ["hub.db", "hub.db-wal", "hub.db-shm"] {
                #expect(fileMode(dataDirectory + "/" + file) == 0o600, "\(file)")
            }
        }
        withExtendedLifetime(parent) {}
    }

    @Test("a store an older hubd created 0644 is tightened to 0600 at start")
    func olderStore() async throws {
        let parent = try TemporaryDirectory()
        let database = parent.path + "/hub.db"
        let fd = open(database, O_RDWR | O_CREAT, 0o644)
        close(fd)
        chmod(database, 0o644)  // whatever the umask
        try await withRunningHub({ $0.dataDirectory = parent.path }) { hub in
            let created = try await hub.put(uniqueStream(), body: "secret")
            #expect(created.status == 201)
            for file in ["hub.db", "hub.db-wal", "hub.db-shm"] {
                #expect(fileMode(database.replacingOccurrences(of: "hub.db", with: file)) == 0o600, "\(file)")
            }
        }
        withExtendedLifetime(parent) {}
    }
}

@Suite("The write-ahead log is checkpointed off the commit path")
struct CheckpointTests {
    @Test("96 MiB of appends leave a WAL far smaller than what was written (checkpoints run on their own thread)")
    func walStaysShort() async throws {
        try await withRunningHub { hub in
            let p = uniqueStream()
            let created = try await hub.put(p, [textType])
            #expect(created.status == 201)
            let megabyte = String(repeating: "x", count: 1 << 20)
            for _ in 0..<96 {
                let appended = try await hub.post(p, body: megabyte)
                #expect(appended.status == 204)
            }
            let wal = try #require(try FileManager.default.attributesOfItem(atPath: hub.dataDirectory + "/hub.db-wal")[.size] as? Int)
            // Without checkpoints the WAL would hold all 96 MiB; they restart it every ~16 MiB.
            #expect(wal < 48 << 20, "WAL is \(wal >> 20) MiB")
        }
    }
}
