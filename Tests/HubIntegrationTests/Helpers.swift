import HubProtocol
import HubTestSupport
import NIOCore
import NIOHTTP1
import Testing

let textType = ("Content-Type", "text/plain")
let jsonType = ("Content-Type", "application/json")

extension RunningHub {
    func put(_ path: String, _ headers: [(String, String)] = [textType], body: String? = nil) async throws -> TestResponse {
        try await client.request(.PUT, streamURL(path), headers: headers, body: body)
    }
    func post(_ path: String, _ headers: [(String, String)] = [textType], body: String? = nil) async throws -> TestResponse {
        try await client.request(.POST, streamURL(path), headers: headers, body: body)
    }
    func get(_ path: String, _ query: String = "", headers: [(String, String)] = []) async throws -> TestResponse {
        try await client.request(.GET, streamURL(path, query), headers: headers)
    }
    func head(_ path: String) async throws -> TestResponse { try await client.request(.HEAD, streamURL(path)) }
    func delete(_ path: String) async throws -> TestResponse { try await client.request(.DELETE, streamURL(path)) }
}

/// Events of an SSE read, collected until `stop` says so (or the server ends the response).
actor EventLog {
    var events: [SSEEvent] = []
    func add(_ e: SSEEvent) -> [SSEEvent] { events.append(e); return events }
}
