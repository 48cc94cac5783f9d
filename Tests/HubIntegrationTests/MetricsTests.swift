import Foundation
import HubServer
import HubTestSupport
import Testing

@Suite("Operations: /metrics")
struct MetricsTests {
    func value(_ text: String, _ series: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
    }

    @Test("appends, bytes, responses, live SSE connections, delivery latency and slot sizes are exposed")
    func exposition() async throws {
        try await withRunningHub { hub in
            let p = "met/" + uniqueStream()
            _ = try await hub.put(p, [jsonType], body: #"[{"a":1},{"b":2}]"#)
            _ = try await hub.post(p, [jsonType], body: "3")
            _ = try await hub.post(p, [jsonType], body: "{bad")
            let sseOpen = try await hub.sse(hub.streamURL(p, "offset=-1&live=sse")) { event in
                guard event.type == "control" else { return true }
                let text = try await hub.client.request(.GET, "/metrics").text
                #expect(self.value(text, #"hub_connections{transport="sse"}"#) == 1)
                #expect((self.value(text, #"hub_connections{transport="http"}"#) ?? 0) >= 2, "the SSE connection and this one")
                let open = try await hub.client.request(.GET, "/v1/admin/connections").text
                #expect(open.contains(#""sse":1"#) && open.contains(#""long_poll":0"#), "\(open)")
                return false
            }
            #expect(!sseOpen)
            let r = try await hub.client.request(.GET, "/metrics")
            #expect(r.status == 200 && r.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
            #expect(value(r.text, "hub_appended_messages_total") == 3)
            #expect(value(r.text, #"hub_http_responses_total{code="4xx"}"#) == 1)
            #expect(value(r.text, #"hub_slot_records{slot="met"}"#) == 3)
            #expect(value(r.text, #"hub_build_info{version="0.1.0"}"#) == 1)
            #expect(r.text.contains("hub_delivery_latency_seconds_bucket"))
        }
    }

    @Test("auth failures are counted by reason; metrics can require an admin token")
    func authFailures() async throws {
        try await withRunningHub({ $0.auth = .tokens; $0.metricsRequireToken = true }) { hub in
            let admin = try String(contentsOfFile: hub.dataDirectory + "/admin.token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await hub.client.request(.GET, "/metrics").status == 401)
            _ = try await hub.get("x/y", headers: [("Authorization", "Bearer hub_" + String(repeating: "B", count: 43))])
            let r = try await hub.client.request(.GET, "/metrics", headers: [("Authorization", "Bearer \(admin)")])
            #expect(r.status == 200)
            #expect(value(r.text, #"hub_auth_failures_total{reason="missing"}"#) == 1)
            #expect(value(r.text, #"hub_auth_failures_total{reason="invalid"}"#) == 1)
        }
    }
}
