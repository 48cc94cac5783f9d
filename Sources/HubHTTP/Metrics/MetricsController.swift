import HubAuth
import HubCore
import Hummingbird
import NIOCore

/// `GET /metrics` in the Prometheus text format. Open by default (the listener is loopback unless configured
/// otherwise); with `metrics-require-token` it needs a global admin token.
struct MetricsController: Sendable {
    let metrics: HubMetrics
    let store: any AdminStore & SlotLog
    let requireToken: Bool

    func addRoutes(to router: Router<HubRequestContext>) {
        router.get("/metrics") { _, context in
            if requireToken {
                try context.requireHubAdmin()
            }
            let body = metrics.exposition(slots: try await store.slots(), consumers: try await store.consumers(slot: nil))
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
    }
}
