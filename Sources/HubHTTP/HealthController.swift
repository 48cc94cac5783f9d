import HubCore
import Hummingbird

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
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: .init(string: #"{"status":"ok"}"#)))
    }
}
