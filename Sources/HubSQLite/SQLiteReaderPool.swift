import HubCore
import NIOPosix
import Synchronization

/// Read-only connections, used from a small thread pool so SQLite's blocking calls never run on the
/// cooperative executor. Each read is one read transaction: a consistent snapshot of metadata and records.
final class SQLiteReaderPool: Sendable {
    private let idle: Mutex<[SQLiteConnectionBox]>
    private let threads: NIOThreadPool

    init(path: String, count: Int) throws(StoreError) {
        var connections: [SQLiteConnectionBox] = []
        for _ in 0..<count {
            do {
                let connection = try SQLiteConnection(path: path, readOnly: true)
                connections.append(SQLiteConnectionBox(connection))
            } catch {
                throw error.storeError
            }
        }
        idle = Mutex(connections)
        threads = NIOThreadPool(numberOfThreads: count)
        threads.start()
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws(StoreError) -> T) async throws(StoreError) -> T {
        let result: Result<T, StoreError>
        do {
            result = try await threads.runIfActive { [self] in
                guard let box = self.idle.withLock({ $0.popLast() }) else { return .failure(StoreError.unavailable("no reader connection")) }
                defer { self.idle.withLock { $0.append(box) } }
                let db = box.connection
                do throws(SQLiteFailure) {
                    try db.run("BEGIN")
                } catch {
                    return .failure(error.storeError)
                }
                defer { try? db.run("COMMIT") }
                do throws(StoreError) {
                    return .success(try body(db))
                } catch {
                    return .failure(error)
                }
            }
        } catch {
            throw .unavailable("the store is shutting down")
        }
        return try result.get()
    }

    func shutdown() async {
        try? await threads.shutdownGracefully()
    }
}

/// Hands a connection between threads; only one thread uses it at a time (the pool's lock guarantees that).
final class SQLiteConnectionBox: @unchecked Sendable {
    let connection: SQLiteConnection
    init(_ connection: SQLiteConnection) { self.connection = connection }
}
