import Foundation
import Yams

/// The YAML configuration file (`/etc/eventhub/hub.yaml`): a flat mapping whose keys are the option names
/// (`listen`, `data-dir`, …) and whose values are scalars. Unknown keys are errors, not silently ignored:
/// a typo must not fall back to a default unnoticed.
public enum ConfigurationFile {
    public static let defaultPath = "/etc/eventhub/hub.yaml"

    /// The options the file sets, as text, ready for `HubConfiguration.resolve(file:)`.
    public static func load(path: String) throws(ConfigurationError) -> [String: String] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError("cannot read \(path): \(error.localizedDescription)")
        }
        return try parse(text, source: path)
    }

    public static func parse(_ text: String, source: String) throws(ConfigurationError) -> [String: String] {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw ConfigurationError("\(source): not valid YAML: \(error)")
        }
        guard let node else { return [:] }  // empty or comments only
        guard let mapping = node.mapping else { throw ConfigurationError("\(source): expected key: value lines at the top level") }
        var values: [String: String] = [:]
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.string else { throw ConfigurationError("\(source): keys must be option names") }
            let line = keyNode.mark.map { " (line \($0.line))" } ?? ""
            guard HubConfiguration.optionNames.contains(key) else {
                throw ConfigurationError("\(source)\(line): unknown key '\(key)'; known keys: \(HubConfiguration.optionNames.joined(separator: ", "))")
            }
            guard let scalar = valueNode.scalar else { throw ConfigurationError("\(source)\(line): '\(key)' must be a single value") }
            // `~`/`null` means "not set here": the default (or the environment) applies.
            if valueNode.tag.rawValue == Tag.Name.null.rawValue { continue }
            values[key] = scalar.string
        }
        return values
    }
}

extension HubConfiguration {
    /// Reads every source: the file (`configPath`, else `HUB_CONFIG`, else /etc/eventhub/hub.yaml when it exists),
    /// the environment and the flags. The result can `reload` itself from the same sources (SIGHUP).
    public static func load(flags: [String: String], configPath: String?, environment: [String: String]) throws(ConfigurationError) -> HubConfiguration {
        let path = configPath ?? environment["HUB_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (FileManager.default.fileExists(atPath: ConfigurationFile.defaultPath) ? ConfigurationFile.defaultPath : nil)
        let file = try path.map { path throws(ConfigurationError) in try ConfigurationFile.load(path: path) } ?? [:]
        var config = try resolve(flags: flags, environment: environment, file: file, fileName: path ?? "")
        config.reload = { try load(flags: flags, configPath: path, environment: environment) }
        return config
    }
}
