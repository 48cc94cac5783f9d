import AsyncHTTPClient
import Foundation
import HubProtocol
import NIOCore
import NIOHTTP1

/// One hub, over HTTP: the local admin socket (no token: the socket's permissions are the credential) or a URL
/// with a bearer token. Every failure becomes a `CtlError`: an error answer is `.refused` with the problem's code,
/// no answer is `.unreachable`.
final class HubClient: Sendable {
    enum Target: Sendable, Equatable {
        case socket(String)
        case url(base: String, token: String?)
    }

    let target: Target
    let http: HTTPClient
    let timeout: TimeAmount

    init(target: Target, timeout: TimeAmount, connectionsPerHost: Int = 8) {
        self.target = target
        self.timeout = timeout
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: min(.seconds(5), timeout), read: timeout)
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connectionsPerHost)
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// Runs `body` with a client for the hub the options name, and shuts the client down afterwards.
    static func with<T>(_ options: HubOptions, _ body: (HubClient) async throws -> T) async throws -> T {
        try await HubClient(target: try options.target(Terminal.current.environment), timeout: .seconds(Int64(options.timeout))).using(body)
    }

    /// Runs `body` with this client, then shuts it down (also when `body` throws or is cancelled).
    func using<T>(_ body: (HubClient) async throws -> T) async throws -> T {
        let client = self
        do {
            let result = try await body(client)
            try? await client.http.shutdown()
            return result
        } catch {
            try? await client.http.shutdown()
            throw error
        }
    }

    /// What the hub is, for messages: the socket path or the URL.
    var name: String {
        switch target {
        case let .socket(path): "the admin socket \(path)"
        case let .url(base, _): base
        }
    }

    /// The full URL of `path` (which starts with `/`, already percent-encoded) on this hub.
    func url(_ path: String) -> String {
        switch target {
        case let .socket(socket): URL(httpURLWithSocketPath: socket, uri: path)?.absoluteString ?? "http+unix://invalid\(path)"
        case let .url(base, _): base + path
        }
    }

    func request(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = []) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url(path))
        request.method = method
        if case let .url(_, token?) = target { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        return request
    }

    /// Sends a request and collects the answer (up to `maxBytes`). Error statuses are thrown as `.refused`.
    func send(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: ByteBuffer? = nil,
              maxBytes: Int = 64 << 20) async throws(CtlError) -> HubResponse {
        var request = request(method, path, headers: headers)
        if let body { request.body = .bytes(body) }
        let response = try await open(request, deadline: .now() + timeout)
        let bytes: ByteBuffer
        do {
            bytes = try await response.body.collect(upTo: maxBytes)
        } catch {
            throw Self.describe(error, hub: name)
        }
        let answer = HubResponse(status: Int(response.status.code), headers: response.headers, body: bytes)
        try answer.requireSuccess()
        return answer
    }

    /// JSON in, JSON out: the admin API.
    func json(_ method: HTTPMethod, _ path: String, _ document: JSONValue? = nil) async throws(CtlError) -> HubResponse {
        let body = document.map { ByteBuffer(string: $0.serialized) }
        return try await send(method, path, headers: body == nil ? [] : [("Content-Type", "application/json")], body: body)
    }

    /// Starts a request whose body the caller reads as it arrives (SSE, long responses).
    func open(_ request: HTTPClientRequest, deadline: NIODeadline) async throws(CtlError) -> HTTPClientResponse {
        if case let .socket(path) = target, !FileManager.default.fileExists(atPath: path) {
            throw .unreachable("no admin socket at \(path): is hubd running? (give --socket, or --url and a token for a remote hub)")
        }
        do {
            return try await http.execute(request, deadline: deadline)
        } catch {
            throw Self.describe(error, hub: name)
        }
    }

    static func describe(_ error: any Error, hub: String) -> CtlError {
        if let error = error as? CtlError { return error }
        if let error = error as? IOError {
            if error.errnoCode == EACCES { return .unreachable("permission denied on \(hub): run as root or the eventhub user, or use --url") }
            return .unreachable("\(hub): \(error.description)")
        }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout: return .unreachable("\(hub) did not answer in time")
            case .connectTimeout: return .unreachable("\(hub): connection timed out")
            case .remoteConnectionClosed: return .unreachable("\(hub) closed the connection")
            default: return .unreachable("\(hub): \(error)")
            }
        }
        return .unreachable("\(hub): \(error)")
    }
}

/// An answer from the hub.
struct HubResponse: Sendable {
    let status: Int
    let headers: HTTPHeaders
    let body: ByteBuffer

    var text: String { String(buffer: body) }

    func json() throws(CtlError) -> JSONValue {
        do {
            return try JSONValue.parse(Array(body.readableBytesView))
        } catch {
            throw .failed("the hub answered \(status) with a body that is not JSON")
        }
    }

    /// Throws `.refused` for 4xx/5xx, with the problem document's code and detail when there is one.
    func requireSuccess() throws(CtlError) {
        guard status >= 400 else { return }
        throw Self.refusal(status: status, body: Array(body.readableBytesView))
    }

    static func refusal(status: Int, body: [UInt8]) -> CtlError {
        let problem = try? JSONValue.parse(body)
        let code = problem?["code"]?.string ?? HTTPResponseStatus(statusCode: status).reasonPhrase.lowercased().replacingOccurrences(of: " ", with: "-")
        let detail = problem?["detail"]?.string ?? problem?["title"]?.string ?? HTTPResponseStatus(statusCode: status).reasonPhrase
        return .refused(status: status, code: code, detail: detail)
    }
}

/// Percent-encoding for values put into paths and queries.
enum URLText {
    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// One path segment, or a stream path whose `/` separators are kept.
    static func path(_ text: String) -> String {
        text.split(separator: "/", omittingEmptySubsequences: false)
            .map { String($0).addingPercentEncoding(withAllowedCharacters: unreserved) ?? "" }.joined(separator: "/")
    }

    static func query(_ items: [(String, String?)]) -> String {
        let pairs = items.compactMap { name, value in
            value.map { "\(name)=\($0.addingPercentEncoding(withAllowedCharacters: unreserved) ?? "")" }
        }
        return pairs.isEmpty ? "" : "?" + pairs.joined(separator: "&")
    }
}
