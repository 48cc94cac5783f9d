import Foundation
import HubAuth
import HubCore
import Logging

/// First start in tokens mode: when no usable global admin token exists, mint one and write its secret to
/// `{data-dir}/admin.token` with mode 0600. The log names the file and the token id, never the secret.
enum AdminBootstrap {
    static let fileName = "admin.token"

    static func ensureAdminToken(store: any AdminStore, dataDirectory: String, logger: Logger) async throws {
        guard try await !store.hasGlobalAdminToken() else { return }
        let secret = BearerToken.generate()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let record = TokenRecord(id: TokenID.generate(), digest: secret.digest, slot: nil, scopes: [.admin], prefix: nil,
                                 label: "bootstrap admin", createdAtMs: now, expiresAtMs: nil)
        let path = dataDirectory + "/" + fileName
        try writeSecret(secret.secret + "\n", to: path)
        do {
            try await store.insertToken(record, actor: "bootstrap")
        } catch {
            unlink(path)
            throw error
        }
        logger.notice("created the first admin token; its secret is in the token file (mode 0600)",
                      metadata: ["hub.token": "\(record.id)", "hub.file": "\(path)"])
    }

    /// Writes a fresh file readable by the owner only: the mode is set at creation, never widened.
    static func writeSecret(_ text: String, to path: String) throws {
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ConfigurationError("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            throw ConfigurationError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
