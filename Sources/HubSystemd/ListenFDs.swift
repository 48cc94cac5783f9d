import CSystemd
import Foundation

/// Sockets passed by systemd socket activation (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`; sd_listen_fds(3)).
public struct ListenFDs: Sendable {
    public struct Socket: Sendable, Equatable {
        public let fd: Int32
        /// `FileDescriptorName=` of the socket unit (`http`, `admin`), or `unknown` when unnamed.
        public let name: String
    }

    public let sockets: [Socket]

    /// Takes the passed sockets and unsets the variables, so children never inherit them. Empty when not activated.
    public static func take() -> ListenFDs {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = sd_listen_fds_with_names(1, &names)
        guard count > 0 else { return ListenFDs(sockets: []) }
        var sockets: [Socket] = []
        for i in 0..<Int(count) {
            let name = names?[i].map { String(cString: $0) } ?? "unknown"
            sockets.append(Socket(fd: SD_LISTEN_FDS_START + Int32(i), name: name))
            free(names?[i])
        }
        free(names)
        return ListenFDs(sockets: sockets)
    }

    /// The socket named `name`; an unnamed (`unknown`) socket counts as the first one asked for.
    public func socket(named name: String, fallbackToFirstUnnamed: Bool) -> Int32? {
        if let match = sockets.first(where: { $0.name == name }) { return match.fd }
        guard fallbackToFirstUnnamed else { return nil }
        return sockets.first(where: { $0.name == "unknown" })?.fd
    }
}
