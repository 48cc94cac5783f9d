import Foundation
import Synchronization

/// A real PostgreSQL server for the tests (Debian's `postgresql` package): initdb into a temporary directory, then
/// pg_ctl on loopback with a free port — no systemd, nothing under /etc or /var/lib. `shared` is one server per test
/// process, started on first use and stopped at exit; every test gets its own database (`freshDatabase`). A test that
/// stops or restarts the server makes its own (`PostgresServer()`), so it disturbs no other test.
/// Runs the server as the `postgres` user when the tests run as root (PostgreSQL refuses to run as root).
public actor PostgresServer {
    public static let shared = PostgresServer()

    /// With `tls`, the server also speaks TLS, with a self-signed certificate for 127.0.0.1 and localhost
    /// (`Running.certificate`, which a client can trust as its root).
    private let tls: Bool
    public init(tls: Bool = false) { self.tls = tls }

    public struct Running: Sendable {
        public let port: Int
        public let directory: String
        public var socketDirectory: String { directory + "/sock" }
        public var dataDirectory: String { directory + "/data" }
        /// The server's certificate (PEM), when it was started with TLS.
        public var certificate: String { directory + "/server.crt" }
        let binaries: String
        let asUser: String?
    }

    private var starting: Task<Running, any Error>?
    private var databases = 0

    /// The server, started on first call (concurrent callers share that one start). Throws (failing the test) when
    /// PostgreSQL is not installed: run scripts/setup.
    public func start() async throws -> Running {
        if let starting { return try await starting.value }
        let task = Task { [tls] in try await Self.launch(tls: tls) }
        starting = task
        return try await task.value
    }

    private static func launch(tls: Bool) async throws -> Running {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = versions.sorted(by: { $0.compare($1, options: .numeric) == .orderedAscending }).last else {
            throw TestFailure("PostgreSQL is not installed (apt-get install postgresql, or run scripts/setup)")
        }
        let binaries = "/usr/lib/postgresql/\(version)/bin"
        let directory = "/tmp/hub-test-pg-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let asUser: String? = getuid() == 0 ? "postgres" : nil
        try FileManager.default.createDirectory(atPath: directory + "/sock", withIntermediateDirectories: true)
        if let asUser {
            let (status, output) = try await run("/bin/chown", ["-R", "\(asUser):\(asUser)", directory])
            guard status == 0 else { throw TestFailure("chown \(directory): \(output)") }
        }
        let port = try freeStablePort()
        let server = Running(port: port, directory: directory, binaries: binaries, asUser: asUser)
        try await server.command("initdb", ["-D", server.dataDirectory, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=trust",
                                            "--auth-host=scram-sha-256", "--no-sync"])
        // In the server's own configuration file, so a restart keeps them. fsync off: the tests kill hubd nodes,
        // never the machine, and restarts use pg_ctl's clean fast shutdown.
        let settings = """

            listen_addresses = '127.0.0.1'
            port = \(port)
            unix_socket_directories = '\(server.socketDirectory)'
            fsync = off
            max_connections = 300
            \(tls ? "ssl = on\nssl_cert_file = '\(directory)/server.crt'\nssl_key_file = '\(directory)/server.key'" : "")

            """
        if tls {
            let (status, output) = try await run("/usr/bin/openssl", [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory + "/server.key", "-out", directory + "/server.crt", "-days", "1",
                "-subj", "/CN=hub-test-postgres", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            ])
            guard status == 0 else { throw TestFailure("openssl: \(output)") }
            // PostgreSQL insists that its key is the server user's and private.
            chmod(directory + "/server.key", 0o600)
            if let asUser { _ = try await run("/bin/chown", ["\(asUser):\(asUser)", directory + "/server.key", directory + "/server.crt"]) }
        }
        guard let file = FileHandle(forWritingAtPath: server.dataDirectory + "/postgresql.conf") else { throw TestFailure("no postgresql.conf") }
        file.seekToEndOfFile()
        file.write(Data(settings.utf8))
        file.closeFile()
        try await server.command("pg_ctl", ["-D", server.dataDirectory, "-l", directory + "/server.log", "-w", "start"])
        PostgresServer.stopAtExit(server)
        try await server.psql("CREATE ROLE hub LOGIN PASSWORD 'hub'")
        return server
    }

    /// A new, empty database owned by the `hub` role; returns its URL (password auth over TCP, TLS off).
    public func freshDatabase() async throws -> String {
        let server = try await start()
        databases += 1
        let name = "hub_\(databases)"
        try await server.psql("CREATE DATABASE \(name) OWNER hub")
        return "postgres://hub:hub@127.0.0.1:\(server.port)/\(name)?sslmode=disable"
    }

    /// Stops the server the fast way (clients disconnected, a clean shutdown), runs `body` while it is down, then
    /// starts it again on the same port.
    public func restart(while body: @Sendable () async throws -> Void = {}) async throws {
        let server = try await start()
        try await server.command("pg_ctl", ["-D", server.dataDirectory, "-m", "fast", "-w", "stop"])
        do {
            try await body()
        } catch {
            try await server.command("pg_ctl", ["-D", server.dataDirectory, "-l", server.directory + "/server.log", "-w", "start"])
            throw error
        }
        try await server.command("pg_ctl", ["-D", server.dataDirectory, "-l", server.directory + "/server.log", "-w", "start"])
    }

    /// Stops the server now and removes its files (a private server, at the end of its test).
    public func stop() async {
        guard let starting, let server = try? await starting.value else { return }
        _ = system(server.shellCommand("pg_ctl", ["-D", server.dataDirectory, "-m", "immediate", "-w", "stop"]) + " >/dev/null 2>&1; rm -rf '\(server.directory)'")
        self.starting = nil
    }

    private static let atExit = Mutex<[Running]>([])

    /// Every server still running when the test process exits is stopped (and its files removed).
    private static func stopAtExit(_ server: Running) {
        let first = atExit.withLock { servers in
            servers.append(server)
            return servers.count == 1
        }
        guard first else { return }
        atexit {
            for server in PostgresServer.atExit.withLock({ $0 }) {
                _ = system(server.shellCommand("pg_ctl", ["-D", server.dataDirectory, "-m", "immediate", "-w", "stop"]) + " >/dev/null 2>&1; rm -rf '\(server.directory)'")
            }
        }
    }
}

extension PostgresServer.Running {
    func command(_ tool: String, _ arguments: [String]) async throws {
        let (executable, args) = invocation(tool, arguments)
        let (status, output) = try await run(executable, args, limit: .seconds(120))
        guard status == 0 else { throw TestFailure("\(tool) failed (\(status)):\n\(output)") }
    }

    public func psql(_ sql: String) async throws {
        try await command("psql", ["-h", socketDirectory, "-p", "\(port)", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
    }

    private func invocation(_ tool: String, _ arguments: [String]) -> (String, [String]) {
        if let asUser { return ("/sbin/runuser", ["-u", asUser, "--", "\(binaries)/\(tool)"] + arguments) }
        return ("\(binaries)/\(tool)", arguments)
    }

    func shellCommand(_ tool: String, _ arguments: [String]) -> String {
        let (executable, args) = invocation(tool, arguments)
        return ([executable] + args).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
    }
}
