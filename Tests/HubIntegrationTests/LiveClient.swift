import Foundation
import HTTPTypes
import HubTestSupport
import WSClient
import WSCompression
import WSCore
import Logging
import NIOCore
import NIOWebSocket
import Testing

/// A WebSocket client session against a hub: hands every text frame to `onFrame` (with the writer, to send acks)
/// until it returns false or the server closes. Returns the server's close frame, if it sent one.
/// `limit` only guards against a hung test. It is generous: on a loaded 2-core CI machine the full suite slows
/// single tests by 20× (the slow-consumer test pushes 9 MB and took ~20 s there, under a second alone).
@discardableResult
func webSocket(port: Int, _ query: String, token: String? = nil, deflate: Bool = false, limit: Duration = .seconds(120),
               onFrame: @escaping @Sendable (String, WebSocketOutboundWriter) async throws -> Bool) async throws -> WebSocketCloseFrame? {
    var settings = WebSocketClientConfiguration(maxFrameSize: 1 << 22)
    if let token { settings.additionalHeaders = [.authorization: "Bearer \(token)"] }
    if deflate { settings.extensions = [WebSocketExtensionFactory.perMessageDeflate().build()] }
    let configuration = settings
    let logger = Logger(label: "ws-test", factory: { _ in SwiftLogNoOpLogHandler() })
    let url = "ws://127.0.0.1:\(port)/v1/ws?\(query)"
    return try await withinLimit(limit, { "WebSocket session \(query) did not finish within \(limit)" }) {
        try await WebSocketClient.connect(url: url, configuration: configuration, logger: logger) { inbound, outbound, _ in
            for try await message in inbound.messages(maxSize: 1 << 22) {
                guard case .text(let text) = message else { continue }
                if try await !onFrame(text, outbound) { return }
            }
        }
    }
}

/// Frames collected by a session, shared with the test body.
final class Frames: @unchecked Sendable {
    private let lock = NSLock()
    private var texts: [String] = []
    func add(_ text: String) -> Int {
        lock.lock(); defer { lock.unlock() }
        texts.append(text)
        return texts.count
    }
    var items: [[String: Any]] { lock.lock(); defer { lock.unlock() }; return texts.map(json) }
    var seqs: [Int] { items.compactMap { $0["seq"] as? Int } }
}

func json(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
}

extension RunningHub {
    /// `POST /v1/events/{slot}` with a JSON body.
    func postEvents(_ slot: String, _ body: String, token: String? = nil, headers: [(String, String)] = []) async throws -> TestResponse {
        var all = headers + [("Content-Type", "application/json")]
        if let token { all.append(("Authorization", "Bearer \(token)")) }
        return try await client.request(.POST, "/v1/events/\(slot)", headers: all, body: body)
    }
}

/// A value set from a callback (a response head, a status) and read by the test body.
final class LockedBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value?
    func set(_ value: Value) { lock.lock(); stored = value; lock.unlock() }
    var value: Value? { lock.lock(); defer { lock.unlock() }; return stored }
}
