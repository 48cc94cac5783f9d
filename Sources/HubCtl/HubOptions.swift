import ArgumentParser
import Foundation

/// How to reach the hub: every command that talks to one takes these.
struct HubOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Base URL of a remote hub, e.g. https://hub.example.com (env HUB_URL).", valueName: "url"))
    var url: String?

    @Option(help: ArgumentHelp("Bearer token for --url (env HUB_TOKEN). Prefer --token-file or the environment: flags show in ps.", valueName: "token"))
    var token: String?

    @Option(name: .customLong("token-file"), help: ArgumentHelp("Read the bearer token from this file (e.g. /var/lib/eventhub/admin.token).", valueName: "file"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("The local admin socket (env HUB_SOCKET). Default: admin-socket from the config file, else {data-dir}/admin.sock.", valueName: "path"))
    var socket: String?

    @Option(help: ArgumentHelp("hubd's config file, read for admin-socket and data-dir (env HUB_CONFIG; default /etc/eventhub/hub.yaml when present).", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("Seconds to wait for each answer.", valueName: "seconds"))
    var timeout: Int = 30

    func validate() throws {
        guard (1...3600).contains(timeout) else { throw ValidationError("--timeout must be 1 to 3600 seconds") }
        if url != nil && socket != nil { throw ValidationError("--url and --socket are alternatives; give one") }
        if token != nil && tokenFile != nil { throw ValidationError("--token and --token-file are alternatives; give one") }
    }

    /// Flags first, then the environment, then the local hub's admin socket.
    func target(_ environment: [String: String]) throws(CtlError) -> HubClient.Target {
        let url = url ?? (socket == nil ? environment["HUB_URL"].flatMap { $0.isEmpty ? nil : $0 } : nil)
        if let url {
            guard let parsed = URL(string: url), let scheme = parsed.scheme, ["http", "https"].contains(scheme), parsed.host != nil else {
                throw .usage("--url must be an http:// or https:// URL, not '\(url)'")
            }
            return .url(base: url.hasSuffix("/") ? String(url.dropLast()) : url, token: try bearerToken(environment))
        }
        if let socket = socket ?? environment["HUB_SOCKET"].flatMap({ $0.isEmpty ? nil : $0 }) { return .socket(socket) }
        let local = try LocalHub.resolve(configPath: config, environment: environment)
        guard let path = local.adminSocket else {
            throw .config("the admin socket is turned off (admin-socket: \"\"); use --url and a token")
        }
        return .socket(path)
    }

    private func bearerToken(_ environment: [String: String]) throws(CtlError) -> String? {
        if let token { return token }
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else { throw .config("cannot read the token file \(tokenFile)") }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return environment["HUB_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// `--json` for commands whose output scripts read.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print JSON (the shapes documented in docs/hubctl.md) instead of a table.")
    var json = false
}
