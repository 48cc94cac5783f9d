import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A webhook consumer on loopback for subscription tests: records every request it gets and answers each with what
/// `reply` says (status and body), so a test can accept, finish (`{"done":true}`) or fail deliveries.
public final class WebhookReceiver: Sendable {
    public struct Delivery: Sendable {
        public let path: String
        public let headers: [(String, String)]
        public let body: String
        public let receivedAt: ContinuousClock.Instant
        public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        /// The body as a JSON object.
        public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }

    public typealias Reply = @Sendable (Delivery) -> (status: Int, body: String)
    private let channel: any Channel
    private let group: MultiThreadedEventLoopGroup
    private let state: Mutex<(deliveries: [Delivery], reply: Reply)>
    private let arrivals: (stream: AsyncStream<Delivery>, continuation: AsyncStream<Delivery>.Continuation)
    public let port: Int

    public init(reply: @escaping Reply = { _ in (200, "{}") }) async throws {
        let state = Mutex<(deliveries: [Delivery], reply: Reply)>(([], reply))
        let arrivals = AsyncStream.makeStream(of: Delivery.self)
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let holder = StateHolder()
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(receiver: holder))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
        self.state = state
        self.arrivals = arrivals
        holder.receiver = self
    }

    /// `http://127.0.0.1:{port}{path}`.
    public func url(_ path: String = "/hook") -> String { "http://127.0.0.1:\(port)\(path)" }

    public func setReply(_ reply: @escaping Reply) { state.withLock { $0.reply = reply } }

    public var deliveries: [Delivery] { state.withLock { $0.deliveries } }

    /// The next delivery, or a failure after `limit`.
    public func next(within limit: Duration = .seconds(30)) async throws -> Delivery {
        try await withThrowingTaskGroup(of: Delivery?.self) { group in
            group.addTask { [arrivals] in
                var iterator = arrivals.stream.makeAsyncIterator()
                return await iterator.next()
            }
            group.addTask { try await Task.sleep(for: limit); return nil }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let delivery = first else { throw TestFailure("no webhook delivery within \(limit)") }
            return delivery
        }
    }

    public func close() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    fileprivate func received(_ delivery: Delivery) -> (status: Int, body: String) {
        let reply = state.withLock { state -> Reply in
            state.deliveries.append(delivery)
            return state.reply
        }
        arrivals.continuation.yield(delivery)
        return reply(delivery)
    }

    private final class StateHolder: @unchecked Sendable {
        weak var receiver: WebhookReceiver?
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let receiver: StateHolder
        var head: HTTPRequestHead?
        var body = ByteBuffer()
        init(receiver: StateHolder) { self.receiver = receiver }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h): head = h; body.clear()
            case .body(var chunk): body.writeBuffer(&chunk)
            case .end:
                guard let head else { return }
                let delivery = Delivery(path: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: String(buffer: body),
                                        receivedAt: .now)
                let (status, text) = receiver.receiver?.received(delivery) ?? (503, "")
                var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(text.utf8.count))])
                if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .init(statusCode: status), headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                self.head = nil
            }
        }
    }
}
