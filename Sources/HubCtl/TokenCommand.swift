import HubProtocol
import Foundation
import ArgumentParser
import NIOHTTP1

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Mint, list, rotate and revoke bearer tokens.",
        discussion: """
            Secrets are printed once, alone on stdout, so they can be captured:
              TOKEN=$(hubctl token mint --slot acme --scope read,append --label "order service" --expires 30d)
              NEW=$(hubctl token rotate tok_Xf3... --overlap 1h)
              hubctl token ls --slot acme
            """,
        subcommands: [Mint.self, List.self, Rotate.self, Revoke.self])

    struct Mint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mint", abstract: "Mint a token; prints its secret (shown once).",
            discussion: """
                  TOKEN=$(hubctl token mint --slot acme --scope read,append --label "order service" --expires 30d)
                  hubctl token mint --slot acme --scope read --prefix acme/public --label "status page"
                """)
        @Option(help: ArgumentHelp("The slot the token is for, or '*' for every slot (global admins only).", valueName: "slot"))
        var slot: String
        @Option(name: .customLong("scope"), parsing: .singleValue,
                help: ArgumentHelp("Scopes: read, append, create, delete, consume, admin; comma-separated or repeated.", valueName: "scopes"))
        var scopes: [String]
        @Option(help: ArgumentHelp("Limit the token to streams under this path inside the slot (e.g. acme/orders).", valueName: "path"))
        var prefix: String?
        @Option(help: ArgumentHelp("Who uses the token (required: it is how 'token ls' and the audit log tell tokens apart).", valueName: "text"))
        var label: String
        @Option(help: ArgumentHelp("Expire after this long (30d, 12h).", valueName: "duration")) var expires: String?
        @OptionGroup var hub: HubOptions
        @OptionGroup var output: OutputOptions

        static let knownScopes: Swift.Set<String> = ["read", "append", "create", "delete", "consume", "admin"]

        var scopeList: [String] { scopes.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty } }

        func validate() throws {
            guard !scopeList.isEmpty else { throw ValidationError("--scope needs at least one scope") }
            if let unknown = scopeList.first(where: { !Self.knownScopes.contains($0) }) {
                throw ValidationError("unknown scope '\(unknown)'; scopes are \(Self.knownScopes.sorted().joined(separator: ", "))")
            }
            if let expires, Units.seconds(expires) == nil { throw ValidationError("--expires: '\(expires)' is not a duration like 12h or 30d") }
        }

        func run() async throws {
            var document: [String: JSONValue] = ["slot": .string(slot), "scopes": .array(scopeList.map(JSONValue.string))]
            if let prefix { document["prefix"] = .string(prefix) }
            document["label"] = .string(label)
            if let expires, let seconds = Units.seconds(expires) { document["expires_in_s"] = .int(seconds) }
            let response = try await HubClient.with(hub) { try await $0.json(.POST, "/v1/admin/tokens", .object(document)) }
            try TokenCommand.printSecret(response, json: output.json, verb: "minted")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List tokens (never their secrets).",
                                                        discussion: "Example: hubctl token ls --slot acme")
        @Option(help: ArgumentHelp("Only this slot's tokens.", valueName: "slot")) var slot: String?
        @OptionGroup var hub: HubOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let response = try await HubClient.with(hub) { try await $0.json(.GET, "/v1/admin/tokens" + URLText.query([("slot", slot)])) }
            try Terminal.current.list(response, json: output.json, headers: AdminViews.tokenHeaders, row: AdminViews.tokenRow, empty: "no tokens")
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate", abstract: "Replace a token with a new secret; prints the new secret.",
            discussion: "The old secret keeps working for --overlap (default 0: it stops at once), so clients can switch over.")
        @Argument(help: "The token's id (tok_...).") var id: String
        @Option(help: ArgumentHelp("How long the old secret keeps working (0 to 30d).", valueName: "duration")) var overlap: String?
        @OptionGroup var hub: HubOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            if let overlap, overlap != "0", Units.seconds(overlap) == nil { throw ValidationError("--overlap: '\(overlap)' is not a duration like 1h") }
        }

        func run() async throws {
            let seconds = overlap.flatMap { $0 == "0" ? 0 : Units.seconds($0) } ?? 0
            let response = try await HubClient.with(hub) {
                try await $0.json(.POST, "/v1/admin/tokens/\(URLText.path(id))/rotate", .object(["overlap_s": .int(seconds)]))
            }
            try TokenCommand.printSecret(response, json: output.json, verb: "rotated \(id) into")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a token: it stops working on the next request.",
                                                        discussion: "Example: hubctl token revoke tok_Xf3aB9cD0eF1")
        @Argument(help: "The token's id (tok_...).") var id: String
        @OptionGroup var hub: HubOptions

        func run() async throws {
            _ = try await HubClient.with(hub) { try await $0.json(.DELETE, "/v1/admin/tokens/" + URLText.path(id)) }
            Terminal.current.note("revoked \(id)")
        }
    }

    /// The secret alone on stdout (or the whole document with --json); what it is on stderr.
    static func printSecret(_ response: HubResponse, json: Bool, verb: String) throws(CtlError) {
        if json { return Terminal.current.document(response) }
        let token = try response.json()
        guard let secret = token["token"]?.string else { throw .failed("the hub's answer carries no token secret") }
        Terminal.current.line(secret)
        Terminal.current.note("\(verb) \(token["id"].cell) for slot \(token["slot"].cell) (\(token["scopes"].cell)); the secret is shown only this once")
    }
}
