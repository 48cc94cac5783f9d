import CSQLite
import HubCore
import NIOCore

/// SQLite's "copy this buffer now" destructor marker, which the C macro cannot express in Swift.
nonisolated(unsafe) let sqliteTransient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

/// A value bound to a statement parameter.
enum SQLValue {
    case int(Int64)
    case text(String)
    case blob(ByteBuffer)
    case null

    static func int(_ v: UInt64) -> SQLValue { .int(Int64(bitPattern: v)) }
    static func optional(_ v: String?) -> SQLValue { v.map { .text($0) } ?? .null }
    static func optional(_ v: Int64?) -> SQLValue { v.map { .int($0) } ?? .null }
}

struct SQLiteFailure: Error, CustomStringConvertible {
    let code: Int32
    let message: String
    var description: String { "SQLite error \(code): \(message)" }
    var storeError: StoreError {
        code == SQLITE_BUSY || code == SQLITE_LOCKED ? .unavailable(description) : .backend(description)
    }
}

/// The statement cache's key: the SQL text, hashed by its length and its last 32 bytes only. The cache is asked for
/// every statement run (four per append), and SipHash over each statement's whole text was ~1 % of the server's CPU
/// with 64 publishers. Equality still compares the whole text, so statements that hash alike only share a bucket.
private struct StatementKey: Hashable {
    let sql: String

    static func == (a: Self, b: Self) -> Bool { a.sql == b.sql }

    func hash(into hasher: inout Hasher) {
        var sql = sql  // `withUTF8` is mutating; a native string's bytes are not copied
        sql.withUTF8 { bytes in
            hasher.combine(bytes.count)
            hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes.suffix(32))))
        }
    }
}

/// One database connection with a cache of prepared statements. Not thread-safe: the writer owns one, and each
/// reader borrows one from the pool for the duration of a read.
final class SQLiteConnection {
    let handle: OpaquePointer
    private var statements: [StatementKey: Statement] = [:]
    /// The writer's cache of the rows appends look up (`WriterRowCache`); none on readers' connections.
    private(set) var rowCache: WriterRowCache?

    init(path: String, readOnly: Bool) throws(SQLiteFailure) {
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let db { sqlite3_close_v2(db) }
            throw SQLiteFailure(code: rc, message: "\(message) (\(path))")
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        // Readers and the writer never wait on each other in WAL mode; this only covers checkpoints and start-up.
        sqlite3_busy_timeout(db, 5_000)
    }

    /// Gives the connection a `WriterRowCache`: for the writer's, the only connection that writes.
    func cacheRows() {
        rowCache = WriterRowCache(watching: handle)
    }

    /// `ROLLBACK`, or `ROLLBACK TO savepoint`: every rollback goes through here, as it must empty the row cache.
    func rollback(to savepoint: String? = nil) throws(SQLiteFailure) {
        rowCache?.clear()
        if let savepoint { try run("ROLLBACK TO " + savepoint) } else { try run("ROLLBACK") }
    }

    deinit {
        if rowCache != nil { sqlite3_update_hook(handle, nil, nil) }
        for statement in statements.values { sqlite3_finalize(statement.handle) }
        sqlite3_close_v2(handle)
    }

