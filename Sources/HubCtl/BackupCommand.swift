import HubProtocol
import ArgumentParser
import Foundation
import NIOHTTP1

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "Copy the store to a file while the hub keeps running.",
        discussion: """
            The hub writes the copy (one consistent snapshot, SQLite's online backup), so the path is on the hub's \
            machine and must be writable by the hub's user; it must not exist yet. Check the copy with \
            'hubctl verify --file', put it back with 'hubctl restore'.
              hubctl backup /var/lib/eventhub/backups/hub-$(date +%F).db
            """)
    @Argument(help: "Where the copy goes: a new file (relative paths are resolved here when using the local socket).") var path: String
    @OptionGroup var hub: HubOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let response = try await HubClient.with(hub) { client in
            var target = path
            if case .socket = client.target, !target.hasPrefix("/") {
                target = FileManager.default.currentDirectoryPath + "/" + target
            }
            return try await client.json(.POST, "/v1/admin/backup", .object(["path": .string(target)]))
        }
        if output.json { return Terminal.current.document(response) }
        let answer = try response.json()
        Terminal.current.line(answer["path"].cell)
        Terminal.current.note("backed up \(AdminViews.bytes(answer["bytes"])) to \(answer["path"].cell)")
    }
}
