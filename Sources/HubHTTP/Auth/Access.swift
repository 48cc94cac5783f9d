import HubAuth
import HubCore
import Hummingbird

extension HubRequestContext {
    /// Allows `scope` on `path` for this request, or throws the 401/403 that explains why not. Without credentials,
    /// a slot's anonymous read/append flags decide.
    func authorize(_ scope: Scope, on path: StreamPath, using auth: Authenticator) async throws {
        if let grant {
            try grant.authorize(scope, on: path)
            return
        }
        if scope == .read || scope == .append, let settings = try await auth.slotSettings(path.slot),
           scope == .read ? settings.anonymousRead : settings.anonymousAppend {
            return
        }
        throw AuthError.missingCredentials
    }

    /// The grant of an admin call, which needs the `admin` scope (any reach; calls check the reach they need).
    func requireAdmin() throws -> Grant {
        guard let grant else { throw AuthError.missingCredentials }
        guard grant.has(.admin) else { throw AuthError.insufficientScope(.admin) }
        return grant
    }

    /// The grant of a call about the whole hub (slots, audit, configuration, backup, metrics): `admin` with no slot reach.
    @discardableResult
    func requireHubAdmin() throws -> Grant {
        let grant = try requireAdmin()
        guard grant.slot == nil else { throw AuthError.outOfReach }
        return grant
    }
}
