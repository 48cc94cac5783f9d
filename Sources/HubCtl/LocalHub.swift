import Foundation
import Yams

/// Where the hub on this machine keeps its admin socket and its data, found the way `hubd` finds them: the
/// environment (`HUB_ADMIN_SOCKET`, `HUB_DATA_DIR`), then the config file, then the defaults (`./data`).
struct LocalHub: Equatable {
    static let defaultConfigPath = "/etc/eventhub/hub.yaml"

    var adminSocket: String?
    var dataDirectory: String
    var databasePath: String { dataDirectory + "/hub.db" }

    static func resolve(configPath: String?, environment: [String: String]) throws(CtlError) -> LocalHub {
        let path = configPath ?? environment["HUB_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (FileManager.default.fileExists(atPath: defaultConfigPath) ? defaultConfigPath : nil)
        let file = try path.map { path throws(CtlError) in try readConfig(path) } ?? [:]
        let dataDirectory = environment["HUB_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? file["data-dir"] ?? "./data"
        let socket = environment["HUB_ADMIN_SOCKET"] ?? file["admin-socket"] ?? dataDirectory + "/admin.sock"
        return LocalHub(adminSocket: socket.isEmpty ? nil : socket, dataDirectory: dataDirectory)
    }

    /// The two keys hubctl needs from hubd's flat YAML file; the rest is hubd's business (`hubctl config check`).
    private static func readConfig(_ path: String) throws(CtlError) -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw .config("cannot read \(path)") }
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch { throw .config("\(path): not valid YAML: \(error)") }
        var values: [String: String] = [:]
        for (key, value) in node?.mapping ?? [:] {
            guard let key = key.string, ["data-dir", "admin-socket"].contains(key), let scalar = value.scalar,
                  value.tag.rawValue != Tag.Name.null.rawValue else { continue }
            values[key] = scalar.string
        }
        return values
    }
}
