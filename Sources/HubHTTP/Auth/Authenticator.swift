import Foundation
import HubAuth
import HubCore
import Synchronization

/// How requests are authenticated (DESIGN §4).
public struct AuthConfiguration: Sendable {
    public enum Mode: String, Sendable { case open, tokens }
    public var mode: Mode
    /// Accept `?access_token=` (off: tokens in URLs end up in logs and browser history).
    public var allowQueryTokens: Bool
    /// Requests per second per token (bursts of twice that); 0 = unlimited.
    public var tokenRate: Double
    /// Requests per second per client address for anonymous requests and failed credentials; 0 = unlimited.
    public var addressRate: Double

    public init(mode: Mode, allowQueryTokens: Bool = false, tokenRate: Double = 10_000, addressRate: Double = 200) {
        self.mode = mode; self.allowQueryTokens = allowQueryTokens; self.tokenRate = tokenRate; self.addressRate = addressRate
    }
}

/// Turns credentials into a `Grant`. Verified tokens are cached by digest, so an authenticated request costs a
/// dictionary lookup, not a database read; any token or slot mutation clears the caches at once.
public final class Authenticator: Sendable {
    public let configuration: AuthConfiguration
    private let store: any AdminStore
    private struct Caches {
        var tokens: [String: Grant] = [:]
        var slots: [SlotName: SlotSettings?] = [:]
        var touched: [String: Int64] = [:]
    }
    private let caches = Mutex(Caches())
    /// Minimum interval between two `last_used` writes for one token.
    static let touchIntervalMs: Int64 = 60_000
    /// Bound on cached entries, so a flood of distinct tokens cannot grow memory without limit.
    static let maxCached = 100_000

    /// Per-token and per-address limits (`AuthMiddleware` applies them); rates change on configuration reload.
    public let tokenLimiter: RateLimiter
    public let addressLimiter: RateLimiter

    public init(configuration: AuthConfiguration, store: any AdminStore) {
        self.configuration = configuration
        self.store = store
        tokenLimiter = RateLimiter(rate: configuration.tokenRate)
        addressLimiter = RateLimiter(rate: configuration.addressRate)
    }

    /// The grant for a request's credentials: nil when it carries none (anonymous), `.everything` in open mode.
    /// Throws for credentials that are present but no good. Length and format are checked before any lookup.
    public func grant(authorization: String?, queryToken: Bool, address: String?) async throws -> Grant? {
        if configuration.mode == .open { return .everything("open") }
        if queryToken && !configuration.allowQueryTokens { throw AuthError.tokenInQuery }
        guard let authorization else { return nil }
        guard let text = BearerToken.fromAuthorization(authorization), let token = BearerToken(parsing: text) else {
            throw AuthError.malformedToken
        }
        return try await grant(for: token, address: address)
    }

    public func grant(for token: BearerToken, address: String?) async throws -> Grant {
        let digest = token.digest
        let now = Self.nowMs
        // Cached grants are of tokens that were usable when read; revocation and rotation clear the cache, and
        // expiry is checked here on every use.
        if let grant = caches.withLock({ $0.tokens[digest] }) {
            guard grant.expiresAtMs.map({ now < $0 }) ?? true else { throw AuthError.invalidToken }
            touch(grant.tokenID, now: now, address: address)
            return grant
        }
        guard let record = try await store.token(digest: digest), record.isUsable(atMs: now) else { throw AuthError.invalidToken }
        let grant = Grant(record)
        caches.withLock { if $0.tokens.count < Self.maxCached { $0.tokens[digest] = grant } }
        touch(record.id, now: now, address: address)
        return grant
    }

    /// The hot path's check, decided without the store: `.everything` in open mode, or the grant of a bearer token
    /// this hub already verified and cached, still unexpired. Nil when it cannot be decided here (anonymous, a
    /// token not yet cached, malformed or expired): the router then takes the request and gives the full answer.
    /// `address` is asked for only when the token's last use is recorded (an address costs a lock and a string).
    public func cachedGrant(authorization: String?, address: @autoclosure () -> String?) -> Grant? {
        if configuration.mode == .open { return Self.openGrant }
        guard let authorization, let text = BearerToken.fromAuthorization(authorization), let token = BearerToken(parsing: text) else { return nil }
        let now = Self.nowMs
        guard let grant = caches.withLock({ $0.tokens[token.digest] }), grant.expiresAtMs.map({ now < $0 }) ?? true else { return nil }
        touch(grant.tokenID, now: now, address: address())
        return grant
    }

    /// Built once: the hot path asks for it on every request in open mode.
    private static let openGrant = Grant.everything("open")

    /// Settings of a slot for anonymous access (nil when the slot does not exist).
    public func slotSettings(_ slot: SlotName) async throws -> SlotSettings? {
        if let cached = caches.withLock({ $0.slots[slot] }) { return cached }
        var settings: SlotSettings?
        do {
            settings = try await store.slot(slot).settings
        } catch {
            guard case .slotNotFound = error else { throw error }
            settings = nil
        }
        caches.withLock { if $0.slots.count < Self.maxCached { $0.slots[slot] = settings } }
        return settings
    }

    /// Called after any admin mutation: the next request re-reads tokens and slots from the store.
    public func invalidate() {
        caches.withLock { $0.tokens = [:]; $0.slots = [:] }
    }

    private func touch(_ id: String, now: Int64, address: @autoclosure () -> String?) {
        let due = caches.withLock { caches -> Bool in
            if let last = caches.touched[id], now - last < Self.touchIntervalMs { return false }
            if caches.touched.count >= Self.maxCached { caches.touched = [:] }
            caches.touched[id] = now
            return true
        }
        guard due else { return }
        let store = self.store, address = address()
        Task { try? await store.touchToken(id, atMs: now, address: address) }
    }

    static var nowMs: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
