import Foundation
import HubCore
@testable import HubPostgres
import HubTestSupport
import Logging
import NIOCore
import Testing

/// What only the PostgreSQL backend has: its schema versioning among several nodes, and TLS to the database.
@Suite("PostgreSQL specifics")
struct PostgresSpecificsTests {
    /// Quiet: the refusals below are expected, and the driver logs each failed connection attempt.
    private let logger = Logger(label: "postgres-specifics", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Opens a store; `refusal` for one the test expects to fail (short timeouts: it fails as soon as they pass).
    private func open(_ url: String, refusal: Bool = false) async throws -> PostgresStreamStore {
        // 5 s each (a 10-s deadline to open): the whole suite starting at once on 2 cores once kept a connect past 2 s.
        let settings = try PostgresSettings(url: url, statementTimeout: refusal ? .milliseconds(500) : .seconds(5),
                                            connectTimeout: refusal ? .milliseconds(500) : .seconds(5))
        return try await PostgresStreamStore(settings, signal: LocalChangeSignal(), nodeID: "t", logger: logger)
    }

    @Test("nodes opening one empty database together migrate it once; a schema from a newer hubd is refused")
    func migrations() async throws {
        let url = try await PostgresServer.shared.freshDatabase()
        let stores = try await withThrowingTaskGroup(of: PostgresStreamStore.self) { group in
            for _ in 0..<4 { group.addTask { try await open(url) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let version = try await stores[0].single { db in try await db.first("SELECT max(version)::bigint, count(*) FROM hub_schema") }
        #expect(try version?.int(0) == Int64(PostgresMigrations.all.count) && version?.int(1) == 1)
        _ = try await stores[1].create(StreamPath("m/s")!, CreateRequest(contentType: .json))
        try await stores[2].single { db in try await db.run("UPDATE hub_schema SET version = version + 1") }
        for store in stores { await store.close() }
        await #expect(throws: StoreError.schemaTooNew(found: PostgresMigrations.all.count + 1, supported: PostgresMigrations.all.count)) {
            _ = try await open(url)
        }
    }

    @Test("a refusal at start carries the server's reason at once: a wrong password, a missing database")
    func refusals() async throws {
        let url = try await PostgresServer.shared.freshDatabase()
        for (bad, reason) in [(url.replacingOccurrences(of: "hub:hub@", with: "hub:wrong@"), "28P01"), (url + "-missing", "3D000")] {
            let started = ContinuousClock.now
            defer {
                // Behaviour, not speed: waiting for a pool to retry would end only at `open`'s 10 s deadline. Each refusal
                // is timed alone (a loaded CI machine once took 3.6 s for both together).
                #expect(ContinuousClock.now - started < .milliseconds(9900), "\(reason) refused at once, not after the deadline")
            }
            do {
                _ = try await open(bad.replacingOccurrences(of: "?sslmode=disable-missing", with: "-missing?sslmode=disable"))
                Issue.record("\(bad) opened")
            } catch {
                guard case .backend(let text)? = error as? StoreError else { Issue.record("\(error)"); continue }
                #expect(text.contains(reason), "\(text)")
            }
        }
    }

    @Test("TLS to the database: require encrypts, verify-full checks the certificate, require never falls back to plain TCP")
    func tls() async throws {
        let server = PostgresServer(tls: true)
        defer { Task { await server.stop() } }
        let running = try await server.start()
        let plain = try await server.freshDatabase()
        let base = plain.replacingOccurrences(of: "?sslmode=disable", with: "")

        for url in [base + "?sslmode=require", base + "?sslmode=verify-full&sslrootcert=\(running.certificate)"] {
            let store = try await open(url)
            let p = StreamPath("tls/s")!
            _ = try await store.create(p, CreateRequest(contentType: .json))
            _ = try await store.append(p, AppendRequest(contentType: .json, messages: [NewMessage(body: ByteBuffer(string: "{}"))]))
            let encrypted = try await store.single { db in try await db.first("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")?.bool(0) }
            #expect(encrypted == true, "\(url) is encrypted")
            try await store.delete(p)
            await store.close()
        }
        // An untrusted certificate (the system roots do not know this one) is refused.
        await #expect(throws: StoreError.self) { _ = try await open(base + "?sslmode=verify-full", refusal: true) }
        // A server without TLS: require must not fall back to plain TCP.
        let plainURL = try await PostgresServer.shared.freshDatabase()
        await #expect(throws: StoreError.self) { _ = try await open(plainURL.replacingOccurrences(of: "sslmode=disable", with: "sslmode=require"), refusal: true) }
    }
}
