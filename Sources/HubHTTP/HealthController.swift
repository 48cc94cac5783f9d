import HTTPTypes
import HubCore
import Hummingbird
import NIOCore

/// `GET /healthz`: the process is up. `GET /readyz`: the store is open, migrated and answering.
struct HealthController: Sendable {
    let store: any StreamStore

    func addRoutes(to router: Router<HubRequestContext>) {
        router.get("/healthz") { _, _ in Self.ok }
        router.get("/readyz") { _, _ in
            if let probe = store as? any ReadinessChecking { try await probe.checkReadiness() }
            return Self.ok
        }
    }

    static var ok: Response {
        Response(status: .ok, headers: okFields, body: .init(byteBuffer: okBody))
    }

    /// The answer's fields and body, which the hot path sends as well.
    static let okFields: HTTPFields = [.contentType: "application/json"]
    static let okBody = ByteBuffer(string: #"{"status":"ok"}"#)
}
