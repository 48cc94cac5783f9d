import HubProtocol
import ArgumentParser
import NIOHTTP1

struct SlotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slot", abstract: "Create, list, change and delete slots.",
        discussion: """
            A slot is the unit of tenancy and ordering: its streams share one sequence, its retention and limits, \
            and tokens are minted for it.

            Examples:
              hubctl slot create acme --max-age 7d --max-bytes 10G --max-message-bytes 256K
              hubctl slot set acme --max-age none --anonymous-read true
              hubctl slot ls --json
            """,
        subcommands: [List.self, Create.self, Show.self, Set.self, Remove.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the slots within reach.",
                                                        discussion: "Examples: hubctl slot ls; hubctl slot ls --json | jq -r '.items[].name'")
        @OptionGroup var hub: HubOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let response = try await HubClient.with(hub) { try await $0.json(.GET, "/v1/admin/slots") }
            try Terminal.current.list(response, json: output.json, headers: AdminViews.slotHeaders, row: AdminViews.slotRow, empty: "no slots")
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Create a slot.",
            discussion: "Example: hubctl slot create acme --max-age 7d --max-records 1000000")
        @Argument(help: "The slot's name: [a-z0-9][a-z0-9._-]{0,62}.") var name: String
        @OptionGroup var settings: SlotSettingsOptions
        @OptionGroup var hub: HubOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            var document: [String: JSONValue] = ["name": .string(name)]
            try settings.apply(to: &document)
            let response = try await HubClient.with(hub) { try await $0.json(.POST, "/v1/admin/slots", .object(document)) }
            if output.json { return Terminal.current.document(response) }
            // The confirmation first, then the details it confirms.
            Terminal.current.note("created slot \(name)")
            Terminal.current.line(AdminViews.slotFields(try response.json()).rendered)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a slot: size, head, retention, limits.",
                                                        discussion: "Example: hubctl slot show acme --json")
        @Argument(help: "The slot's name.") var name: String
        @OptionGroup var hub: HubOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let response = try await HubClient.with(hub) { try await $0.json(.GET, "/v1/admin/slots/" + URLText.path(name)) }
            if output.json { return Terminal.current.document(response) }
            Terminal.current.line(AdminViews.slotFields(try response.json()).rendered)
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set", abstract: "Change a slot's retention, limits or anonymous access.",
            discussion: """
                Only the settings given change; 'none' removes a limit. Examples:
                  hubctl slot set acme --max-records 500000
                  hubctl slot set acme --max-age none --anonymous-read false
                """)
        @Argument(help: "The slot's name.") var name: String
        @OptionGroup var settings: SlotSettingsOptions
        @OptionGroup var hub: HubOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard settings.isAnySet else { throw ValidationError("give at least one setting to change (see 'hubctl slot set --help')") }
        }

        func run() async throws {
            let response = try await HubClient.with(hub) { client in
                // The API replaces a settings group as a whole, so start from the slot's current groups.
                let path = "/v1/admin/slots/" + URLText.path(name)
                guard case var .object(document) = try await client.json(.GET, path).json() else { throw CtlError.failed("unexpected answer for slot \(name)") }
                document = document.filter { ["retention", "limits", "anonymous"].contains($0.key) }
                try settings.apply(to: &document)
                return try await client.json(.PATCH, path, .object(document))
            }
            if output.json { return Terminal.current.document(response) }
            Terminal.current.line(AdminViews.slotFields(try response.json()).rendered)
            Terminal.current.note("updated slot \(name)")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rm", abstract: "Delete a slot with all its streams, records, tokens and consumers.",
            discussion: "This cannot be undone; take a backup first. Example: hubctl slot rm acme --yes")
        @Argument(help: "The slot's name.") var name: String
        @Flag(help: "Confirm the deletion (required).") var yes = false
        @OptionGroup var hub: HubOptions

        func validate() throws {
            guard yes else { throw ValidationError("deleting slot '\(name)' removes all its data; add --yes to confirm") }
        }

        func run() async throws {
            _ = try await HubClient.with(hub) { try await $0.json(.DELETE, "/v1/admin/slots/" + URLText.path(name)) }
            Terminal.current.note("deleted slot \(name)")
        }
    }
}

