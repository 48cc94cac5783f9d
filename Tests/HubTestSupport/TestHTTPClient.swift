import Foundation
import HubProtocol
import NIOCore
import NIOHTTP1
import NIOPosix

/// A response as the test sees it: status, headers (case-insensitive lookup) and the whole body.
public struct TestResponse: Sendable {
    public let status: Int
    public let headers: HTTPHeaders
    public let body: ByteBuffer

    public var text: String { String(buffer: body) }
    public func header(_ name: String) -> String? { headers.first(name: name) }
}

/// A minimal HTTP/1.1 client over NIO for tests: one connection per request, raw control over every header,
/// and streaming bodies for SSE. No redirects, no retries, no hidden headers.
public struct TestHTTPClient: Sendable {
    public let host: String
    public let port: Int
    /// When set, connect to this unix socket instead of host:port.
    public let unixSocket: String?

    public init(host: String = "127.0.0.1", port: Int) { self.host = host; self.port = port; self.unixSocket = nil }
    public init(unixSocket: String) { self.host = "localhost"; self.port = 0; self.unixSocket = unixSocket }

    public func request(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: String? = nil,
                        limit: Duration = .seconds(120)) async throws -> TestResponse {
        try await request(method, path, headers: headers, bytes: body.map { ByteBuffer(string: $0) }, limit: limit)
    }

    /// One request and its whole response. `limit` only guards against a hung test (a server that never answers
    /// fails the test, naming the request, instead of hanging the run); correct runs never reach it.
    public func request(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], bytes: ByteBuffer?,
                        limit: Duration = .seconds(120)) async throws -> TestResponse {
        try await withinLimit(limit, { [port] in "\(method) \(path) (port \(port)): no complete response within \(limit)" }) {
            try await exchange(method, path, headers: headers, bytes: bytes)
        }
    }

    private func exchange(_ method: HTTPMethod, _ path: String, headers: [(String, String)], bytes: ByteBuffer?) async throws -> TestResponse {
        let channel = try await connect()
        return try await channel.executeThenClose { inbound, outbound in
            try await send(method, path, headers: headers, body: bytes, to: outbound)
            var head: HTTPResponseHead?
            var body = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let h): head = h
                case .body(var b): body.writeBuffer(&b)
                case .end:
                    guard let head else { throw TestFailure("response without a head") }
                    return TestResponse(status: Int(head.status.code), headers: head.headers, body: body)
                }
            }
            throw TestFailure("connection closed before the response ended")
        }
    }

    /// Opens a streaming response; `onHead` sees the head, then each body chunk is delivered to `onChunk` until it
    /// returns false, the response ends, or the task is cancelled.
    public func stream(_ path: String, headers: [(String, String)] = [],
                       onHead: (HTTPResponseHead) throws -> Void,
                       onChunk: (ByteBuffer) async throws -> Bool) async throws {
        let channel = try await connect()
        try await channel.executeThenClose { inbound, outbound in
            try await send(.GET, path, headers: headers, body: nil, to: outbound)
            for try await part in inbound {
                switch part {
                case .head(let h): try onHead(h)
                case .body(let b): if try await !onChunk(b) { return }
                case .end: return
                }
            }
        }
    }

    private func connect() async throws -> NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart> {
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        let setup: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>> = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
            }
        }
        if let unixSocket { return try await bootstrap.connect(unixDomainSocketPath: unixSocket, channelInitializer: setup) }
        return try await bootstrap.connect(host: host, port: port, channelInitializer: setup)
    }

    private func send(_ method: HTTPMethod, _ path: String, headers: [(String, String)], body: ByteBuffer?,
                      to outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>) async throws {
        var fields = HTTPHeaders(headers)
        fields.replaceOrAdd(name: "Host", value: "\(host):\(port)")
        if let body { fields.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes)) }
        else if method == .POST || method == .PUT { fields.replaceOrAdd(name: "Content-Length", value: "0") }
        try await outbound.write(.head(HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: fields)))
        if let body, body.readableBytes > 0 { try await outbound.write(.body(.byteBuffer(body))) }
        try await outbound.write(.end(nil))
    }
}

extension TestHTTPClient {
    /// Reads an SSE response, handing each parsed event to `onEvent` until it returns false or the server ends the
    /// response. Returns the response head and whether the server ended it (as opposed to us stopping early).
    /// `limit` only guards against a hung test; correct runs finish on events, never on the clock.
    @discardableResult
    public func sse(_ url: String, headers: [(String, String)] = [], limit: Duration = .seconds(120),
                    onHead: @escaping @Sendable (HTTPResponseHead) -> Void = { _ in },
                    onEvent: @escaping @Sendable (SSEEvent) async throws -> Bool) async throws -> Bool {
        let client = self
        return try await withinLimit(limit, { "SSE read of \(url) did not finish within \(limit)" }) {
            var parser = SSEParser()
            var stoppedEarly = false
            try await client.stream(url, headers: headers, onHead: onHead) { chunk in
                for event in parser.feed(chunk) where try await !onEvent(event) {
                    stoppedEarly = true
                    return false
                }
                return true
            }
            return !stoppedEarly
        }
    }
}
