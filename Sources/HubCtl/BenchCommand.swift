import HubProtocol
import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Drive a hub with publishers and SSE or WebSocket subscribers; report throughput and latency.",
        discussion: """
            Creates a scratch slot (bench-<random>) and a token for it through the admin connection, connects the \
            subscribers, publishes --messages events split across the publishers, waits until every subscriber has \
            every event (or --drain runs out), deletes the slot, and prints a table: publish rate and request \
            latency, delivery rate and end-to-end latency (p50, p99, p99.9, max), lost and duplicated deliveries.

            Latency is measured from the publisher's clock to the subscriber's: run bench on the hub's machine or \
            on one with a synchronised clock. Publishers and subscribers use the hub's HTTP listener: the one in \
            its stats (over the admin socket), --data-url, or --url.
              hubctl bench
              hubctl bench --subscribers 1000 --messages 100000 --transport ws --batch 10
              hubctl bench --publishers 4 --rate 2000 --size 512 --json
            """)
    @Option(help: "Concurrent publishers.") var publishers: Int = 1
    @Option(help: "Events to publish in all.") var messages: Int = 10_000
    @Option(help: "Concurrent subscribers; each receives every event.") var subscribers: Int = 10
    @Option(help: "Subscriber transport: sse or ws.") var transport: Transport = .sse
    @Option(help: "Bytes per event (at least 64).") var size: Int = 128
    @Option(help: "Events per publish request.") var batch: Int = 1
    @Option(help: "Events per second in all (0: as fast as the hub takes them).") var rate: Int = 0
    @Option(help: "Seconds to wait for deliveries after the last publish.") var drain: Int = 30
    @Option(help: "Use this existing slot instead of a scratch one (its events are kept).") var slot: String?
    @Flag(help: "Keep the scratch slot afterwards.") var keep = false
    @Option(name: .customLong("data-url"), help: ArgumentHelp("The hub's HTTP listener for publishers and subscribers (default: from the hub).", valueName: "url"))
    var dataURL: String?
    @OptionGroup var hub: HubOptions
    @OptionGroup var output: OutputOptions

    enum Transport: String, ExpressibleByArgument, CaseIterable, Sendable { case sse, ws }

    func validate() throws {
        guard (1...1000).contains(publishers) else { throw ValidationError("--publishers must be 1 to 1000") }
        guard (1...10_000_000).contains(messages) else { throw ValidationError("--messages must be 1 to 10000000") }
        guard (0...20_000).contains(subscribers) else { throw ValidationError("--subscribers must be 0 to 20000") }
        guard (64...1_048_576).contains(size) else { throw ValidationError("--size must be 64 to 1048576 bytes") }
        guard (1...1000).contains(batch) else { throw ValidationError("--batch must be 1 to 1000") }
        guard rate >= 0 else { throw ValidationError("--rate cannot be negative") }
        guard (1...3600).contains(drain) else { throw ValidationError("--drain must be 1 to 3600 seconds") }
        if let dataURL, URL(string: dataURL)?.host == nil { throw ValidationError("--data-url must be an http:// URL") }
    }

    func run() async throws {
        let plan = BenchPlan(publishers: publishers, messages: messages, subscribers: subscribers, transport: transport, size: size,
                             batch: batch, rate: rate, drain: .seconds(drain))
        let report = try await HubClient.with(hub) { admin in
            let setup = try await BenchSetup.prepare(admin: admin, slot: slot, dataURL: dataURL, scratch: slot == nil)
            do {
                let report = try await BenchRun(plan: plan, setup: setup).run()
                try await setup.finish(admin: admin, keep: keep)
                return report
            } catch {
                try? await setup.finish(admin: admin, keep: keep)
                throw error
            }
        }
        let terminal = Terminal.current
        if output.json { return terminal.line(report.json.serialized) }
        terminal.line(report.rendered)
        if report.lost > 0 || report.duplicates > 0 || report.failedPublishes > 0 {
            terminal.note("hubctl: \(report.lost) lost, \(report.duplicates) duplicated deliveries, \(report.failedPublishes) failed publishes")
        }
    }
}

struct BenchPlan: Sendable {
    var publishers: Int
    var messages: Int
    var subscribers: Int
    var transport: BenchCommand.Transport
    var size: Int
    var batch: Int
    var rate: Int
    var drain: Duration
}

/// The scratch slot, its token and the URL the data traffic goes to.
struct BenchSetup: Sendable {
    var slot: String
    var token: String?
    var tokenID: String?
    var dataURL: String
    /// Seqs up to here were in the slot before the run.
    var baseSeq: UInt64
    var scratch: Bool

    static func prepare(admin: HubClient, slot: String?, dataURL: String?, scratch: Bool) async throws -> BenchSetup {
        let url: String
        switch admin.target {
        case let .url(base, _): url = dataURL ?? base
        case .socket:
            if let dataURL { url = dataURL } else {
                let stats = try await admin.json(.GET, "/v1/admin/stats").json()
                url = try listenURL(stats["http_listener"]?.string)
            }
        }
        let name = slot ?? "bench-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        if scratch { _ = try await admin.json(.POST, "/v1/admin/slots", .object(["name": .string(name)])) }
        let state = try await admin.json(.GET, "/v1/admin/slots/" + URLText.path(name)).json()
        let minted = try await admin.json(.POST, "/v1/admin/tokens", .object([
            "slot": .string(name), "scopes": .array([.string("read"), .string("append")]), "label": .string("hubctl bench"),
            "expires_in_s": .int(86_400),
        ])).json()
        return BenchSetup(slot: name, token: minted["token"]?.string, tokenID: minted["id"]?.string, dataURL: url,
                          baseSeq: UInt64(state["head_seq"]?.int ?? 0), scratch: scratch)
    }

    /// The URL of the hub's bound HTTP listener (a wildcard address means this machine's loopback).
    static func listenURL(_ listen: String?) throws(CtlError) -> String {
        guard let listen, let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw .config("cannot tell the hub's HTTP address from its config; give --data-url")
        }
        var host = String(listen[..<colon])
        if ["", "0.0.0.0", "*"].contains(host) { host = "127.0.0.1" }
        if ["[::]", "::"].contains(host) { host = "[::1]" }
        return "http://\(host):\(port)"
    }

    func finish(admin: HubClient, keep: Bool) async throws {
        if scratch && !keep {
            _ = try await admin.json(.DELETE, "/v1/admin/slots/" + URLText.path(slot))
        } else if let tokenID {
            _ = try await admin.json(.DELETE, "/v1/admin/tokens/" + URLText.path(tokenID))
            if scratch { Terminal.current.note("kept slot \(slot)") }
        }
    }
}
