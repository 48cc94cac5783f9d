import ArgumentParser
import HubCore

/// The `hubctl` program as a function of its arguments: the binary's `main.swift` calls this with the real
/// terminal, tests call it with a `CapturedTerminal`. Returns the exit code.
public enum HubCtl {
    public static func main(_ arguments: [String], terminal: Terminal = .standard) async -> Int32 {
        await Terminal.$current.withValue(terminal) {
            do {
                var command = try Hubctl.parseAsRoot(arguments)
                if var command = command as? any AsyncParsableCommand {
                    try await command.run()
                } else {
                    try command.run()
                }
                return 0
            } catch let error as CtlError {
                terminal.note(error.message)
                return error.exitCode
            } catch {
                // Help, --version, completion scripts (exit 0, on stdout) and usage errors (64, on stderr).
                let code = Hubctl.exitCode(for: error)
                let message = Hubctl.fullMessage(for: error)
                if code == .success {
                    if !message.isEmpty { terminal.line(message) }
                } else if !message.isEmpty {
                    terminal.note(message)
                }
                return code.rawValue
            }
        }
    }
}

struct Hubctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hubctl",
        abstract: "Administer an EventHub hub: slots, tokens, streams, consumers, backups, benchmarks.",
        discussion: """
            hubctl talks to the hub on this machine through its admin socket (no token needed: the socket's \
            file permissions are the credential; root or the eventhub user). For a remote hub give --url and a \
            token with the admin scope (--token-file, or HUB_URL and HUB_TOKEN in the environment).

            Data goes to stdout, messages to stderr. --json prints the documented JSON shapes for scripts.

            Exit codes: 0 done; 1 the hub refused (the problem code is printed) or a local check failed; \
            2 the hub cannot be reached; 64 bad usage; 78 configuration error.

            Examples:
              hubctl status
              hubctl slot create acme --max-age 7d --max-records 1000000
              TOKEN=$(hubctl token mint --slot acme --scope read,append --label "order service")
              hubctl publish acme '{"type":"order.created","total":42}'
              hubctl tail acme -f
              hubctl backup /var/backups/hub-$(date +%F).db
              hubctl bench --subscribers 100 --messages 20000
            """,
        version: HubVersion.current,
        subcommands: [StatusCommand.self, SlotCommand.self, TokenCommand.self, StreamCommand.self, PublishCommand.self,
                      TailCommand.self, ConsumerCommand.self, BackupCommand.self, RestoreCommand.self, VerifyCommand.self,
                      ConfigCommand.self, BenchCommand.self]
    )
}
