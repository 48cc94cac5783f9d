import HubProtocol
import ArgumentParser
import NIOHTTP1

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Is the hub up? Version, uptime, size, connections.",
        discussion: "Exit code 0 when the hub answers and is ready, 2 when it cannot be reached. Example: hubctl status --json")
    @OptionGroup var hub: HubOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let (stats, connections, hubName) = try await HubClient.with(hub) { client in
            _ = try await client.send(.GET, "/readyz")
            let stats = try await client.json(.GET, "/v1/admin/stats").json()
            // Connection counts are for global admins; a slot admin's token still gets the rest.
            let connections: JSONValue
            do { connections = try await client.json(.GET, "/v1/admin/connections").json() } catch let CtlError.refused(status, _, _) where status == 403 {
                connections = .null
            }
            return (stats, connections, client.name)
        }
        if output.json {
            return Terminal.current.line(JSONValue.object(["hub": .string(hubName), "ready": .bool(true), "stats": stats, "connections": connections]).serialized)
        }
        var f = Fields()
        f.add("hub", hubName)
        f.add("state", "ready")
        f.add("version", stats["version"].cell)
        f.add("http", stats["http_listener"].cell)
        f.add("uptime", stats["uptime_s"]?.int.map { Units.describe(seconds: max($0, 1)) } ?? "-")
        f.add("slots", stats["slots"].cell)
        f.add("streams", stats["streams"].cell)
        f.add("records", stats["records"].cell)
        f.add("size", AdminViews.bytes(stats["bytes"]))
        f.add("live readers", stats["live_readers_waiting"].cell)
        if connections != .null {
            f.add("connections", "\(connections["http"].cell) (sse \(connections["sse"].cell), long-poll \(connections["long_poll"].cell), websocket \(connections["websocket"].cell))")
        }
        Terminal.current.line(f.rendered)
    }
}