    func exec(_ sql: String) throws(SQLiteFailure) {
        var error: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &error)
        guard rc == SQLITE_OK else {
            let message = error.map { String(cString: $0) } ?? "exec failed"
            sqlite3_free(error)
            throw SQLiteFailure(code: rc, message: message)
        }
    }

    /// A cached prepared statement, reset and with `values` bound.
    func statement(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteFailure) -> Statement {
        let statement: Statement
        let key = StatementKey(sql: sql)
        if let cached = statements[key] {
            statement = cached
        } else {
            var raw: OpaquePointer?
            let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
            guard rc == SQLITE_OK, let raw else { throw failure(rc) }
            statement = Statement(handle: raw, connection: self)
            statements[key] = statement
        }
        sqlite3_reset(statement.handle)
        sqlite3_clear_bindings(statement.handle)
        for (index, value) in values.enumerated() { try statement.bind(value, at: Int32(index + 1)) }
        return statement
    }

    /// Runs a statement that returns no rows.
    func run(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteFailure) {
        let s = try statement(sql, values)
        defer { sqlite3_reset(s.handle) }
        while try s.step() {}
    }

    /// Rows of a query, each mapped by `row` while the statement is positioned on it.
    func query<T>(_ sql: String, _ values: [SQLValue] = [], _ row: (Statement) throws(StoreError) -> T) throws(StoreError) -> [T] {
        try stepping(sql, values) { s in
            var out: [T] = []
            while try s.step() { out.append(try row(s)) }
            return out
        }
    }

    /// The first row of a query, mapped by `row` (without collecting the rows in an array: an allocation per call).
    func first<T>(_ sql: String, _ values: [SQLValue] = [], _ row: (Statement) throws(StoreError) -> T) throws(StoreError) -> T? {
        try stepping(sql, values) { s in try s.step() ? try row(s) : nil }
    }

    /// Runs `body` on the cached statement for `sql` with `values` bound, resets it after, and reports SQLite's
    /// failures as store errors.
    private func stepping<R>(_ sql: String, _ values: [SQLValue], _ body: (Statement) throws -> R) throws(StoreError) -> R {
        do {
            let s = try statement(sql, values)
            defer { sqlite3_reset(s.handle) }
            return try body(s)
        } catch let e as SQLiteFailure {
            throw e.storeError
        } catch {
            throw error as! StoreError
        }
    }

    var changes: Int { Int(sqlite3_changes(handle)) }

    func failure(_ rc: Int32) -> SQLiteFailure {
        SQLiteFailure(code: rc, message: String(cString: sqlite3_errmsg(handle)))
    }
}

/// A prepared statement positioned by `step()`; column readers are valid until the next step or reset.
final class Statement {
    let handle: OpaquePointer
    unowned let connection: SQLiteConnection

    init(handle: OpaquePointer, connection: SQLiteConnection) { self.handle = handle; self.connection = connection }

    /// Binds `body` without SQLite copying it (`SQLITE_STATIC`). Only for a statement stepped to its end while
    /// `body` is alive and unchanged (the caller holds it and resets the statement after stepping); the binding is
    /// cleared before the statement's next use (`SQLiteConnection.statement`). Saves a malloc and a copy per record.
    func bindBorrowed(_ body: ByteBuffer, at index: Int32) throws(SQLiteFailure) {
        let rc = bindBlob(body, at: index, destructor: nil)
        guard rc == SQLITE_OK else { throw connection.failure(rc) }
    }

    func bind(_ value: Int64, at index: Int32) throws(SQLiteFailure) {
        let rc = sqlite3_bind_int64(handle, index, value)
        guard rc == SQLITE_OK else { throw connection.failure(rc) }
    }

    func bind(_ value: SQLValue, at index: Int32) throws(SQLiteFailure) {
        let rc: Int32
        switch value {
        case .int(let v): rc = sqlite3_bind_int64(handle, index, v)
        case .text(let s): rc = sqlite3_bind_text(handle, index, s, -1, sqliteTransient)
        case .null: rc = sqlite3_bind_null(handle, index)
        case .blob(let buffer): rc = bindBlob(buffer, at: index, destructor: sqliteTransient)
        }
        guard rc == SQLITE_OK else { throw connection.failure(rc) }
    }

    /// `destructor`: `sqliteTransient` (SQLite copies the bytes) or nil (`SQLITE_STATIC`, see `bindBorrowed`).
    private func bindBlob(_ buffer: ByteBuffer, at index: Int32, destructor: sqlite3_destructor_type?) -> Int32 {
        buffer.withUnsafeReadableBytes { bytes in
            // A zero-length blob must not be bound as NULL: give SQLite a valid pointer.
            sqlite3_bind_blob(handle, index, bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(bytes.count), destructor)
        }
    }

    /// True while positioned on a row; false when done.
    func step() throws(SQLiteFailure) -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw connection.failure(rc)
    }

    func int(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
    func optionalInt(_ column: Int32) -> Int64? { isNull(column) ? nil : int(column) }
    func text(_ column: Int32) -> String {
        guard let p = sqlite3_column_text(handle, column) else { return "" }
        return String(cString: p)
    }
    func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }
    func blob(_ column: Int32) -> ByteBuffer {
        let count = Int(sqlite3_column_bytes(handle, column))
        guard count > 0, let p = sqlite3_column_blob(handle, column) else { return ByteBuffer() }
        return ByteBuffer(bytes: UnsafeRawBufferPointer(start: p, count: count))
    }
    func blobLength(_ column: Int32) -> Int { Int(sqlite3_column_bytes(handle, column)) }
}
