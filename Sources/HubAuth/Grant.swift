import HubCore

/// What an authenticated request may do: the token's reach (global or one slot, optionally a path prefix) and
/// its scopes. `admin` implies every other scope within that reach.
public struct Grant: Sendable, Hashable {
    public let tokenID: String
    public let slot: SlotName?
    public let scopes: Set<Scope>
    public let prefix: String?
    public let expiresAtMs: Int64?
    /// The prefix names exactly one stream (tickets), not a subtree.
    public let exactPath: Bool

    public init(tokenID: String, slot: SlotName?, scopes: Set<Scope>, prefix: String?, expiresAtMs: Int64?, exactPath: Bool = false) {
        self.tokenID = tokenID; self.slot = slot; self.scopes = scopes; self.prefix = prefix; self.expiresAtMs = expiresAtMs
        self.exactPath = exactPath
    }

    public init(_ token: TokenRecord) {
        self.init(tokenID: token.id, slot: token.slot, scopes: token.scopes, prefix: token.prefix, expiresAtMs: token.expiresAtMs)
    }

    /// Everything, everywhere: open mode and the local admin socket.
    public static func everything(_ id: String) -> Grant {
        Grant(tokenID: id, slot: nil, scopes: Set(Scope.allCases), prefix: nil, expiresAtMs: nil)
    }

    public var isGlobalAdmin: Bool { slot == nil && scopes.contains(.admin) }

    public func has(_ scope: Scope) -> Bool { scopes.contains(scope) || scopes.contains(.admin) }

    /// Whether `path` is within this grant's reach (slot and prefix), whatever the scope.
    public func reaches(_ path: StreamPath) -> Bool {
        if let slot, slot != path.slot { return false }
        if let prefix {
            let p = path.rawValue
            if exactPath { return p == prefix }
            // A prefix matches whole segments: "acme/orders" reaches "acme/orders" and "acme/orders/eu", not "acme/orders2".
            guard p == prefix || p.hasPrefix(prefix.hasSuffix("/") ? prefix : prefix + "/") else { return false }
        }
        return true
    }

    /// Whether this grant reaches every stream of `slot` (admin calls about a slot).
    public func reaches(slot name: SlotName) -> Bool {
        slot == nil || (slot == name && prefix == nil)
    }

    /// Throws `.insufficientScope` or `.outOfReach` unless `scope` is allowed on `path`.
    public func authorize(_ scope: Scope, on path: StreamPath) throws(AuthError) {
        guard reaches(path) else { throw .outOfReach }
        guard has(scope) else { throw .insufficientScope(scope) }
    }
}
