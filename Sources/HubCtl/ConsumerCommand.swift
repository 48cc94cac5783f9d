import ArgumentParser
import NIOHTTP1

struct ConsumerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consumer", abstract: "List durable WebSocket consumers and their lag; reset one.",
        discussion: """
              hubctl consumer ls --slot acme
              hubctl consumer reset acme billing
            """,
        subcommands: [List.self, Reset.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List consumers with acknowledged seq, head and lag.",
                                                        discussion: "Example: hubctl consumer ls --slot acme")
        @Option(help: ArgumentHelp("Only this slot's consumers.", valueName: "slot")) var slot: String?
        @OptionGroup var hub: HubOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let response = try await HubClient.with(hub) { try await $0.json(.GET, "/v1/admin/consumers" + URLText.query([("slot", slot)])) }
            try Terminal.current.list(response, json: output.json, headers: AdminViews.consumerHeaders, row: AdminViews.consumerRow, empty: "no consumers")
        }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset", abstract: "Forget a consumer: its next connection starts over (from since=, or the oldest record).",
            discussion: "Example: hubctl consumer reset acme billing")
        @Argument(help: "The consumer's slot.") var slot: String
        @Argument(help: "The consumer's name.") var name: String
        @OptionGroup var hub: HubOptions

        func run() async throws {
            _ = try await HubClient.with(hub) { try await $0.json(.DELETE, "/v1/admin/consumers/\(URLText.path(slot))/\(URLText.path(name))") }
            Terminal.current.note("reset consumer \(name) of slot \(slot)")
        }
    }
}
