/// Why a command failed, and the exit code scripts see. Every failure path of every command ends here, so the
/// codes stay what `docs/hubctl.md` promises: 1 the hub refused, 2 the hub cannot be reached, 64 usage, 78 config.
public enum CtlError: Error, Sendable, Equatable {
    /// The hub answered with an error (problem+json): status, problem code, and its human-readable detail.
    case refused(status: Int, code: String, detail: String)
    /// No answer: nothing listening, socket missing, timeout, connection dropped.
    case unreachable(String)
    /// The command line makes no sense (bad value, missing argument).
    case usage(String)
    /// Configuration or local setup is wrong (no token for a remote hub, unreadable config file).
    case config(String)
    /// A local operation failed (a file to restore is corrupt, a verify found problems, the store is in use).
    case failed(String)

    public var exitCode: Int32 {
        switch self {
        case .refused, .failed: 1
        case .unreachable: 2
        case .usage: 64
        case .config: 78
        }
    }

    public var message: String {
        switch self {
        case let .refused(status, code, detail): "hubctl: the hub refused (\(status) \(code)): \(detail)"
        case let .unreachable(why): "hubctl: cannot reach the hub: \(why)"
        case let .usage(why): "hubctl: \(why)\nSee 'hubctl --help'."
        case let .config(why): "hubctl: configuration: \(why)"
        case let .failed(why): "hubctl: \(why)"
        }
    }
}
