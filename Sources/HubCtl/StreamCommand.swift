import ArgumentParser
import Foundation
import HubProtocol
import NIOHTTP1

struct StreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream", abstract: "List, create, inspect, close and delete Durable Streams.",
        discussion: """
            A stream's path starts with its slot: acme/orders is the stream 'orders' in slot 'acme'.
              hubctl stream create acme/orders --content-type application/json
              hubctl stream ls --slot acme
              hubctl stream close acme/orders
            """,
        subcommands: [List.self, Create.self, Info.self, Close.self, Remove.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List streams with their sizes and heads.",
                                                        discussion: "Examples: hubctl stream ls acme, hubctl stream ls --slot acme")
        @Argument(help: ArgumentHelp("Only this slot's streams (the same as --slot).", valueName: "slot")) var slotName: String?
        @Option(help: ArgumentHelp("Only this slot's streams.", valueName: "slot")) var slot: String?
        @Option(help: ArgumentHelp("At most this many (1 to 10000).", valueName: "n")) var limit: Int = 1000
        @OptionGroup var hub: HubOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be 1 to 10000") }
            if let slotName, let slot, slotName != slot {
                throw ValidationError("the slot is given twice ('\(slotName)' and --slot '\(slot)'); give one")
            }
        }

        func run() async throws {
            let path = "/v1/admin/streams" + URLText.query([("slot", slotName ?? slot), ("limit", String(limit))])
            let response = try await HubClient.with(hub) { try await $0.json(.GET, path) }
            try Terminal.current.list(response, json: output.json, headers: AdminViews.streamHeaders, row: AdminViews.streamRow, empty: "no streams")
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Create a stream (idempotent when the settings match).",
            discussion: "Example: hubctl stream create acme/orders --content-type application/json --ttl 7d")
        @Argument(help: "The stream's path, slot first.") var path: String
        @Option(name: .customLong("content-type"), help: ArgumentHelp("The stream's type (default application/octet-stream).", valueName: "type"))
        var contentType: String?
        @Option(help: ArgumentHelp("Delete the stream after this long without reads or writes (e.g. 1h, 7d).", valueName: "duration"))
        var ttl: String?
        @Option(name: .customLong("expires-at"), help: ArgumentHelp("Delete the stream at this RFC 3339 time.", valueName: "time"))
        var expiresAt: String?
        @Flag(help: "Create the stream closed (empty and final).") var closed = false
        @OptionGroup var hub: HubOptions

        func validate() throws {
            if ttl != nil && expiresAt != nil { throw ValidationError("--ttl and --expires-at are alternatives; give one") }
            if let ttl, Units.seconds(ttl) == nil { throw ValidationError("--ttl: '\(ttl)' is not a duration like 1h or 7d") }
        }

        func run() async throws {
            var headers: [(String, String)] = [("Content-Type", contentType ?? "application/octet-stream")]
            if let ttl, let seconds = Units.seconds(ttl) { headers.append(("Stream-TTL", String(seconds))) }
            if let expiresAt { headers.append(("Stream-Expires-At", expiresAt)) }
            if closed { headers.append(("Stream-Closed", "true")) }
            let response = try await HubClient.with(hub) { try await $0.send(.PUT, "/v1/stream/" + URLText.path(path), headers: headers) }
            Terminal.current.note(response.status == 201 ? "created stream \(path)" : "stream \(path) already exists with these settings")
        }
    }

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "info", abstract: "Show a stream: type, records, size, next offset, state.",
                                                        discussion: "Example: hubctl stream info acme/orders --json")
        @Argument(help: "The stream's path.") var path: String
        @OptionGroup var hub: HubOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let response = try await HubClient.with(hub) { try await $0.json(.GET, "/v1/admin/streams/" + URLText.path(path)) }
            if output.json { return Terminal.current.document(response) }
            Terminal.current.line(AdminViews.streamFields(try response.json()).rendered)
        }
    }

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "close", abstract: "Close a stream: no more appends; readers see the end.",
                                                        discussion: "Example: hubctl stream close acme/orders")
        @Argument(help: "The stream's path.") var path: String
        @OptionGroup var hub: HubOptions

        func run() async throws {
            let response = try await HubClient.with(hub) {
                try await $0.send(.POST, "/v1/stream/" + URLText.path(path), headers: [("Stream-Closed", "true")])
            }
            Terminal.current.note("closed stream \(path) at offset \(response.headers.first(name: "Stream-Next-Offset") ?? "?")")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete a stream and its records.",
                                                        discussion: "Example: hubctl stream rm acme/orders --yes")
        @Argument(help: "The stream's path.") var path: String
        @Flag(help: "Confirm the deletion (required).") var yes = false
        @OptionGroup var hub: HubOptions

        func validate() throws {
            guard yes else { throw ValidationError("deleting stream '\(path)' removes its records; add --yes to confirm") }
        }

        func run() async throws {
            _ = try await HubClient.with(hub) { try await $0.send(.DELETE, "/v1/stream/" + URLText.path(path)) }
            Terminal.current.note("deleted stream \(path)")
        }
    }
}
