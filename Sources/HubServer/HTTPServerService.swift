import Foundation
import HubHTTP
import Hummingbird
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// Where a listener comes from: bound from the configuration, or adopted from systemd socket activation.
public enum ListenTarget: Sendable, CustomStringConvertible {
    case address(host: String, port: Int)
    case unixPath(String)
    /// An already bound and listening socket (socket activation).
    case adopted(fd: Int32, name: String)

    public var description: String {
        switch self {
        case .address(let host, let port): "\(host):\(port)"
        case .unixPath(let path): path
        case .adopted(let fd, let name): "systemd socket \(name) (fd \(fd))"
        }
    }
}

/// The HTTP/1.1 server (with WebSocket upgrades), one code path whether it binds its socket or adopts one from systemd (Hummingbird's own
/// `Application` can only bind). Runs the router's responder over Hummingbird's HTTP1 channel; on graceful shutdown
/// it stops accepting and lets open connections finish.
struct HTTPServerService: Service {
    let target: ListenTarget
    let responder: RouterResponder<HubRequestContext>
    let logger: Logger
    /// Counts open connections (metrics and the admin API).
    let metrics: HubMetrics
    /// WebSocket upgrades (`/v1/ws`) go through the same router, which decides whether to upgrade.
    let webSocket: WebSocketSettings
    /// The hot routes, answered from the event loop (`HotPathRouter` decides); nil: every request goes to the router.
    var hotPath: HotPath? = nil
    /// When set, connections speak TLS with the current certificate.
    var tls: TLSCertificates? = nil
    let onRunning: @Sendable (any Channel) -> Void

    func run() async throws {
        let responder = self.responder
        let logger = self.logger
        let child = UpgradableHTTPChannel(responder: { request, responseWriter, channel in
            var requestLogger = logger
            requestLogger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
            let context = HubRequestContext(source: .init(channel: channel, logger: requestLogger))
            var response: Response
            do {
                if request.uri.query?.contains("live=") == true {
                    // A live read (SSE, long-poll) is routed in a child task: the middleware chain takes ~20 KiB of
                    // async frames at its deepest, and a task keeps every slab it ever grew until it ends, so in the
                    // connection's own task that high-water mark would stay under the open SSE body. (Not for every
                    // request: the extra task costs ~50% on a short router request.)
                    async let routed = responder.respond(to: request, context: context)
                    response = try await routed
                } else {
                    response = try await responder.respond(to: request, context: context)
                }
            } catch {
                // ProblemMiddleware renders every error; anything reaching here is a bug, answered without detail.
                requestLogger.error("unhandled error", metadata: ["error": "\(error)"])
                response = Response(status: .internalServerError)
            }
            response.headers[.date] = HTTPDate.now
            response.headers[.server] = "hubd"
            let writer = responseWriter
            try await writer.write(response: response.head, body: response.body)
        }, router: responder, settings: webSocket, hotPath: hotPath)
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            // A channel keeps its last read buffer for the next read, so its first size stays with every idle
            // connection: 1 KiB (nginx's client_header_buffer_size) instead of NIO's 2 KiB; it adapts upwards for
            // connections that read more (bodies, pipelined requests).
            .childChannelOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1024, maximum: 65536))
        let tls = self.tls
        let setup: @Sendable (any Channel) -> EventLoopFuture<UpgradableHTTPChannel.Value> = { channel in
            guard let tls else { return child.setup(channel: channel, logger: logger) }
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.current))
            }.flatMap { child.setup(channel: channel, logger: logger) }
        }
        let server: NIOAsyncChannel<UpgradableHTTPChannel.Value, Never>
        switch target {
        case .address(let host, let port):
            server = try await bootstrap.bind(host: host, port: port, serverBackPressureStrategy: nil, childChannelInitializer: setup)
        case .unixPath(let path):
            server = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true, serverBackPressureStrategy: nil,
                                              childChannelInitializer: setup)
        case .adopted(let fd, _):
            server = try await bootstrap.bind(fd, serverBackPressureStrategy: nil, childChannelInitializer: setup)
        }
        onRunning(server.channel)
        try await withGracefulShutdownHandler {
            try await serveConnections(from: server, child: child)
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }

    /// What the connection loop hears of.
    private enum ConnectionEvent: Sendable {
        case accepted(UpgradableHTTPChannel.Value)
        /// The connection needs its task now (`UpgradableHTTPChannel.whenTaskNeeded`).
        case needsTask(UpgradableHTTPChannel.Value)
        /// The connection ended without ever needing one.
        case ended(any Channel)
        case listenerClosed
    }

    /// Gives each connection a task only once it needs one (`UpgradableHTTPChannel.whenTaskNeeded`): an idle connection
    /// the hot path alone serves is its channel and its parked entry, nothing more. The accept loop and the
    /// connections' futures feed one stream, which this loop (the task group's owner, the only one that may add to
    /// it) turns into tasks. Returns once the listener closed and every connection ended. When the listener closes
    /// (graceful shutdown), the connections without a task are asked to quiesce, as Hummingbird asks its own: idle
    /// ones close at once, busy ones after their answer (otherwise an idle keep-alive client held the shutdown for
    /// the whole grace period). Cancelled (the grace is over), it closes the connections that still have no task;
    /// those with one close as their task is cancelled.
    private func serveConnections(from server: NIOAsyncChannel<UpgradableHTTPChannel.Value, Never>,
                                  child: UpgradableHTTPChannel) async throws {
        let (events, sink) = AsyncStream.makeStream(of: ConnectionEvent.self)
        let metrics = self.metrics, logger = self.logger
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                defer { sink.yield(.listenerClosed) }
                try await server.executeThenClose { inbound in
                    for try await connection in inbound { sink.yield(.accepted(connection)) }
                }
            }
            var taskless: [ObjectIdentifier: any Channel] = [:]
            var listening = true
            for await event in events {
                switch event {
                case .accepted(let connection):
                    metrics.connectionOpened()
                    taskless[ObjectIdentifier(connection.channel)] = connection.channel
                    child.whenTaskNeeded(connection) { needed in sink.yield(needed ? .needsTask(connection) : .ended(connection.channel)) }
                case .needsTask(let connection):
                    taskless[ObjectIdentifier(connection.channel)] = nil
                    group.addTask {
                        await child.handle(value: connection, logger: logger)
                        metrics.connectionClosed()
                    }
                case .ended(let channel):
                    taskless[ObjectIdentifier(channel)] = nil
                    metrics.connectionClosed()
                case .listenerClosed:
                    listening = false
                    for channel in taskless.values {
                        channel.eventLoop.execute { channel.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
                    }
                }
                if !listening, taskless.isEmpty { break }
            }
            sink.finish()
            for channel in taskless.values {
                channel.close(promise: nil)
                metrics.connectionClosed()
            }
        }
    }
}