/// Retention, limits and anonymous access, shared by `slot create` and `slot set`.
struct SlotSettingsOptions: ParsableArguments {
    @Option(name: .customLong("max-age"), help: ArgumentHelp("Remove records older than this (90s, 15m, 12h, 7d, 2w); 'none' for no limit.", valueName: "duration"))
    var maxAge: String?
    @Option(name: .customLong("max-bytes"), help: ArgumentHelp("Keep at most this much data (512M, 10G); 'none' for no limit.", valueName: "size"))
    var maxBytes: String?
    @Option(name: .customLong("max-records"), help: ArgumentHelp("Keep at most this many records; 'none' for no limit.", valueName: "count"))
    var maxRecords: String?
    @Option(name: .customLong("max-message-bytes"), help: ArgumentHelp("Largest event accepted (64K); 'none' for the hub's default.", valueName: "size"))
    var maxMessageBytes: String?
    @Option(name: .customLong("max-subscribers"), help: ArgumentHelp("Live SSE/WebSocket followers per node; 'none' for no limit.", valueName: "count"))
    var maxSubscribers: String?
    @Option(name: .customLong("anonymous-read"), help: ArgumentHelp("Let requests without a token read (true|false).", valueName: "bool"))
    var anonymousRead: Bool?
    @Option(name: .customLong("anonymous-append"), help: ArgumentHelp("Let requests without a token append (true|false).", valueName: "bool"))
    var anonymousAppend: Bool?

    var isAnySet: Bool {
        [maxAge, maxBytes, maxRecords, maxMessageBytes, maxSubscribers].contains { $0 != nil } || anonymousRead != nil || anonymousAppend != nil
    }

    func validate() throws {
        _ = try parsed()
    }

    /// Sets the given values in the admin API's `retention`, `limits` and `anonymous` groups of `document`.
    func apply(to document: inout [String: JSONValue]) throws {
        for (group, key, value) in try parsed() {
            var members: [String: JSONValue] = [:]
            if case let .object(existing)? = document[group] { members = existing }
            members[key] = value
            document[group] = .object(members)
        }
    }

    private func parsed() throws -> [(String, String, JSONValue)] {
        var out: [(String, String, JSONValue)] = []
        func limit(_ text: String?, _ flag: String, _ group: String, _ key: String, _ parse: (String) -> Int64?, _ what: String) throws {
            guard let text else { return }
            if text == "none" { return out.append((group, key, .null)) }
            guard let n = parse(text) else { throw ValidationError("--\(flag): '\(text)' is not \(what) (or 'none')") }
            out.append((group, key, .int(n)))
        }
        try limit(maxAge, "max-age", "retention", "max_age_s", Units.seconds, "a duration like 90s, 15m, 12h, 7d")
        try limit(maxBytes, "max-bytes", "retention", "max_bytes", Units.bytes, "a size like 512M or 10G")
        try limit(maxRecords, "max-records", "retention", "max_records", { Int64($0).flatMap { $0 > 0 ? $0 : nil } }, "a positive count")
        try limit(maxMessageBytes, "max-message-bytes", "limits", "max_message_bytes", Units.bytes, "a size like 64K")
        try limit(maxSubscribers, "max-subscribers", "limits", "max_subscribers", { Int64($0).flatMap { $0 > 0 ? $0 : nil } }, "a positive count")
        if let anonymousRead { out.append(("anonymous", "read", .bool(anonymousRead))) }
        if let anonymousAppend { out.append(("anonymous", "append", .bool(anonymousAppend))) }
        return out
    }
}
