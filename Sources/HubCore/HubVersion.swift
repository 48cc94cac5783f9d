/// The version `hubd --version` prints; packaging stamps releases from it.
public enum HubVersion {
    public static let current = "0.1.0"
}
