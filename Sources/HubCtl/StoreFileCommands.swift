import HubProtocol
import ArgumentParser
import Foundation
import HubCore
import HubSQLite

/// Where the offline commands find the store: --data-dir, else the same places `hubd` looks.
struct StoreLocationOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: ArgumentHelp("The hub's data directory (env HUB_DATA_DIR; default: data-dir from the config file, else ./data).", valueName: "dir"))
    var dataDirectory: String?
    @Option(help: ArgumentHelp("hubd's config file (env HUB_CONFIG; default /etc/eventhub/hub.yaml when present).", valueName: "file"))
    var config: String?

    func databasePath() throws(CtlError) -> String {
        if let dataDirectory { return dataDirectory + "/hub.db" }
        return try LocalHub.resolve(configPath: config, environment: Terminal.current.environment).databasePath
    }
}

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check a store file: SQLite integrity, then the hub's own invariants.",
        discussion: """
            Checks SQLite's integrity_check and foreign keys, then per slot that every seq lies above the retention \
            floor and at most the head, per stream that positions are contiguous up to the head, that seqs increase \
            with position and that the record and byte counters match. Read-only: safe on a running hub's store.
            Exit code 0 when sound, 1 when something is wrong (each problem is printed).
              hubctl verify                       # the local hub's store
              hubctl verify --file /var/backups/hub-2026-11-22.db
            """)
    @Option(help: ArgumentHelp("A store file to check (a backup); default the hub's own hub.db.", valueName: "file")) var file: String?
    @OptionGroup var location: StoreLocationOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let path = try file ?? location.databasePath()
        guard FileManager.default.fileExists(atPath: path) else { throw CtlError.failed("no store file at \(path)") }
        let report: StoreVerification
        do { report = try StoreVerifier.verify(path: path) } catch { throw CtlError.failed("cannot check \(path): \(error)") }
        let terminal = Terminal.current
        if output.json {
            terminal.line(JSONValue.object([
                "file": .string(path), "sound": .bool(report.isSound), "schema_version": .int(Int64(report.schemaVersion)),
                "slots": .int(Int64(report.slots)), "streams": .int(Int64(report.streams)), "records": .int(report.records),
                "problems": .array(report.problems.map(JSONValue.string)), "skipped": .array(report.skipped.map(JSONValue.string)),
            ]).serialized)
        } else {
            var f = Fields()
            f.add("file", path)
            f.add("schema", String(report.schemaVersion))
            f.add("slots", String(report.slots))
            f.add("streams", String(report.streams))
            f.add("records", String(report.records))
            f.add("result", report.isSound ? "sound" : "\(report.problems.count) problem(s)")
            terminal.line(f.rendered)
            for problem in report.problems { terminal.line("problem: \(problem)") }
            for skipped in report.skipped { terminal.note("skipped: \(skipped)") }
        }
        if !report.isSound { throw CtlError.failed("\(path) has \(report.problems.count) problem(s)") }
    }
}

struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore", abstract: "Put a backup in place as the (stopped) hub's store.",
        discussion: """
            The backup is verified first. Refuses while a hub has the store open (stop it first). The current \
            store is kept, renamed hub.db.before-restore-<time>; nothing is deleted.
              systemctl stop eventhub
              hubctl restore /var/backups/hub-2026-11-22.db
              systemctl start eventhub
            """)
    @Argument(help: "The backup file (from 'hubctl backup').") var backup: String
    @OptionGroup var location: StoreLocationOptions

    func run() async throws {
        let terminal = Terminal.current
        let target = try location.databasePath()
        guard FileManager.default.fileExists(atPath: backup) else { throw CtlError.failed("no backup file at \(backup)") }
        let report: StoreVerification
        do { report = try StoreVerifier.verify(path: backup) } catch { throw CtlError.failed("cannot check \(backup): \(error)") }
        guard report.isSound && report.skipped.isEmpty else {
            let why = (report.problems + report.skipped).joined(separator: "; ")
            throw CtlError.failed("refusing to restore \(backup): \(why)")
        }
        let directory = (target as NSString).deletingLastPathComponent
        guard FileManager.default.fileExists(atPath: directory.isEmpty ? "." : directory) else {
            throw CtlError.failed("the data directory \(directory) does not exist")
        }
        let outcome: StoreRestore.Outcome
        do {
            outcome = try StoreRestore.restore(backup: backup, databasePath: target)
        } catch {
            if case .unavailable = error { throw CtlError.failed("a hub has \(target) open; stop it first (systemctl stop eventhub)") }
            throw CtlError.failed("restore failed: \(error)")
        }
        terminal.line(target)
        if let aside = outcome.keptAside { terminal.note("the previous store is kept as \(aside)") }
        terminal.note("restored \(Units.describe(bytes: outcome.bytes)) (\(report.slots) slots, \(report.streams) streams, \(report.records) records) to \(target)")
    }
}

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Check hubd's configuration.", discussion: "Example: hubctl config check /etc/eventhub/hub.yaml",
        subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check", abstract: "Validate a config file the way hubd will read it (exit 78 when invalid).",
            discussion: """
                Runs 'hubd --check-config', so the answer is hubd's own: every key, type and combination, with the \
                environment's HUB_* variables applied as hubd would.
                  hubctl config check /etc/eventhub/hub.yaml
                """)
        @Argument(help: "The config file (default /etc/eventhub/hub.yaml).") var file: String = LocalHub.defaultConfigPath
        @Option(help: ArgumentHelp("The hubd binary (default: next to hubctl, else on PATH).", valueName: "path")) var hubd: String?

        func run() async throws {
            guard FileManager.default.fileExists(atPath: file) else { throw CtlError.config("no config file at \(file)") }
            let binary = try hubd ?? Self.findHubd()
            let (status, output) = try await ChildRun.run(binary, ["--check-config", "--config", file], environment: Terminal.current.environment)
            let terminal = Terminal.current
            let text = output.trimmingCharacters(in: .whitespacesAndNewlines)
            switch status {
            case 0:
                terminal.note("\(file): valid")
            case 78:
                throw CtlError.config(text.isEmpty ? "\(file) is not valid" : text.replacingOccurrences(of: "hubd: ", with: ""))
            default:
                throw CtlError.failed("\(binary) --check-config exited with \(status)\(text.isEmpty ? "" : ": " + text)")
            }
        }

        static func findHubd() throws(CtlError) -> String {
            let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
            var candidates = [(own as NSString).deletingLastPathComponent + "/hubd"]
            candidates += (Terminal.current.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map { "\($0)/hubd" }
            guard let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) else {
                throw .config("cannot find hubd next to hubctl or on PATH; give --hubd")
            }
            return found
        }
    }
}
