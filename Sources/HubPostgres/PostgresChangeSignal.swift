import HubCore
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The `ChangeSignal` of a cluster: local readers are woken in-process (`LocalChangeSignal`), readers on other nodes
/// through PostgreSQL's LISTEN/NOTIFY. Every writing transaction sends `pg_notify('hub_changes', '<node> <key>,<key>…')`
/// before it commits (PostgreSQL delivers it only if it commits); this service keeps one dedicated connection
/// listening and wakes the keys other nodes changed. Notifications carry no data and are not durable: readers re-read
/// from their own cursors, and every reader is woken after the listener (re)connects, since it may have missed some.
public final class PostgresChangeSignal: ChangeSignal, Service {
    static let channel = "hub_changes"

    /// The in-process part: this node's waiting readers.
    public let local = LocalChangeSignal()
    private let settings: PostgresSettings
    private let nodeID: String
    private let logger: Logger
    private let listening = Atomic<Bool>(false)

    public init(settings: PostgresSettings, nodeID: String, logger: Logger) {
        self.settings = settings; self.nodeID = nodeID; self.logger = logger
    }

    /// True while the LISTEN connection is up (part of `/readyz`: without it, appends on other nodes wake no one here).
    public var isListening: Bool { listening.load(ordering: .relaxed) }

    public func ticket(for stream: Int64) -> UInt64 { local.ticket(for: stream) }
    public func publish(_ stream: Int64) { local.publish(stream) }
    public func wait(for stream: Int64, after ticket: UInt64, timeout: Duration) async -> WaitOutcome {
        await local.wait(for: stream, after: ticket, timeout: timeout)
    }
    public func shutdown() { local.shutdown() }
    /// Other nodes' commits arrive with NOTIFY's lag.
    public var publishesEveryCommitFirst: Bool { false }

    /// Listens until graceful shutdown, reconnecting with backoff (0.1 s doubling to 5 s) whenever the connection drops.
    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.listen() }
    }

    private func listen() async {
        var delay = Duration.milliseconds(100)
        var connectionID = 0
        while !Task.isCancelled {
            connectionID += 1
            do {
                let connection = try await PostgresConnection.connect(configuration: try settings.connectionConfiguration(), id: connectionID,
                                                                      logger: logger)
                do {
                    try await connection.listen(on: Self.channel) { notifications in
                        listening.store(true, ordering: .relaxed)
                        delay = .milliseconds(100)
                        logger.info("listening for changes from other nodes", metadata: ["hub.channel": "\(Self.channel)"])
                        // Whatever other nodes committed while no listener ran was missed: every reader looks again.
                        local.publishAll()
                        for try await notification in notifications { deliver(notification.payload) }
                    }
                    listening.store(false, ordering: .relaxed)
                } catch {
                    listening.store(false, ordering: .relaxed)
                    try? await connection.close()
                    throw error
                }
                try? await connection.close()
            } catch {
                guard !Task.isCancelled else { break }
                logger.warning("change listener lost the database; retrying", metadata: ["hub.error": "\(StoreError(postgres: error))",
                                                                                         "hub.retry_in": "\(delay)"])
            }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(5))
        }
        listening.store(false, ordering: .relaxed)
    }

    /// `<node> <key>,<key>…`: wakes the keys, unless this node sent it (its writer already woke them).
    func deliver(_ payload: String) {
        guard let space = payload.firstIndex(of: " ") else { return }
        guard payload[..<space] != nodeID[...] else { return }
        for key in payload[payload.index(after: space)...].split(separator: ",") {
            if let key = Int64(key) { local.publish(key) }
        }
    }
}
